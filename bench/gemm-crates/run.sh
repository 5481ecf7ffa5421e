#!/usr/bin/env bash
# Rerun the whole benchmark: bash run.sh [secs_per_case_per_crate] [runs]
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-0.4}
RUNS=${2:-3}
cargo build --release
CARGO_TARGET_DIR=target-v4 cargo build --release --features gemm-v4
mkdir -p results
rm -f results/*.txt
sleep 5
for r in $(seq 1 "$RUNS"); do
  for t in 1 2; do
    echo "== run $r threads $t  (uptime: $(uptime))"
    ./target/release/gemmbench "$t" "$SECS" "results/hash_default_t${t}_r${r}.txt" > "results/default_t${t}_r${r}.txt"
    ./target-v4/release/gemmbench "$t" "$SECS" "results/hash_v4_t${t}_r${r}.txt" > "results/v4_t${t}_r${r}.txt"
  done
done
python3 summarize.py
