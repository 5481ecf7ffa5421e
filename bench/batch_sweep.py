#!/usr/bin/env python3
"""Epoch times over batch sizes and optimizers: one or more nabla binaries (e.g. before/after a
change) and optionally PyTorch, alternated run by run on the same MNIST MLP, same settings.

For each (optimizer, batch) and round it runs every binary, then PyTorch, and prints a markdown
table: median epoch seconds over the rounds' medians, and the drift of a run (its slowest epoch
over its fastest, minus 1: the issue's "no epoch more than 15 % slower" check), the worst over
the rounds. Not a test: a measurement for BENCHMARKS.md.

Usage (from the repo root):
  python3 bench/batch_sweep.py --bin target/release/nabla [--bin /path/to/other/nabla] \\
      [--pytorch] [--batches 16,32,64,128,256,512] [--optimizers sgd,adam] [--epochs 3] [--rounds 1]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, out, env=None):
    r = subprocess.run(cmd + ["--metrics-out", out], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    m = json.load(open(out))
    secs = [e["seconds"] for e in m["epochs"]] if "epochs" in m else m["epoch_seconds"]
    return statistics.median(secs), max(secs) / min(secs) - 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.normpath(os.path.join(ROOT, "..", "shared", "datasets", "mnist")))
    p.add_argument("--bin", action="append", default=[])
    p.add_argument("--pytorch", action="store_true")
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--batches", default="16,32,64,128,256,512")
    p.add_argument("--optimizers", default="sgd,adam")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    a = p.parse_args()
    bins = a.bin or [os.path.join(ROOT, "target", "release", "nabla")]
    py = None
    if a.pytorch:
        py = subprocess.run(["bash", os.path.join(HERE, "setup_venv.sh")], capture_output=True, text=True,
                            check=True).stdout.strip()
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads))
    names = [f"{os.path.basename(os.path.dirname(b)) or 'bin'}/{os.path.basename(b)}" for b in bins]
    names += ["pytorch"] if py else []
    print("| optimizer | batch | " + " | ".join(f"{n} s/epoch (drift)" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    with tempfile.TemporaryDirectory() as tmp:
        for opt in a.optimizers.split(","):
            lr = "0.05" if opt == "sgd" else "0.001"
            for batch in a.batches.split(","):
                common = ["--hidden", a.hidden, "--optimizer", opt, "--lr", lr, "--batch-size", batch,
                          "--epochs", str(a.epochs), "--threads", str(a.threads), "--seed", "1"]
                if opt == "sgd":
                    common += ["--momentum", "0.9"]
                res = {n: [] for n in names}
                for r in range(a.rounds):
                    for n, b in zip(names, bins):
                        cmd = [b, "train", "--no-save", "--quiet", "--data", a.data] + common
                        res[n].append(run(cmd, os.path.join(tmp, f"{r}.json")))
                    if py:
                        cmd = [py, os.path.join(HERE, "pytorch_mlp.py"), "--data", a.data] + common
                        res["pytorch"].append(run(cmd, os.path.join(tmp, f"t{r}.json"), env))
                cells = [f"{statistics.median(x[0] for x in res[n]):.3f} ({100 * max(x[1] for x in res[n]):.0f} %)"
                         for n in names]
                print(f"| {opt} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
