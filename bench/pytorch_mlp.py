#!/usr/bin/env python3
"""PyTorch reference benchmark: MNIST MLP (784-H1-H2-10, ReLU), for comparison with nabla.

Data: the four gzipped IDX files of MNIST (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in --data (default: ../shared/datasets/mnist
relative to the repo root). Parsed with numpy+gzip, pixels/255 as float32, held as one tensor and
indexed by a torch.randperm per epoch (no DataLoader). The last, partial batch of an epoch is used.

Per epoch it prints the epoch number, the training time in seconds (training steps only: shuffling,
batch gathering, forward, backward, optimizer step; evaluation excluded) and the test accuracy.
At the end it prints one JSON line:
  {"framework":"pytorch","median_epoch_seconds":..,"epoch_seconds":[...],"test_accuracy":..,
   "peak_rss_mb":..,"inference_seconds":..,"rss_after_import_mb":..,"config":{...}}
test_accuracy is the one after the last epoch; peak_rss_mb is ru_maxrss/1024 (includes the torch
import itself); inference_seconds is the median of 5 timed passes of the 10k test images through
the net in batches of 1000 under torch.no_grad() (after one untimed warm-up pass).
rss_after_import_mb (extra key) is the RSS right after `import torch`, i.e. the framework's
fixed cost, so a comparison can subtract it from peak_rss_mb if it wants.

Timing caveat: on a 2-core machine, PyTorch's OpenMP worker threads spin-wait, so --threads 2
epochs get 10-30x slower (e.g. 0.8 s -> 20 s) whenever any other process is busy, even a nice-19
one. Measure on an idle machine. --omp-wait-policy passive sets OMP_WAIT_POLICY=PASSIVE before
torch loads: then timings stay stable under load, but an idle-machine epoch is ~1.5-2x slower
(about single-thread speed), so it is not PyTorch's best and not the default.
Results (loss/accuracy) are deterministic for a given --seed and --threads, but differ
slightly between thread counts (different float reduction order).

Run (from the repo root):
  bash bench/setup_venv.sh            # prints the venv python
  <venv>/bin/python bench/pytorch_mlp.py --threads 2 --epochs 3 [--metrics-out out.json]
"""

import argparse
import gzip
import json
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np

# OpenMP reads OMP_WAIT_POLICY once, when torch loads it, so --omp-wait-policy is handled here,
# before `import torch`. Default "inherit": leave the environment (PyTorch's own default, the fair
# baseline). With OpenMP's spin-waiting, 2 threads on a 2-core machine slow down 10-30x as soon as
# any other process (even a nice-19 one) wants a core; "passive" (threads sleep instead of spin)
# avoids that but costs ~1.5-2x on an idle machine (about single-thread speed).
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--omp-wait-policy", choices=["passive", "active", "inherit"], default="inherit")
_OMP_POLICY = _pre.parse_known_args()[0].omp_wait_policy
if _OMP_POLICY != "inherit":
    os.environ["OMP_WAIT_POLICY"] = _OMP_POLICY.upper()

import torch  # noqa: E402


def current_rss_mb():
    """Resident set size now (Linux /proc), in MiB; None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


IMPORT_RSS_MB = current_rss_mb()  # the torch import alone costs several hundred MiB

import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "datasets", "mnist"))


def read_idx(path):
    """Read a gzipped IDX file into a numpy array (uint8 data only, as MNIST uses)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims} = {int(np.prod(dims))} bytes, got {data.size}")
    return data.reshape(dims)


def load_split(folder, prefix):
    images = read_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{prefix}: {images.shape[0]} images but {labels.shape[0]} labels")
    x = images.reshape(images.shape[0], -1).astype(np.float32)
    x /= 255.0  # in place: same values as x / 255, without a second full-size copy
    x = torch.from_numpy(x)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def build_model(hidden):
    layers = []
    fan_in = 784
    for h in hidden:
        layers += [nn.Linear(fan_in, h), nn.ReLU()]
        fan_in = h
    layers.append(nn.Linear(fan_in, 10))
    return nn.Sequential(*layers)


@torch.no_grad()
def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += (model(x[i : i + batch]).argmax(dim=1) == y[i : i + batch]).sum().item()
    return correct / x.shape[0]


@torch.no_grad()
def time_inference(model, x, batch=1000, reps=5):
    model.eval()

    def one_pass():
        for i in range(0, x.shape[0], batch):
            model(x[i : i + batch])

    one_pass()  # warm-up, not timed
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help="folder with the 4 MNIST .gz IDX files")
    p.add_argument("--hidden", default="256,128", help="hidden sizes, comma separated (default 256,128)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 0.05 for sgd, 0.001 for adam)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--omp-wait-policy",
        choices=["passive", "active", "inherit"],
        default="inherit",
        help="set OMP_WAIT_POLICY before torch loads (default inherit = leave the environment alone, "
        "i.e. PyTorch's default; passive = robust but slower timings on a busy machine)",
    )
    p.add_argument("--metrics-out", default=None, help="also write the final JSON to this file")
    args = p.parse_args(argv)
    args.hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    if args.lr is None:
        args.lr = 0.05 if args.optimizer == "sgd" else 0.001
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "t10k")
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, train {tuple(x_train.shape)}, "
        f"test {tuple(x_test.shape)}, hidden {args.hidden}, {args.optimizer} lr {args.lr}"
        + (f" momentum {args.momentum}" if args.optimizer == "sgd" else "")
        + f", batch {args.batch_size}, epochs {args.epochs}, seed {args.seed}"
        + f", OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}",
        flush=True,
    )

    model = build_model(args.hidden)
    if args.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    n = x_train.shape[0]
    epoch_seconds = []
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        loss_sum = 0.0
        steps = 0
        for i in range(0, n, args.batch_size):
            idx = perm[i : i + args.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            steps += 1
        mean_loss = float(loss_sum) / steps
        secs = time.perf_counter() - t0
        epoch_seconds.append(secs)
        acc = accuracy(model, x_test, y_test)
        print(f"epoch {epoch} train_seconds {secs:.3f} loss {mean_loss:.4f} test_accuracy {acc:.4f}", flush=True)

    inference_seconds = time_inference(model, x_test)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    metrics = {
        "framework": "pytorch",
        "median_epoch_seconds": statistics.median(epoch_seconds),
        "epoch_seconds": epoch_seconds,
        "test_accuracy": acc,
        "peak_rss_mb": peak_rss_mb,
        "inference_seconds": inference_seconds,
        "rss_after_import_mb": IMPORT_RSS_MB,
        "config": {
            "torch_version": torch.__version__,
            "threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "hidden": args.hidden,
            "optimizer": args.optimizer,
            "lr": args.lr,
            "momentum": args.momentum if args.optimizer == "sgd" else None,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "seed": args.seed,
        },
    }
    line = json.dumps(metrics)
    print(line, flush=True)
    if args.metrics_out:
        with open(args.metrics_out, "w") as f:
            f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
