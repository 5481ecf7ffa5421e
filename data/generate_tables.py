#!/usr/bin/env python3
"""Small seeded tables for checking nabla's defaults against baselines (issue 14).

Writes CSV files next to this script, in generated/ (pure Python, no packages):
  blobs.csv      classification, 600 rows: 3 Gaussian classes in 4 columns + 4 noise columns
                 (a linear model is about as good as it gets)
  rings.csv      classification, 800 rows: 2 concentric rings in 2 columns + 6 noise columns
                 (no straight line separates them)
  linear.csv     regression, 442 rows, 10 columns: a noisy linear target (like the diabetes
                 table: a straight line explains about half the variance)
  wave.csv       regression, 1000 rows: y = sin(2 x1)·x2 + x3² + noise, + 5 noise columns
Run: python3 data/generate_tables.py
"""
import math
import os
import random

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "generated")


def write(name, header, rows):
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(x if isinstance(x, str) else f"{x:.5g}" for x in r) + "\n")


def blobs(rng):
    centers = [(0, 0, 0, 0), (1.5, 1, 0, -1), (0, 1.5, 1.5, 0.5)]
    rows = []
    for i in range(600):
        c = i % 3
        x = [centers[c][j] + rng.gauss(0, 1) for j in range(4)]
        rows.append(x + [rng.gauss(0, 1) for _ in range(4)] + [f"c{c}"])
    rng.shuffle(rows)
    write("blobs.csv", [f"x{j}" for j in range(4)] + [f"noise{j}" for j in range(4)] + ["class"], rows)


def rings(rng):
    rows = []
    for i in range(800):
        c = i % 2
        r = (1.0 if c == 0 else 2.0) + rng.gauss(0, 0.25)
        a = rng.uniform(0, 2 * math.pi)
        rows.append([r * math.cos(a), r * math.sin(a)] + [rng.gauss(0, 1) for _ in range(6)] + [f"ring{c}"])
    rng.shuffle(rows)
    write("rings.csv", ["x", "y"] + [f"noise{j}" for j in range(6)] + ["ring"], rows)


def linear(rng):
    w = [rng.uniform(-1, 1) for _ in range(10)]
    rows = []
    for _ in range(442):
        x = [rng.gauss(0, 1) for _ in range(10)]
        y = 150 + 50 * sum(a * b for a, b in zip(w, x)) + rng.gauss(0, 50 * 1.6)
        rows.append(x + [y])
    write("linear.csv", [f"x{j}" for j in range(10)] + ["target"], rows)


def wave(rng):
    rows = []
    for _ in range(1000):
        x = [rng.uniform(-2, 2) for _ in range(3)]
        y = math.sin(2 * x[0]) * x[1] + x[2] ** 2 + rng.gauss(0, 0.3)
        rows.append(x + [rng.gauss(0, 1) for _ in range(5)] + [y])
    write("wave.csv", ["x1", "x2", "x3"] + [f"noise{j}" for j in range(5)] + ["y"], rows)


if __name__ == "__main__":
    for i, make in enumerate([blobs, rings, linear, wave]):
        make(random.Random(14 + i))
