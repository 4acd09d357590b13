#!/usr/bin/env bash
# The reduced real GPU study (config/gpu_study.yaml) on a lent GPU machine, in one call.
#
#   bash benchmarks/gpu_study.sh --prepare   # here, once: .whl/ (Snakemake and what else the
#                                            # device image lacks) and .data/fashion_mnist
#   bash benchmarks/gpu_study.sh             # there, carrying .whl and .data; stops after
#                                            # GPU_STUDY_TIMEOUT seconds (480)
#
# On the device it installs the wheels into a virtual environment that sees the image's own
# torch, runs the study with every CPU core (the LPs) and the GPU (training, games), and
# leaves in $OUT (else ./gpu_study_out) the log, the study's tables and figures as one
# archive, and summary.txt: commit, GPU, wall time, job counts and the scorecard.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if [ "${1:-}" = "--prepare" ]; then
    bash benchmarks/gpu_wheelhouse.sh
    mkdir -p .data/fashion_mnist
    python3 - <<'PY'
import gzip
from pathlib import Path

source, target = Path("/usr/share/datasets/fashion-mnist"), Path(".data/fashion_mnist")
keep = 12000  # training images kept: the test files travel whole
for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
    data = gzip.open(source / name).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    row = 1
    for size in shape[1:]:
        row *= size
    header = data[:4] + keep.to_bytes(4, "big") + data[8 : 4 + 4 * dims]
    body = data[4 + 4 * dims : 4 + 4 * dims + keep * row]
    (target / name).write_bytes(gzip.compress(header + body))
for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
    (target / name).write_bytes((source / name).read_bytes())
PY
    grep -qxF "/.data/" .git/info/exclude 2>/dev/null || echo "/.data/" >> .git/info/exclude
    du -sh .whl .data
    exit 0
fi

out="${OUT:-$repo/gpu_study_out}"
mkdir -p "$out"
python=python3
if ! python3 -c "import snakemake, highspy" 2>/dev/null; then
    python3 -m venv --system-site-packages /tmp/gpu-study-venv
    /tmp/gpu-study-venv/bin/python -m pip install -q --no-index --no-deps .whl/*.whl
    python=/tmp/gpu-study-venv/bin/python
fi
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{
    echo "commit  $(git rev-parse --short HEAD 2>/dev/null || echo unknown) on $(hostname)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
        | sed 's/^/gpu     /' || echo "gpu     none seen by nvidia-smi"
    echo "cores   $(nproc)"
    "$python" -c "import torch; print('torch  ', torch.__version__, 'cuda', torch.cuda.is_available())"
} | tee "$out/summary.txt"
start=$(date +%s)
status=0
timeout --signal=INT --kill-after=30 "${GPU_STUDY_TIMEOUT:-480}" \
    "$python" -m snakemake --cores "$(nproc)" --configfile config/gpu_study.yaml \
    --rerun-incomplete > "$out/snakemake.log" 2>&1 || status=$?
end=$(date +%s)
echo "wall    $((end - start)) s, snakemake exit status $status" | tee -a "$out/summary.txt"
grep -A30 "^Job stats" "$out/snakemake.log" | head -32 >> "$out/summary.txt" || true
study=$(ls -d results/studies/gpu_study-*/a-* 2>/dev/null | head -1 || true)
if [ -n "$study" ]; then
    cat "$study/scorecard.tsv" >> "$out/summary.txt" 2>/dev/null || true
    tar -czf "$out/study.tar.gz" -C "$(dirname "$study")" "$(basename "$study")"
fi
tar -czf "$out/benchmarks.tar.gz" results/benchmarks 2>/dev/null || true
cat "$out/summary.txt"
exit "$status"
