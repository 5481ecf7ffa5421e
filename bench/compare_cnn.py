#!/usr/bin/env python3
"""Side-by-side MNIST CNN training and inference: nabla against PyTorch, same machine, same sitting.

The CNN of issue 12 (--layers below), Adam lr 1e-3, for every batch size and thread count asked,
runs nabla and PyTorch (bench/pytorch_cnn.py: same layers, the data held as one tensor)
alternately for --rounds rounds and prints per configuration: median epoch seconds (training
steps only), training GFLOP/s, 10k-image inference seconds, the ratios nabla / PyTorch, test
accuracy and peak RSS (/usr/bin/time). FLOP count: forward 8.5 MFLOP per image (conv1 0.45,
conv2 7.23, dense 0.80); training ≈ 3 × forward minus conv1's input gradient = 25.1 MFLOP per
image. Not a test: a measurement for BENCHMARKS.md. Quote the load average with it.

Usage (from the repo root; PyTorch venv from bench/setup_venv.sh, NABLA_BENCH_VENV honoured):
  python3 bench/compare_cnn.py --batch-sizes 32,128,512 --threads 1,2 --rounds 3 --epochs 1
  python3 bench/compare_cnn.py --limit-train 12800 --omp-wait-policy passive   # busy machine
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAYERS = ("conv 32 3 pad 1, relu, maxpool 2, conv 64 3 pad 1, relu, maxpool 2, flatten, "
          "dense 128, relu, dense 10")
TRAIN_FLOP, FORWARD_FLOP = 25.1e6, 8.5e6


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns peak RSS in MiB."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return int(m.group(1)) / 1024 if m else float("nan")


def load():
    return open("/proc/loadavg").read().split()[0]


def one(kind, a, batch, threads, tmp, py):
    """One run; returns (median epoch s, inference s, accuracy, RSS MiB)."""
    out = os.path.join(tmp, f"{kind}.json")
    common = ["--optimizer", "adam", "--lr", "0.001", "--batch-size", str(batch), "--epochs",
              str(a.epochs), "--seed", str(a.seed), "--metrics-out", out, "--layers", a.layers]
    if a.limit_train:
        common += ["--limit-train", str(a.limit_train)]
    if kind == "nabla":
        rss = timed([os.path.join(ROOT, "target", "release", "nabla"), "train", "--no-save", "--quiet",
                     "--data", a.data, "--threads", str(threads)] + common)
        m = json.load(open(out))
        return statistics.median(e["seconds"] for e in m["epochs"]), m["inference_seconds"], m["test_accuracy"], rss
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    rss = timed([py, os.path.join(HERE, "pytorch_cnn.py"), "--data", a.data, "--threads", str(threads),
                 "--omp-wait-policy", a.omp_wait_policy] + common, env=env)
    m = json.load(open(out))
    return m["median_epoch_seconds"], m["inference_seconds"], m["test_accuracy"], rss


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.normpath(os.path.join(ROOT, "..", "shared", "datasets", "mnist")))
    p.add_argument("--layers", default=LAYERS)
    p.add_argument("--batch-sizes", default="128")
    p.add_argument("--threads", default="2")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit-train", type=int, default=None, help="first N training images (both sides)")
    p.add_argument("--rounds", type=int, default=3, help="A/B pairs per configuration")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--omp-wait-policy", default="inherit", choices=["inherit", "passive", "active"])
    p.add_argument("--skip-build", action="store_true")
    a = p.parse_args()
    if not a.skip_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    py = subprocess.run(["bash", os.path.join(HERE, "setup_venv.sh")], capture_output=True, text=True,
                        check=True).stdout.strip()
    images = a.limit_train or 60000
    print("| batch | threads | nabla epoch s | PyTorch epoch s | ratio | nabla GFLOP/s | PyTorch GFLOP/s "
          "| nabla inference s | PyTorch inference s | ratio | accuracy nabla / PyTorch | RSS MiB nabla / PyTorch | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for batch in [int(b) for b in a.batch_sizes.split(",")]:
            for threads in [int(t) for t in a.threads.split(",")]:
                runs = {"nabla": [], "pytorch": []}
                loads = []
                for _ in range(a.rounds):
                    for kind in ("nabla", "pytorch"):
                        loads.append(float(load()))
                        runs[kind].append(one(kind, a, batch, threads, tmp, py))
                med = {k: [statistics.median(r[i] for r in v) for i in range(4)] for k, v in runs.items()}
                n, t = med["nabla"], med["pytorch"]
                ep = [x[0] / y[0] for x, y in zip(runs["nabla"], runs["pytorch"])]
                inf = [x[1] / y[1] for x, y in zip(runs["nabla"], runs["pytorch"])]
                print(f"| {batch} | {threads} | {n[0]:.2f} | {t[0]:.2f} | {statistics.median(ep):.2f} "
                      f"| {images * TRAIN_FLOP / n[0] / 1e9:.1f} | {images * TRAIN_FLOP / t[0] / 1e9:.1f} "
                      f"| {n[1]:.2f} | {t[1]:.2f} | {statistics.median(inf):.2f} | {n[2]:.4f} / {t[2]:.4f} "
                      f"| {n[3]:.0f} / {t[3]:.0f} | {statistics.median(loads):.1f} |", flush=True)
    print(f"{images} training images per epoch, {a.epochs} epoch(s), {a.rounds} alternated rounds, medians; "
          f"inference: 10k test images ({10000 * FORWARD_FLOP / 1e9:.0f} GFLOP)")


if __name__ == "__main__":
    main()
