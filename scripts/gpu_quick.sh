#!/usr/bin/env bash
# The quick preset on one GPU through Dask (--cluster local:1 --device cuda), from an empty store, then its timing
# table: what a GPU, where one is at hand, does with the harness, in minutes. Run from the repository root:
#   bash scripts/gpu_quick.sh [out-folder]
# Installs into .venv first when there is none (bash .ci/install.sh). Nothing in bench depends on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash .ci/install.sh
out=${1:-${OUT:-gpu-quick}}
mkdir -p "$out"
export BENCH_HOME="$out/home"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
.venv/bin/python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
.venv/bin/bench matrix --dataset mnist --preset quick --device cuda --dry-run --out "$out/run" | tail -3
start=$(date +%s)
.venv/bin/bench matrix --dataset mnist --preset quick --device cuda --executor dask --cluster local:1 \
  --no-progress --out "$out/run" --reports-dir "$out/reports" > "$out/matrix.log" 2>&1 || true
echo "quick preset on one GPU: $(( $(date +%s) - start )) s (log: $out/matrix.log)"
sed -n '/^### Timing/,/^### Failures/p' "$out/reports/mnist/README.md"
