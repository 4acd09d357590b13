#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): training, extraction and sparsifier throughput,
# peak memory, GPU/CPU agreement of the interactions. Runs this checkout's code.
#
#   benchmarks/gpu_check.sh                    # on a GPU node; stops after 8 minutes
#   benchmarks/gpu_check.sh --cpu-small        # CPU form (CI), under a minute
#   srun --gpus=1 --time=10 benchmarks/gpu_check.sh --json gpu_check.json
#
# Extra arguments go to gpu_check.py (--device, --json PATH, --strict).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
limit="${GPU_CHECK_TIMEOUT:-480}"
echo "commit    $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
     "on $(hostname)"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
        | sed 's/^/gpu       /' || true
fi
exec timeout --signal=INT --kill-after=30 "$limit" python3 "$repo/benchmarks/gpu_check.py" "$@"
