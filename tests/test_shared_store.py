"""One results directory shared by a lab (issue 5): concurrent writers, the catalog, faults.

Snakemake locks per working directory, so two users (two working directories) pointed at the
same results directory may compute the same file at the same time; atomic renames must keep
every file whole.  A job killed mid-write must leave nothing that passes for a result, and a
damaged results file must be reported by `harsanyi store verify` and by the jobs that read it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_reruns import TINY, finished_tiny_study, snakemake

from harsanyi.config import load_study
from harsanyi.store import (
    InteractionResults,
    ResultsFileError,
    canonical_json,
    is_temp_file,
    read_results,
    verify_results,
    verify_store,
    write_results,
)

REPO = Path(__file__).resolve().parents[1]
ARRAYS = ("v", "I_and", "I_or", "p", "q")


def harsanyi_cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "harsanyi.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def study_run_files(results: Path, run_name: str) -> list[Path]:
    """A run's interaction files, relative to the results root."""
    run_dir = next(results.glob(f"*/runs/{run_name}"))
    return sorted(p.relative_to(results) for p in run_dir.glob("interactions/x-*/epoch_*.h5"))


def assert_same_results(path: Path, reference: Path) -> None:
    got, expected = read_results(path), read_results(reference)
    for name in ARRAYS:
        np.testing.assert_allclose(
            getattr(got, name), getattr(expected, name), rtol=0, atol=1e-12, err_msg=str(path)
        )
    np.testing.assert_array_equal(got.sample_ids, expected.sample_ids)
    np.testing.assert_array_equal(got.split, expected.split)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_tiny_study(tmp_path_factory)


# --------------------------------------------------------------------------- concurrent users


@pytest.mark.slow
def test_two_users_writing_one_store_at_once(finished: Path, tmp_path: Path) -> None:
    study = load_study(TINY)
    run = next(r for r in study.runs if r.label_noise > 0)  # all three splits in its files
    reference = finished / "results"
    relative = study_run_files(reference, run.name)
    assert len(relative) == len(run.epochs)
    shared = tmp_path / "shared-results"
    run_dir = shared / run.dataset / "runs" / run.name
    targets = [str(shared / path) for path in relative] + [str(run_dir / "run.json")]
    users = []
    for user in ("alice", "bob"):
        workdir = tmp_path / user
        workdir.mkdir()
        # Snakemake deletes a job's existing outputs before it runs the job: when the other
        # user finished that job a moment earlier, the file vanishes until this job writes it
        # again, and a job of hers reading it may fail.  Files are never corrupt, and the
        # settings of profiles/slurm (and the README for labs) make both runs finish:
        # wait for a deleted output to reappear, run a job that failed again.
        command = [
            sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
            "--directory", str(workdir), "--configfile", str(TINY),
            "--config", f"results={shared}", "--cores", "1",
            "--retries", "2", "--latency-wait", "60", *targets,
        ]  # fmt: skip
        log = (tmp_path / f"{user}.log").open("w")
        users.append((user, log, subprocess.Popen(command, cwd=workdir, stdout=log, stderr=log)))
    for user, log, process in users:
        assert process.wait(timeout=900) == 0, (tmp_path / f"{user}.log").read_text()[-5000:]
        log.close()
    # both really worked: each of them ran the training (Snakemake's locks do not span them)
    for user, _, _ in users:
        assert "rule train:" in (tmp_path / f"{user}.log").read_text(), user

    verified = harsanyi_cli("store", "verify", str(shared))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for path in relative:
        assert_same_results(shared / path, reference / path)
    assert (run_dir / "metrics.tsv").read_text() == (
        reference / run.dataset / "runs" / run.name / "metrics.tsv"
    ).read_text()
    for epoch in run.epochs:
        name = f"checkpoints/epoch_{epoch:04d}.pt"
        got = torch.load(run_dir / name, map_location="cpu", weights_only=False)["state_dict"]
        expected = torch.load(
            reference / run.dataset / "runs" / run.name / name,
            map_location="cpu",
            weights_only=False,
        )["state_dict"]
        assert got.keys() == expected.keys()
        for key in got:
            assert torch.equal(got[key], expected[key]), f"{name}: {key}"
    leftovers = [p for p in shared.rglob("*") if is_temp_file(p)]
    assert leftovers == []


