"""The CPU form of the GPU check (`benchmarks/gpu_check.sh --cpu-small`), as CI runs it: it
finishes, prints every section of the side-by-side table, and writes the JSON it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harsanyi.data import FASHION_MNIST_DEBIAN_ROOT

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"

pytestmark = pytest.mark.skipif(
    not FASHION_MNIST_DEBIAN_ROOT.is_dir(),
    reason=f"needs Debian's dataset-fashion-mnist ({FASHION_MNIST_DEBIAN_ROOT})",
)


@pytest.fixture(scope="module")
def cpu_small(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "check.json"
    env = {**os.environ, "GPU_CHECK_TIMEOUT": "240", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        ["bash", str(SCRIPT), "--cpu-small", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_cpu_small_prints_every_section(cpu_small):
    text, _ = cpu_small
    for expected in (
        "harsanyi GPU check (CPU-small form)",
        "device    cpu (",
        "precision float32 forward passes, TF32 off",
        "note      CPU form:",
        "lenet images/s",
        "vgg11 images/s",
        "resnet18 images/s",
        "lenet n=8 rows/s",
        " masked ",
        " plain ",
        ">= 50%",
        "exact n=8 (CPU",
        "adam n=8 (cpu",
        "peak memory",
        "MiB RSS",
        "GPU vs CPU",
        "n/a, no GPU",
        "wall time",
    ):
        assert expected in text, f"{expected!r} missing from:\n{text}"
    assert "PASS" in text or "FAIL" in text
    assert text.rstrip().endswith(("all targets met", "target(s) failed"))


@pytest.mark.slow
def test_cpu_small_writes_its_measurements(cpu_small):
    _, measured = cpu_small
    assert measured["cpu_small"] is True and measured["device"].startswith("cpu")
    for arch in ("lenet", "vgg11", "resnet18"):
        assert measured[f"train_{arch}_images_per_s"] > 0
    assert measured["extraction_lenet_n8"]["masked"] > 0
    assert measured["extraction_lenet_n8"]["plain"] > 0
    assert measured["sparsify_exact_n8_per_s"] > 0 and measured["sparsify_adam_n8_per_s"] > 0
    assert measured["gpu_cpu"] is None


@pytest.mark.slow
def test_cpu_small_json_renders_the_printed_table_for_the_docs(cpu_small):
    """The JSON carries the table exactly as printed, and scripts/docs_numbers.py renders it
    with the device, the software and how many targets failed."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import docs_numbers

    text, measured = cpu_small
    assert measured["table"] in text and "lenet images/s" in measured["table"]
    assert measured["command"].startswith("benchmarks/gpu_check.sh --cpu-small --json ")
    rendered = docs_numbers.render_gpu_check(measured)
    assert measured["table"].rstrip() in rendered
    failed = text.count("| FAIL")
    assert measured["targets_failed"] == failed
    assert ("every target met" in rendered) == (failed == 0)


def test_the_check_refuses_a_gpu_it_cannot_use(tmp_path):
    """A GPU node whose PyTorch sees no GPU: the check fails at once, naming the variable,
    instead of measuring the CPU (faked by CUDA_VISIBLE_DEVICES on this GPU-less machine)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is usable here")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0", "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "DeviceError" in done.stderr and "CUDA_VISIBLE_DEVICES='0'" in done.stderr
