"""Aggregate results/*.txt into a markdown table (median over runs of per-run medians)."""
import glob, re, statistics, collections, os
os.chdir(os.path.dirname(os.path.abspath(__file__)))
data = collections.defaultdict(list)   # (case, thr, col) -> [gflops per run]
order = []
for f in sorted(glob.glob("results/*_t*_r*.txt")):
    if os.path.basename(f).startswith("hash"):
        continue
    variant = os.path.basename(f).split("_")[0]
    if variant not in ("default", "v4"):
        continue
    for line in open(f):
        if not line.startswith("RESULT"):
            continue
        _, case, thr, g, mm, fa = line.rstrip("\n").split("\t")
        if (case, thr) not in order:
            order.append((case, thr))
        if variant == "default":
            data[(case, thr, "gemm")].append(float(g))
            data[(case, thr, "matrixmultiply")].append(float(mm))
            data[(case, thr, "faer")].append(float(fa))
        else:
            data[(case, thr, "gemm+x86-v4")].append(float(g))
            data[(case, thr, "faer (v4 build)")].append(float(fa))
cols = ["gemm", "matrixmultiply", "faer", "gemm+x86-v4"]
order.sort(key=lambda ct: (ct[1],))  # group by threads, keep case order
out = ["| shape (C[m×n] = A[m×k]·B[k×n]) | thr | " + " | ".join(cols) + " |",
       "|---|---|" + "---:|" * len(cols)]
for case, thr in order:
    vals = [statistics.median(data[(case, thr, c)]) if data[(case, thr, c)] else float("nan") for c in cols]
    best = max(vals[:3])
    cells = [("**%.1f**" % v if v == best else "%.1f" % v) for v in vals[:3]] + ["%.1f" % vals[3]]
    out.append(f"| {case} | {thr} | " + " | ".join(cells) + " |")
# per-run spread
nruns = max(len(v) for v in data.values())
out.append("")
out.append(f"(median of {nruns} runs per cell; bold = fastest of the three crates in the default build)")
# geometric means
import math
for thr in ("1", "2"):
    gm = []
    for c in cols:
        xs = [statistics.median(data[(case, t, c)]) for case, t in order if t == thr]
        gm.append(math.exp(sum(map(math.log, xs)) / len(xs)))
    out.append(f"\ngeomean over all {len([1 for _, t in order if t == thr])} shapes, {thr} thread(s): " +
               ", ".join(f"{c} {g:.1f}" for c, g in zip(cols, gm)))
# run-to-run spread
spread = []
for k, v in data.items():
    if len(v) > 1:
        spread.append((max(v) - min(v)) / statistics.median(v))
if spread:
    out.append(f"\nrun-to-run spread (max-min)/median over cells: median {statistics.median(spread)*100:.1f}%, max {max(spread)*100:.1f}%")
# bitwise determinism across thread counts
hashes = collections.defaultdict(set)
rep = True
for f in glob.glob("results/hash_*_t*_r*.txt"):
    variant = os.path.basename(f).split("_")[1]
    if variant not in ("default", "v4"):
        continue
    for line in open(f):
        case, cr, h, r = line.rstrip("\n").split("\t")
        hashes[(variant, case, cr)].add(h)
        rep &= r.endswith("true")
nd = [k for k, v in hashes.items() if len(v) > 1]
out.append(f"\nbitwise output identical across 1 vs 2 threads and across runs: "
           f"{len(hashes) - len(nd)}/{len(hashes)} (variant,shape,crate) triples; differing: {nd if nd else 'none'}; "
           f"repeat-call identical within process: {rep}")
# cross-crate bit equality
xc = collections.Counter()
for (variant, case, cr), hs in hashes.items():
    pass
text = "\n".join(out)
open("results/table.md", "w").write(text + "\n")
print(text)
