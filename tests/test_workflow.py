"""The workflow end to end on the tiny study, its lint, and a rerun that does nothing."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from harsanyi.store import read_results, verify_results
from harsanyi.study import load_study

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(TINY),
        "--config",
        f"results={workdir / 'results'}",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def test_lint_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations, your workflow is in a good condition!" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    snakemake(workdir, "--cores", "2")
    return workdir


@pytest.mark.slow
def test_tiny_study_end_to_end(tiny_study):
    study = load_study(TINY)
    results = tiny_study / "results"
    for run in study.runs:
        run_dir = results / run.dataset / "runs" / run.name
        assert (run_dir / "metrics.tsv").exists() and (run_dir / "run.json").exists()
        files = sorted((run_dir / "interactions").glob("x-*/epoch_*.h5"))
        assert [int(f.stem.split("_")[1]) for f in files] == run.epochs
        for path in files:
            verify_results(path)
        data = read_results(files[-1])
        assert data.n == 6 and data.v.shape == (len(data.sample_ids), 64)
        expected = {"train", "test"} | ({"flipped"} if run.label_noise > 0 else set())
        assert set(data.split.tolist()) == expected
        assert (
            data.meta["model"]["run"] == run.name and data.meta["model"]["epoch"] == run.epochs[-1]
        )
        figure = next((run_dir / "analysis").glob("x-*/two_phase.png"))
        assert (
            figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.with_suffix(".pdf").exists()
        )
    study_dir = next((results / "studies").glob("tiny-*"))
    assert (study_dir / "two_phase.png").exists()
    table = (study_dir / "two_phase.tsv").read_text().splitlines()
    assert table[0].split("\t")[:6] == ["run", "arch", "dataset", "epoch", "split", "order"]


@pytest.mark.slow
def test_rerun_of_a_finished_study_does_nothing(tiny_study):
    start = time.monotonic()
    result = snakemake(tiny_study, "--cores", "2")
    assert "Nothing to be done" in result.stdout + result.stderr
    assert time.monotonic() - start < 120


@pytest.mark.slow
def test_report_holds_every_figure(tiny_study):
    snakemake(tiny_study, "--report", str(tiny_study / "report.zip"))
    import zipfile

    names = zipfile.ZipFile(tiny_study / "report.zip").namelist()
    assert sum(name.endswith("two_phase.png") for name in names) >= 3


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_training_and_extraction(tmp_path):
    config = REPO / "tests" / "data" / "fashion_mnist_ci.yaml"
    snakemake(tmp_path, "--cores", "2", config=config)
    study = load_study(config)
    assert {run.arch for run in study.runs} == {"lenet", "resnet18"}
    for run in study.runs:
        run_dir = tmp_path / "results" / "fashion_mnist" / "runs" / run.name
        metrics = (run_dir / "metrics.tsv").read_text().splitlines()
        assert len(metrics) == 1 + 3  # header, epochs 0..2
        flipped = (run_dir / "flipped.tsv").read_text().splitlines()
        assert len(flipped) == 1 + 80  # 20 % of 400 training labels
        files = sorted((run_dir / "interactions").glob("x-*/epoch_*.h5"))
        assert len(files) == len(run.epochs) == 2
        data = read_results(files[-1])
        assert data.n == 6 and sorted(set(data.split.tolist())) == ["flipped", "test", "train"]
        assert (data.split == "flipped").sum() == 4