@pytest.mark.slow
def test_gc_beside_a_running_study_takes_nothing_from_it(finished: Path, tmp_path: Path) -> None:
    """`store gc --apply --grace-hours 0` in a loop while a study runs on the store (issue #22
    item 6): the study records its runs in its first job, so gc, which sees another study's
    record and would collect every run that record does not name, takes none of them once the
    study has started, and the study finishes. Its record is removed first, and its analyses
    and one checkpoint's interactions, so that the rerun writes a new record and works for a
    while."""
    from harsanyi.maintenance import find_garbage, remove, study_record, write_study_record

    root = tmp_path / "results"
    shutil.copytree(finished / "results", root, symlinks=True)
    shutil.rmtree(root / "studies")
    study = load_study(TINY)
    for run in study.runs:
        run_dir = root / run.dataset / "runs" / run.name
        shutil.rmtree(run_dir / "analysis")
        (run_dir / "interactions" / study.extraction_id(run) / "epoch_0003.h5").unlink()
    other_config = tmp_path / "another.yaml"  # another study: the same, seed 7
    other_config.write_text(TINY.read_text().replace("seeds: [0]", "seeds: [7]"))
    other = load_study(other_config)
    assert not {run.name for run in other.runs} & {run.name for run in study.runs}
    write_study_record(root / "studies" / "another" / "a-000000000000" / "study.json",
                       study_record(other, {}))  # fmt: skip
    then = time.time() - 2 * 86400  # older than any grace period
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories + names:
            os.utime(Path(directory) / name, (then, then), follow_symlinks=False)
    unrecorded = [p for p in find_garbage(root, grace_hours=0) if "/runs/" in str(p.path)]
    assert {p.path.name for p in unrecorded} == {run.name for run in study.runs}  # at risk

    workdir = tmp_path / "work"
    workdir.mkdir()
    command = [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(TINY),
        "--config", f"results={root}", "--cores", "2",
    ]  # fmt: skip
    log = (tmp_path / "study.log").open("w")
    process = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=log)
    # from the moment the study has started (its record, its first job, is written): before
    # that, only the grace period (0 here) keeps a study's old runs
    while process.poll() is None and not list(root.glob("studies/tiny-*/*/study.json")):
        time.sleep(0.1)
    collected, rounds_beside = [], 0
    while process.poll() is None:
        garbage = find_garbage(root, grace_hours=0)
        rounds_beside += process.poll() is None
        collected += [item.path for item in garbage]
        remove(garbage)
        time.sleep(0.5)
    log.close()
    assert process.returncode == 0, (tmp_path / "study.log").read_text()[-5000:]
    assert rounds_beside > 0  # gc ran while the study was running, after its record
    assert not [path for path in collected if any(run.name in str(path) for run in study.runs)]
    verified = harsanyi_cli("store", "verify", str(root))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert list(root.glob("studies/tiny-*/a-*/scorecard.tsv"))


# --------------------------------------------------------------------------- catalog


@pytest.mark.slow
def test_store_ls_lists_every_run_with_its_settings(finished: Path) -> None:
    listed = harsanyi_cli(
        "store", "ls", str(finished / "results"), "--settings", "--format", "json"
    )
    assert listed.returncode == 0, listed.stderr
    rows = {row["run"]: row for row in json.loads(listed.stdout)}
    study = load_study(TINY)
    assert set(rows) == {run.name for run in study.runs}
    for run in study.runs:
        row = rows[run.name]
        label, digest = run.name.rsplit("-", 1)
        assert [row[k] for k in ("label", "hash", "dataset", "arch")] == [
            label,
            digest,
            run.dataset,
            run.arch,
        ]
        assert int(row["seed"]) == run.seed and float(row["label_noise"]) == run.label_noise
        assert row["n_checkpoints"] == row["n_interaction_files"] == len(run.epochs)
        assert row["settings"] == json.loads(canonical_json(run.settings))


@pytest.mark.slow
def test_store_show_finds_a_run_by_part_of_its_name(finished: Path) -> None:
    study = load_study(TINY)
    run = next(r for r in study.runs if r.label_noise > 0)
    label = run.name.rsplit("-", 1)[0]
    shown = harsanyi_cli("store", "show", str(finished / "results"), label)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0].endswith(f"/runs/{run.name}")
    manifest_text = shown.stdout.partition("\n")[2].partition("files:")[0]
    assert json.loads(manifest_text)["settings"] == json.loads(canonical_json(run.settings))
    for epoch in run.epochs:
        assert f"checkpoints/epoch_{epoch:04d}.pt" in shown.stdout
    # the label of the noise-free run is a prefix of the noisy run's: ambiguous, named
    clean = next(r for r in study.runs if r.label_noise == 0)
    ambiguous = harsanyi_cli("store", "show", str(finished / "results"), clean.name[:8])
    assert ambiguous.returncode == 1
    assert run.name in ambiguous.stderr and clean.name in ambiguous.stderr


