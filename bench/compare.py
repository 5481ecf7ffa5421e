#!/usr/bin/env python3
"""Side-by-side MNIST MLP training: nabla against PyTorch on the same machine, same sitting.

Runs the two alternately (nabla, PyTorch, nabla, PyTorch, ...) with the same data, layer sizes,
optimizer, learning rate, batch size, epochs and threads, and prints for each: the median epoch
time (training steps only, evaluation excluded), the per-round ratio nabla / PyTorch, test
accuracy, and peak RSS (from /usr/bin/time). Not a test: a measurement for BENCHMARKS.md.

It also prints the CPU model, the vector width nabla's own kernels use (the widest the CPU
has, capped by NABLA_MAX_VECTOR=scalar|avx2|avx512, as src/simd/ decides), and this CPU's FMA
peak measured by bench/fma_peak.c (gcc -O3 -march=native; one copy = one core, --threads
copies at once = all cores used), beside every GFLOP/s figure. FLOPs counted: the GEMMs only,
2·in·out per sample and layer forward, twice that backward (weight and input gradients), less
the input gradient of the first layer, which is never formed.

Usage (from the repo root; the first run creates bench/.venv with CPU torch, ~3 GB download):
  python3 bench/compare.py                       # 784-256-128-10, batch 128, 2 threads
  python3 bench/compare.py --hidden 1024,1024 --rounds 3 --epochs 3
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


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v; returns (stdout, peak RSS in MiB)."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    return r.stdout, (int(m.group(1)) / 1024 if m else float("nan"))


def cpu_info():
    """(model name with family/model numbers, set of flags) from /proc/cpuinfo."""
    info, flags = {}, set()
    try:
        for line in open("/proc/cpuinfo"):
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if k == "flags":
                flags = set(v.split())
            elif k in ("model name", "cpu family", "model") and k not in info:
                info[k] = v
            if flags and len(info) == 3:
                break
    except OSError:
        pass
    name = f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"
    return name, flags


def vector_width(flags):
    """The level src/simd/ picks: widest supported, capped by NABLA_MAX_VECTOR."""
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        level = "avx512"
    elif {"avx2", "fma"} <= flags:
        level = "avx2"
    else:
        level = "scalar"
    order = ["scalar", "avx2", "avx512"]
    cap = os.environ.get("NABLA_MAX_VECTOR", "").strip().lower()
    if cap in order and order.index(cap) < order.index(level):
        level = cap
    return level, {"scalar": 128, "avx2": 256, "avx512": 512}[level]


def fma_peak(copies):
    """Measured FMA peak in GFLOP/s: (one core, `copies` cores at once), widest vectors."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "fma_peak")
        sh(["gcc", "-O3", "-march=native", os.path.join(HERE, "fma_peak.c"), "-o", exe])

        def best(out):
            vals = [float(m) for m in re.findall(r"([0-9.]+) GFLOP/s", out)]
            return max(vals) if vals else float("nan")

        one = best(subprocess.run([exe], capture_output=True, text=True).stdout)
        procs = [subprocess.Popen([exe], stdout=subprocess.PIPE, text=True) for _ in range(copies)]
        total = sum(best(p.communicate()[0]) for p in procs)
    return one, total


