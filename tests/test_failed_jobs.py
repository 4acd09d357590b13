"""A failed job's reason reaches the terminal in one line naming rule, run and log file, and
`harsanyi failed` lists a study's failed jobs with the last lines of their logs (issue #22)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harsanyi.cli import main
from harsanyi.jobs import FAILED_MARK, failed_jobs

REPO = Path(__file__).resolve().parents[1]
RUN = "digits-lenet-s0-0123456789ab"


def failing_job(log: Path, error: str = "DeviceError('no GPU PyTorch can use')") -> None:
    """A job script as the workflow's: setup_job, then an uncaught exception."""
    script = textwrap.dedent(
        f"""
        from harsanyi.jobs import DeviceError, setup_job
        setup_job([{str(log)!r}], 1, "train", {{"run": {RUN!r}}})
        raise {error}
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0


def test_a_failed_job_is_found_by_its_log(tmp_path):
    results = tmp_path / "results"
    log = results / "logs" / "train" / "digits" / f"{RUN}.log"
    log.parent.mkdir(parents=True)
    failing_job(log)
    assert FAILED_MARK in log.read_text()
    ok = results / "logs" / "extract" / "digits" / RUN / "x-0123456789ab" / "0001.log"
    ok.parent.mkdir(parents=True)
    ok.write_text("2026-12-05 09:00:00,000 harsanyi INFO all went well\n")
    slurm = results / "logs" / "slurm" / "train" / "1_0.log"
    slurm.parent.mkdir(parents=True)
    slurm.write_text(log.read_text())  # SLURM's copy of stderr is not a second failure
    (job,) = failed_jobs(results)
    assert (job.rule, job.run, job.log) == ("train", RUN, log)
    assert job.reason == "DeviceError: no GPU PyTorch can use"
    assert job.one_line() == (
        f"FAILED train ({RUN}): DeviceError: no GPU PyTorch can use  [log: {log}]"
    )
    assert job.tail and "DeviceError" in job.tail[-1]
    assert failed_jobs(results, since=time.time() + 60) == []


def test_the_failed_command_lists_them(tmp_path, capsys):
    results = tmp_path / "results"
    assert main(["failed", str(results)]) == 0
    assert "no failed job" in capsys.readouterr().out
    log = results / "logs" / "select_samples" / "digits.log"
    log.parent.mkdir(parents=True)
    failing_job(log, "ValueError('datasets.digits.samples.train_per_class: class 3 has 2')")
    assert main(["failed", str(results), "--lines", "2"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAILED select_samples (-): ValueError: datasets.digits.samples")
    assert len(out) == 3 and out[1].startswith("    ")


@pytest.mark.slow
def test_a_failing_study_names_the_failed_job_in_one_line(tmp_path):
    """A GPU asked for where there is none: train fails with DeviceError, and the workflow's
    last lines name the rule, the run, the reason and the log."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--directory", str(tmp_path)]
        + ["-s", str(REPO / "Snakefile"), "--configfile", str(REPO / "tests/data/tiny.yaml")]
        + ["--config", "device=cuda", f"results={tmp_path / 'results'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("FAILED train (")]
    assert lines, done.stderr[-3000:]
    assert "DeviceError" in lines[0] and "[log: " in lines[0] and "logs/train/" in lines[0]
    assert f"harsanyi failed {tmp_path / 'results'}" in done.stderr


def test_store_show_names_only_run_directories(tmp_path, capsys):
    root = tmp_path / "store"
    run = root / "digits" / "runs" / RUN
    run.mkdir(parents=True)
    assert main(["store", "show", str(root), RUN]) == 0
    capsys.readouterr()
    for bad in ("..", ".", "../store"):
        assert main(["store", "show", str(root), bad]) != 0, bad
        assert str(tmp_path / "store" / "..") not in capsys.readouterr().out
