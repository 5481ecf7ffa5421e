#!/usr/bin/env bash
# Create (if missing) the Python venv used by nabla's PyTorch comparison benchmarks and
# print the path of its python interpreter on stdout (the only thing printed there; progress
# goes to stderr), so a driver can do:  PY=$(bash bench/setup_venv.sh)
#
# Location: $NABLA_BENCH_VENV if set, else bench/.venv next to this script.
# Idempotent: an existing venv that already imports torch, numpy and safetensors is reused
# untouched; otherwise the missing packages are (re)installed with pip.
# Note: the default torch wheel from PyPI pulls ~3 GB of nvidia/CUDA packages even on a CPU-only
# machine; that is expected (the CPU-only wheel index is not reachable here).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${NABLA_BENCH_VENV:-$here/.venv}"
py="$venv/bin/python"
packages=(torch numpy safetensors)

check() { "$py" -c 'import torch, numpy, safetensors' >/dev/null 2>&1; }

if [ ! -x "$py" ]; then
    echo "creating venv at $venv" >&2
    python3 -m venv "$venv" >&2
fi

if ! check; then
    echo "installing ${packages[*]} into $venv (this can take a while)" >&2
    "$py" -m pip install --upgrade pip >&2
    "$py" -m pip install "${packages[@]}" >&2
    check || { echo "error: import torch/numpy/safetensors still fails in $venv" >&2; exit 1; }
fi

"$py" -c 'import torch, numpy; import sys; print("torch", torch.__version__, "numpy", numpy.__version__, file=sys.stderr)' >&2
echo "$py"