def train_flops(hidden, samples):
    """GEMM FLOPs of one training epoch of 784-hidden-10 (see the module docs)."""
    sizes = [784] + [int(h) for h in hidden.split(",")] + [10]
    pairs = list(zip(sizes, sizes[1:]))
    per_sample = sum(6 * i * o for i, o in pairs) - 2 * pairs[0][0] * pairs[0][1]
    return per_sample * samples, sum(2 * i * o for i, o in pairs)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.normpath(os.path.join(ROOT, "..", "shared", "datasets", "mnist")))
    p.add_argument("--hidden", default="256,128")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="A/B pairs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--peak", type=float, default=None,
                   help="all-cores FMA peak in GFLOP/s (default: measure with bench/fma_peak.c; 0: none)")
    p.add_argument("--train-samples", type=int, default=60000)
    a = p.parse_args()
    lr = a.lr if a.lr is not None else (0.05 if a.optimizer == "sgd" else 0.001)

    if not a.skip_build:
        sh(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    py = sh(["bash", os.path.join(HERE, "setup_venv.sh")], capture_output=True, text=True).stdout.strip()
    nabla_bin = os.path.join(ROOT, "target", "release", "nabla")
    common = ["--hidden", a.hidden, "--optimizer", a.optimizer, "--lr", str(lr), "--batch-size",
              str(a.batch_size), "--epochs", str(a.epochs), "--threads", str(a.threads), "--seed", str(a.seed)]
    if a.optimizer == "sgd":
        common += ["--momentum", str(a.momentum)]
    env = dict(os.environ)
    # Same thread count for PyTorch's OpenMP/MKL as for nabla.
    env["OMP_NUM_THREADS"] = str(a.threads)
    env["MKL_NUM_THREADS"] = str(a.threads)

    cpu, flags = cpu_info()
    level, bits = vector_width(flags)
    if a.peak is None:
        one, peak = fma_peak(a.threads)
        peak_note = f"measured: {one:.1f} GFLOP/s on one core, {peak:.1f} on {a.threads} at once"
    else:
        peak, peak_note = a.peak, "given with --peak"
    epoch_flops, infer_flops_per_image = train_flops(a.hidden, a.train_samples)
    print(f"CPU: {cpu}; nabla's kernels: {level} ({bits}-bit vectors); "
          f"FMA peak {peak:.1f} GFLOP/s ({peak_note})", flush=True)

    rows = {"nabla": [], "pytorch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            out = os.path.join(tmp, f"nabla{r}.json")
            _, rss = timed([nabla_bin, "train", "--no-save", "--quiet", "--data", a.data, "--metrics-out", out] + common)
            m = json.load(open(out))
            rows["nabla"].append({
                "median_epoch": statistics.median(e["seconds"] for e in m["epochs"]),
                "accuracy": m["test_accuracy"], "rss": rss, "infer": m["inference_seconds"]})
            out = os.path.join(tmp, f"torch{r}.json")
            _, rss = timed([py, os.path.join(HERE, "pytorch_mlp.py"), "--data", a.data, "--metrics-out", out] + common,
                           env=env)
            m = json.load(open(out))
            rows["pytorch"].append({"median_epoch": m["median_epoch_seconds"], "accuracy": m["test_accuracy"],
                                    "rss": rss, "infer": m["inference_seconds"]})
            print(f"round {r + 1}/{a.rounds}: nabla {rows['nabla'][-1]['median_epoch']:.3f} s/epoch, "
                  f"pytorch {rows['pytorch'][-1]['median_epoch']:.3f} s/epoch", flush=True)

    ratios = [n["median_epoch"] / t["median_epoch"] for n, t in zip(rows["nabla"], rows["pytorch"])]
    cfg = f"784-{a.hidden.replace(',', '-')}-10, {a.optimizer} lr {lr}, batch {a.batch_size}, {a.epochs} epochs, {a.threads} threads"
    print(f"\n{cfg}, {a.rounds} A/B rounds")
    print(f"CPU: {cpu}; nabla's kernels {level} ({bits}-bit); FMA peak {peak:.1f} GFLOP/s on "
          f"{a.threads} thread(s) ({peak_note}); {epoch_flops / 1e9:.1f} GFLOP per epoch, "
          f"{infer_flops_per_image * 10000 / 1e9:.2f} GFLOP per 10k-image inference")
    print("| framework | median epoch s (min–max over rounds) | training GFLOP/s (% of FMA peak) "
          "| test accuracy | peak RSS MiB | 10k-image inference s (GFLOP/s, % of peak) |")
    print("|---|---|---|---|---|---|")
    for name in ("nabla", "pytorch"):
        ep = [x["median_epoch"] for x in rows[name]]
        acc = statistics.median(x["accuracy"] for x in rows[name])
        rss = statistics.median(x["rss"] for x in rows[name])
        inf = statistics.median(x["infer"] for x in rows[name])
        gf = epoch_flops / statistics.median(ep) / 1e9
        igf = infer_flops_per_image * 10000 / inf / 1e9

        def share(x):
            return f"{100 * x / peak:.0f} %" if peak > 0 else "peak not given"

        print(f"| {name} | {statistics.median(ep):.3f} ({min(ep):.3f}–{max(ep):.3f}) | {gf:.1f} "
              f"({share(gf)} of {peak:.0f}) | {acc:.4f} | {rss:.0f} | {inf:.4f} "
              f"({igf:.1f}, {share(igf)}) |")
    print(f"epoch-time ratio nabla/pytorch per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
          f"median {statistics.median(ratios):.2f}")
    inf_ratios = [n["infer"] / t["infer"] for n, t in zip(rows["nabla"], rows["pytorch"])]
    print(f"inference ratio nabla/pytorch per round: {', '.join(f'{x:.2f}' for x in inf_ratios)}; "
          f"median {statistics.median(inf_ratios):.2f}")


if __name__ == "__main__":
    main()
