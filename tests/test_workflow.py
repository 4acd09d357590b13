"""The workflow end to end on the tiny study, its lint, its report, a rerun that does
nothing, and a short real Fashion-MNIST study."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from test_reruns import TINY, finished_tiny_study, snakemake

from harsanyi.analyses.scorecard import CLAIMS, compare_scorecards
from harsanyi.config import load_study
from harsanyi.store import read_results, verify_results

REPO = Path(__file__).resolve().parents[1]
FASHION = Path("/usr/share/datasets/fashion-mnist")


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
    return finished_tiny_study(tmp_path_factory)


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
        assert data.meta["model"]["run"] == run.name
        assert data.meta["model"]["epoch"] == run.epochs[-1]
        analysis = run_dir / "analysis" / study.extraction_id(run)
        figure = next(analysis.glob("a-*/two_phase.png"))
        assert (
            figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.with_suffix(".pdf").exists()
        )
        for table in ["order_strength.tsv", "jaccard.tsv", "shapley.tsv", "attributions.tsv"]:
            assert next(analysis.glob(f"a-*/{table}")).stat().st_size > 0, table
    study_dir = results / "studies" / study.study_id / study.analysis_id
    for name in [
        "two_phase",
        "jaccard",
        "ood",
        "similarity",
        "theory",
        "theory_ratio",
        "shapley",
        "attributions",
        "sensitivity",
        "scorecard",
    ]:
        assert (study_dir / f"{name}.png").exists() and (study_dir / f"{name}.pdf").exists(), name
    table = (study_dir / "two_phase.tsv").read_text().splitlines()
    assert table[0].split("\t")[:6] == ["run", "arch", "dataset", "epoch", "split", "order"]
    card = pd.read_csv(study_dir / "scorecard.tsv", sep="\t")
    assert len(card) == len(CLAIMS) * len(study.runs)
    sensitive = card[card.key == "higher_orders_sensitive"]
    assert len(sensitive) == len(study.runs) and (sensitive.verdict != "n/a").all()
    for run in study.runs:
        files = sorted(
            (results / run.dataset / "runs" / run.name / "sensitivity").glob("*/*/*.json")
        )
        assert [int(f.stem.split("_")[1]) for f in files] == study.sensitivity_epochs(run)
    trend = pd.read_csv(study_dir / "sensitivity_trend.tsv", sep="\t")
    assert set(trend.perturbation) == {"gauss:0.05", "pgd:0.01"}


@pytest.mark.slow
def test_rerun_of_a_finished_study_does_nothing(tiny_study):
    assert "Nothing to be done" in snakemake(tiny_study, "--cores", "2")


@pytest.mark.slow
def test_report_holds_every_figure(tiny_study, tmp_path):
    snakemake(tiny_study, "--report", str(tmp_path / "report.zip"))
    names = zipfile.ZipFile(tmp_path / "report.zip").namelist()
    for name in ["two_phase", "jaccard", "theory", "scorecard", "attributions", "picture"]:
        assert any(entry.endswith(f"{name}.png") for entry in names), name


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


@pytest.mark.slow
def test_a_fresh_install_reproduces_the_committed_tiny_scorecard(tiny_study):
    """The tiny study's scorecard, cell for cell, as committed (tests/data/tiny_scorecard.tsv,
    from a run with the locked versions): verdicts and reasons exactly, numbers to 1e-6.
    After a change that moves them on purpose: python3 -m snakemake --cores 2 --configfile
    tests/data/tiny.yaml, then copy results/studies/tiny-*/a-*/scorecard.tsv there."""
    (path,) = (tiny_study / "results" / "studies").glob("tiny-*/a-*/scorecard.tsv")
    difference = compare_scorecards(REPO / "tests" / "data" / "tiny_scorecard.tsv", path)
    assert difference.same, difference.summary() + "\n" + difference.cells.to_string()


@pytest.mark.slow
def test_study_docs_writes_a_page_of_the_study_from_its_tables(tiny_study, tmp_path):
    from harsanyi.analyses import attributions
    from harsanyi.analyses.common import read_tsv

    study = load_study(TINY)
    study_dir = tiny_study / "results" / "studies" / study.study_id / study.analysis_id
    command = [sys.executable, str(REPO / "scripts" / "study_docs.py"), str(study_dir)]
    command += [str(tmp_path / "page"), "--command", "the command", "--wall", "3 min"]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    page = (tmp_path / "page" / "README.md").read_text()
    assert page.startswith(f"# Study {study.study_id}")
    assert "- Command: `the command`" in page and "- Wall time: 3 min" in page
    for table in ("scorecard.tsv", "scorecard_seeds.tsv", "shapley.tsv", "attributions.tsv"):
        assert (tmp_path / "page" / table).read_bytes() == (study_dir / table).read_bytes()
    expected = attributions.readme_part(
        read_tsv(study_dir / "shapley.tsv"), read_tsv(study_dir / "attributions.tsv")
    )
    assert expected in page
    assert "Joint extraction" not in page  # the tiny study has none
