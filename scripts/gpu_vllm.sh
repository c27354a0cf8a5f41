#!/usr/bin/env bash
# On a GPU machine: install upstream vLLM in .venv-vllm, run the differential test of our engine against the vLLM
# backend, and the serving bench of both backends on CUDA in bf16 (our default there); writes JSON under
# bench-results/gpu/. Usage: scripts/gpu_vllm.sh [--quick]
#   - needs: a CUDA GPU (nvidia-smi), Python 3.11, the package registries;
#   - writes: bench-results/gpu/{env.json,differential.txt,serving.json,status.json}.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench-results/gpu
mkdir -p "$OUT"
QUICK=${1:-}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt"

# upstream vllm (CUDA), no CPU constraints file
make setup-vllm VLLM_EXTRA=vllm VLLM_CONSTRAINTS=
PY=.venv-vllm/bin/python
$PY - <<'PY' > "$OUT/env.json"
import json, torch, vllm
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda, "vllm": vllm.__version__,
                  "gpu": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count()}))
PY

status=0
# the differential (the CPU test's fp32 comparison, here on CUDA: LORALEDGER_TEST_DEVICE picks the device)
LORALEDGER_TEST_DEVICE=cuda $PY -m pytest -q tests/vllm/test_differential.py 2>&1 | tee "$OUT/differential.txt" \
    || status=1
# both backends' serving benches, same weights and workload, bf16 on CUDA
.venv-vllm/bin/loraledger bench serving $QUICK --device cuda --dtype bfloat16 --backends loraledger,vllm \
    --json "$OUT/serving.json" || status=1
echo "{\"status\": $status}" > "$OUT/status.json"
exit $status
