"""What a second invocation of a finished study recomputes (issue 5: lab scale).

One finished run of the tiny study (``finished_tiny_study``, shared with test_shared_store.py
and test_slurm.py) is dry-run again: from a checkout with new mtimes, from a second user's
working directory, and with one study parameter changed.  The "Job stats" table of the dry
run says exactly which jobs would run; expected counts come from the study's own structure
(``load_study``) and from a dry run of the whole study into an empty results directory.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from harsanyi.config import load_study

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"
FINISHED_MARKER = ".finished"
NOTHING_TO_DO = "Nothing to be done"
# Per-run analysis rules whose params hold analysis.salient_ratio, and every study-level rule:
# the study's tables and figures live in a directory named by all analysis settings, so a
# new setting makes a complete new set beside the old one.  The remaining per-run rules do
# not depend on it.
RATIO_RUN_RULES = ("two_phase_run", "theory_run", "scorecard_run")
RATIO_NOISY_RULES = ("ood_run",)
RATIO_STUDY_RULES = (
    "similarity_study",
    "two_phase_study",
    "jaccard_study",
    "theory_study",
    "ood_study",
    "scorecard",
    "shapley_study",
    "attributions_study",
    "all",
)
RATIO_FREE_RULES = (
    "select_samples",
    "train",
    "extract",
    "jaccard_run",
    "shapley_run",
    "attributions_run",
)


def snakemake(
    workdir: Path,
    *args: str,
    config: Path = TINY,
    results: Path | None = None,
    snakefile: Path = REPO / "Snakefile",
    timeout: int = 900,
) -> str:
    """Run the workflow on a study config in ``workdir``; stdout+stderr, or fail with both."""
    results = results if results is not None else workdir / "results"
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(snakefile),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "--config",
        f"results={results}",
        *args,
    ]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n{output[-6000:]}")
    return output


def finished_tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Working directory (results under ``results/``) of the tiny study run to the end.

    Runs once per pytest session (minutes): under pytest-xdist the first worker to ask runs it
    in the session's shared temporary directory while the others wait on a file lock, and each
    worker gets its own copy (mtimes kept), so that Snakemake's directory locks of one worker
    never meet another's.  Callers must not change what is in it.
    """
    basetemp = tmp_path_factory.getbasetemp()
    shared = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp
    source = shared / "finished-tiny-study"
    with FileLock(f"{source}.lock"):
        if not (source / FINISHED_MARKER).exists():
            shutil.rmtree(source, ignore_errors=True)
            source.mkdir()
            snakemake(source, "--cores", "2")
            (source / FINISHED_MARKER).touch()
    if shared == basetemp:
        return source
    workdir = basetemp / "finished-tiny-study"
    if not (workdir / FINISHED_MARKER).exists():
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.copytree(source, workdir, symlinks=True)
    return workdir


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Jobs per rule from the "Job stats" table of a dry run ({} when nothing is to be done)."""
    if NOTHING_TO_DO in dry_run_output:
        return {}
    table = dry_run_output.partition("Job stats:")[2]
    if not table:
        raise AssertionError(f"no 'Job stats' table in the dry run:\n{dry_run_output[-3000:]}")
    counts: dict[str, int] = {}
    for line in table.splitlines()[3:]:
        match = re.fullmatch(r"(\S+)\s+(\d+)", line.strip())
        if match is None or match[1] == "total":
            break
        counts[match[1]] = int(match[2])
    return counts


def variant_config(directory: Path, name: str, change) -> Path:
    """tiny.yaml with ``change(config)`` applied, written (keys sorted) to ``directory``."""
    config = copy.deepcopy(yaml.safe_load(TINY.read_text()))
    change(config)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=True))
    return path


def checkout_with_new_mtimes(destination: Path) -> Path:
    """A copy of the repository as a fresh clone would be: same content, every mtime now."""
    shutil.copytree(
        REPO,
        destination,
        copy_function=shutil.copyfile,
        ignore=shutil.ignore_patterns(
            ".git", ".snakemake", "results", "__pycache__", "*.egg-info", ".*_cache"
        ),
    )
    for sub in ("scripts", "src", "workflow"):
        for path in (destination / sub).rglob("*"):
            os.utime(path)
    return destination


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_tiny_study(tmp_path_factory)


@pytest.fixture(scope="module")
def full_counts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    """Jobs per rule of the whole tiny study (dry run into an empty results directory)."""
    workdir = tmp_path_factory.mktemp("empty-store")
    counts = job_counts(snakemake(workdir, "--dry-run"))
    study = load_study(TINY)
    assert counts["train"] == len(study.runs) >= 2
    assert counts["extract"] == sum(len(run.epochs) for run in study.runs)
    return counts


def dry_run(finished: Path, config: Path = TINY, **kwargs) -> dict[str, int]:
    output = snakemake(finished, "--dry-run", config=config, results=finished / "results", **kwargs)
    return job_counts(output)


def without(counts: dict[str, int], *rules: str) -> dict[str, int]:
    return {rule: count for rule, count in counts.items() if rule not in rules}


pytestmark = pytest.mark.slow


def test_checkout_with_new_mtimes_reruns_nothing(finished: Path, tmp_path: Path) -> None:
    clone = checkout_with_new_mtimes(tmp_path / "clone")
    assert dry_run(finished, snakefile=clone / "Snakefile") == {}


def test_second_users_working_directory_reruns_nothing(finished: Path, tmp_path: Path) -> None:
    other = tmp_path / "second-user"
    other.mkdir()
    output = snakemake(other, "--dry-run", results=finished / "results")
    assert job_counts(output) == {}
    assert not (other / "results").exists()


def test_reformatted_config_with_same_settings_reruns_nothing(
    finished: Path, tmp_path: Path
) -> None:
    # the same settings with the keys in another order (sorted): a params trigger that
    # compares dict reprs would see every train and extract job as changed
    config = variant_config(tmp_path, "resorted", lambda config: None)
    assert config.read_text() != TINY.read_text()
    assert dry_run(finished, config) == {}


def test_salient_ratio_reruns_only_the_analyses_that_use_it(
    finished: Path, full_counts: dict[str, int], tmp_path: Path
) -> None:
    config = variant_config(
        tmp_path, "ratio", lambda c: c.setdefault("analysis", {}).update(salient_ratio=0.1)
    )
    counts = dry_run(finished, config)
    study = load_study(TINY)
    noisy = sum(run.label_noise > 0 for run in study.runs)
    expected = {rule: len(study.runs) for rule in RATIO_RUN_RULES}
    expected |= {rule: noisy for rule in RATIO_NOISY_RULES}
    expected |= {rule: 1 for rule in RATIO_STUDY_RULES}
    known = set(expected) | set(RATIO_FREE_RULES)
    assert {rule: counts.get(rule, 0) for rule in known} == {
        rule: expected.get(rule, 0) for rule in known
    }
    # rules added to the workflow later: at most what the whole study runs
    for rule in set(counts) - known:
        assert counts[rule] <= full_counts[rule], rule


def test_extraction_iters_reextracts_every_run_without_training_or_games(
    finished: Path, full_counts: dict[str, int], tmp_path: Path
) -> None:
    config = variant_config(tmp_path, "iters", lambda c: c["extraction"].update(iters=301))
    # the decomposition changes: the stored games (the model's part) are decomposed again
    assert dry_run(finished, config) == without(full_counts, "select_samples", "train", "games")
    old = load_study(TINY)
    new = load_study(config)
    for old_run, new_run in zip(old.runs, new.runs, strict=True):
        assert new_run.name == old_run.name  # same training run ...
        assert new.extraction_id(new_run) != old.extraction_id(old_run)  # ... new x-<hash>
        assert not (
            finished
            / "results"
            / new_run.dataset
            / "runs"
            / new_run.name
            / "interactions"
            / new.extraction_id(new_run)
        ).exists()


def test_training_lr_reruns_everything_of_the_runs(
    finished: Path, full_counts: dict[str, int], tmp_path: Path
) -> None:
    config = variant_config(tmp_path, "lr", lambda c: c["training"].update(lr=0.04))
    # the sample selection does not depend on training, everything else does
    assert dry_run(finished, config) == without(full_counts, "select_samples")


def test_new_label_noise_level_runs_only_the_new_runs(
    finished: Path, full_counts: dict[str, int], tmp_path: Path
) -> None:
    config = variant_config(tmp_path, "noise", lambda c: c.update(label_noise=[0.0, 0.2, 0.4]))
    counts = dry_run(finished, config)
    new_runs = [run for run in load_study(config).runs if run.label_noise == 0.4]
    assert len(new_runs) == 1
    assert counts.get("train", 0) == len(new_runs)
    assert counts.get("select_samples", 0) == 0
    assert counts.get("extract", 0) == sum(len(run.epochs) for run in new_runs)
