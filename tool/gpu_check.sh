#!/usr/bin/env bash
# The checks that need a GPU, in one run: the test suite's CUDA cases, then the benchmark on the
# GPU, whose precision case is target 6 of docs/performance.md (fp32 against mixed precision
# training clips/s, and one GPU against the authors' 130-160 clips/s on two).
#
#   bash tool/gpu_check.sh [output_dir]     # default: output/ (the benchmark's JSON and table)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-output}"
python - <<'PY'
import torch
if not torch.cuda.is_available():
    raise SystemExit("error: no GPU is visible to torch (torch.cuda.is_available() is False)")
print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
      f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
PY
python -m pytest -q -k cuda tests/
python tool/benchmark.py --device cuda --output_dir "$out"
