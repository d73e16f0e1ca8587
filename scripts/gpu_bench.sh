#!/usr/bin/env bash
# The GPU bench, in one go, on a machine with an NVIDIA GPU and CUDA builds of torch and jax:
# `gradparity bench --device cuda` (torch and jax on the GPU, the full plan; the quick one
# if the full one has not finished within $GPU_BENCH_LIMIT seconds, default 300) and, on the
# same machine, the CPU baseline `gradparity bench --quick`, each with its bench.csv and
# bench.md, plus machine.txt (the card, the driver, the frameworks). Where torch sees no
# GPU it says "no GPU" at once and exits 2, writing nothing.
#
#   bash scripts/gpu_bench.sh [DIR]      # DIR: default $OUT if set, else reports/gpu
#
# Run from anywhere; it needs no install (the repository goes on PYTHONPATH) and no
# network. Python: $PYTHON if set, else .venv/bin/python if present, else python3.
# ADBench's input ships with the package (harness/cases/data/adbench).
set -euo pipefail
cd "$(dirname "$0")/.."

out_dir="${1:-${OUT:-reports/gpu}}"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX must leave GPU memory to torch in the same process

# Without a GPU there is nothing to time: say so at once (exit 2, as `bench --device cuda`),
# before any folder is made or any plan started.
if ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu_bench: no GPU: torch sees no CUDA device here (torch.cuda.is_available() is False); nothing written" >&2
  exit 2
fi
mkdir -p "$out_dir/cuda" "$out_dir/cpu"

{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), $(nproc) CPUs"
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 || true
  "$py" - <<'PY'
import jax
import torch

cuda = torch.cuda.is_available()
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available:", cuda,
      torch.cuda.get_device_name() if cuda else "")
print("jax", jax.__version__, jax.devices())
PY
} 2>&1 | tee "$out_dir/machine.txt"

status=0
limit="${GPU_BENCH_LIMIT:-300}"
full=0
timeout "$limit" "$py" -m harness.cli bench --device cuda --out "$out_dir/cuda" || full=$?
if [ "$full" -eq 124 ]; then
  echo "gpu_bench: the full GPU plan did not finish within ${limit} s; the quick plan instead"
  "$py" -m harness.cli bench --quick --device cuda --out "$out_dir/cuda-quick" || status=$?
elif [ "$full" -ne 0 ]; then
  echo "gpu_bench: the full GPU plan failed (exit $full)" >&2
  status=$full
fi
"$py" -m harness.cli bench --quick --out "$out_dir/cpu" || status=$?
echo "gpu_bench: wrote $out_dir/cuda and $out_dir/cpu (exit $status)"
exit "$status"