# --------------------------------------------------------------------------- faults

WRITER = """
import sys
import numpy as np
from harsanyi.store import InteractionResults, write_results

n, samples = 12, 400
rng = np.random.default_rng(0)
vectors = {name: rng.normal(size=(samples, 2**n)) for name in ("v", "I_and", "I_or", "p", "q")}
results = InteractionResults(
    **vectors,
    sample_ids=np.arange(samples),
    labels=np.zeros(samples, dtype=np.int64),
    split=np.array(["train"] * samples),
    n=n,
    meta={},
)
print("writing", flush=True)
write_results(sys.argv[1], results)
print("written", flush=True)
"""


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed into place meanwhile
        return 0


def small_results(value: float) -> InteractionResults:
    n, samples = 3, 2
    vector = np.full((samples, 2**n), value)
    return InteractionResults(
        v=vector,
        I_and=vector,
        I_or=vector,
        p=vector,
        q=vector,
        sample_ids=np.arange(samples),
        labels=np.arange(samples),
        split=np.array(["train", "test"]),
        n=n,
        meta={},
    )


def test_a_writer_killed_mid_write_leaves_no_result(tmp_path: Path) -> None:
    run_dir = tmp_path / "store" / "digits" / "runs" / "digits-lenet-s0-0123456789ab"
    target = run_dir / "interactions" / "x-0123456789ab" / "epoch_0001.h5"
    write_results(target, small_results(1.0))  # an earlier, complete result
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + 120
    temps: list[Path] = []
    while not temps and writer.poll() is None and time.monotonic() < deadline:
        temps = [p for p in target.parent.iterdir() if is_temp_file(p) and size(p) > 0]
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL, "the writer finished before it was killed"
    assert temps, "the writer never started its temporary file"

    # the earlier result is untouched, the partial file is recognisably temporary
    np.testing.assert_array_equal(read_results(target).v, small_results(1.0).v)
    for path in target.parent.iterdir():
        if path != target:
            assert is_temp_file(path), path
            with pytest.raises(ResultsFileError):
                verify_results(path)
    problems = verify_store(tmp_path / "store")
    assert any("leftover temporary file" in p and str(temps[0]) in p for p in problems)


def test_a_writer_failing_mid_write_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "epoch_0001.h5"

    import harsanyi.store as store

    original = store.h5py.File

    def file_then_fail(path, mode, **kwargs):
        handle = original(path, mode, **kwargs)
        if mode == "w":
            handle.create_dataset("partial", data=np.zeros(10))
            handle.close()
            raise OSError(f"disk full while writing {path}")
        return handle

    monkeypatch.setattr(store.h5py, "File", file_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_results(target, small_results(2.0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_truncated_file_is_named_by_verify_and_by_the_jobs_reading_it(
    finished: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "lab"
    workdir.mkdir()
    results = workdir / "results"
    shutil.copytree(finished / "results", results)  # keeps mtimes: the copy is up to date
    study = load_study(TINY)
    run = study.runs[0]
    damaged = results / study_run_files(results, run.name)[1]
    os.truncate(damaged, damaged.stat().st_size // 2)

    verified = harsanyi_cli("store", "verify", str(results))
    assert verified.returncode == 1
    problems = [line for line in verified.stdout.splitlines() if line.startswith("/")]
    assert len(problems) == 1 and problems[0].startswith(f"{damaged}: "), verified.stdout
    assert "truncated or corrupt" in problems[0]

    # the damaged file is newer than what was computed from it: its readers run again, and fail
    analysis = damaged.parent.parent.parent / "analysis" / damaged.parent.name
    (table,) = analysis.glob("a-*/order_strength.tsv")
    with pytest.raises(AssertionError) as failed:
        snakemake(workdir, "--cores", "1", str(table))
    assert f"{damaged}: not a readable HDF5 file" in str(failed.value)
    logs = list((results / "logs" / "two_phase_run").rglob(f"{run.name}-*.log"))
    assert len(logs) == 1
    assert f"{damaged}: not a readable HDF5 file" in logs[0].read_text()
