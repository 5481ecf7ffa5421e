#!/usr/bin/env python3
"""Alternated A/B of two nabla binaries on the same command: before/after a change.

Runs A and B in turn (A B, then B A, ... so neither always goes first) for --rounds rounds and
prints each round's figures, the medians and the median of the per-round ratios B/A. For a
`train` command it adds `--metrics-out` and reads `train_seconds` (the training steps, without
data loading or evaluation) and the per-epoch `seconds`; for any other command it times the
whole process (wall seconds). Not a test: a measurement for BENCHMARKS.md.

Usage (from the repo root; build the "before" binary from a worktree of the old commit):
  python3 bench/ab_binaries.py --a /tmp/nabla-old --b target/release/nabla --rounds 7 -- \\
      train --data ../shared/datasets/mnist --hidden 256,128 --optimizer sgd --lr 0.05 \\
      --momentum 0.9 --batch-size 128 --epochs 1 --seed 1 --no-save --quiet
  python3 bench/ab_binaries.py --a /tmp/nabla-old --b target/release/nabla -- \\
      evaluate --model /tmp/mnist.safetensors --data ../shared/datasets/mnist
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def run(binary, args, is_train):
    """One run: (seconds, detail) where seconds is train_seconds or the wall time."""
    if is_train:
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        os.unlink(path)
        cmd = [binary] + args + ["--metrics-out", path]
    else:
        cmd = [binary] + args
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    if not is_train:
        return wall, f"wall {wall:.3f}s"
    with open(path) as f:
        m = json.load(f)
    os.unlink(path)
    epochs = [e.get("seconds") for e in m.get("history", m.get("epochs", [])) if isinstance(e, dict)]
    return m["train_seconds"], f"train {m['train_seconds']:.3f}s epochs {epochs}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True, help="the 'before' binary")
    p.add_argument("--b", required=True, help="the 'after' binary")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then the nabla command")
    o = p.parse_args()
    args = o.args[1:] if o.args[:1] == ["--"] else o.args
    is_train = args[:1] == ["train"]
    print(f"cpu: {cpu_model()}; command: nabla {' '.join(args)}")
    a_times, b_times, ratios = [], [], []
    for r in range(o.rounds):
        order = [("A", o.a), ("B", o.b)] if r % 2 == 0 else [("B", o.b), ("A", o.a)]
        got = {}
        for name, binary in order:
            got[name] = run(binary, args, is_train)
        a_times.append(got["A"][0])
        b_times.append(got["B"][0])
        ratios.append(got["B"][0] / got["A"][0])
        print(f"round {r + 1}: A {got['A'][1]} | B {got['B'][1]} | B/A {ratios[-1]:.3f}")
    what = "train_seconds" if is_train else "wall seconds"
    print(
        f"median {what}: A {statistics.median(a_times):.3f}, B {statistics.median(b_times):.3f}; "
        f"median of per-round B/A {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})"
    )


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
