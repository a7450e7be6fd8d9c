#!/usr/bin/env bash
# The GPU checks and GPU benchmarks in one go, for a machine with a CUDA GPU and lossforge installed:
# tests/e2e/test_cuda.py (every loss and miner against the CPU, real runs on the GPU), then losses.py,
# training.py and step_costs.py with --device cuda. Tables (markdown) and the log go to OUT_DIR.
#
#   bash benchmarks/on_gpu.sh OUT_DIR
set -uo pipefail
out=$(mkdir -p "${1:?usage: bash benchmarks/on_gpu.sh OUT_DIR}" && cd "$1" && pwd)
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, torch.cuda.get_device_name())"
  time python3 -m pytest -q -p no:cacheprovider tests/e2e/test_cuda.py 2>&1 | tee "$out/test_cuda.txt" | tail -40
  time python3 benchmarks/losses.py --device cuda --sizes 4096 65536 --classes 10 1000 --repeats 21 --max-wait 0 --out "$out"
  time python3 benchmarks/training.py --device cuda --repeats 3 --matmul-size 8192 --max-wait 0 --out "$out"
  time python3 benchmarks/step_costs.py --device cuda --epochs 3 --max-wait 0 --out "$out"
} 2>&1 | tee "$out/log.txt"
