"""Per-rule resources: a command-line override keeps the GPU request; SLURM comments."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from harsanyi import jobs

REPO = Path(__file__).resolve().parents[1]
RESOURCES = yaml.safe_load((REPO / "workflow" / "resources.yaml").read_text())


def planned_resources(*args: str) -> dict[str, set[str]]:
    """rule -> the `resources:` lines of its jobs in a dry run from the repository root."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--nolock", "--cores", "1"]
        + ["--configfile", "tests/data/tiny.yaml", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    found: dict[str, set[str]] = {}
    rule = None
    for line in done.stdout.splitlines():
        match = re.match(r"(?:localrule|rule) (\w+):", line.strip())
        if match:
            rule = match[1]
        elif line.strip().startswith("resources:") and rule is not None:
            found.setdefault(rule, set()).add(line.strip())
    return found


def test_a_command_line_override_keeps_the_gpu_request():
    resources = planned_resources("--set-resources", "train:runtime=1440")
    (train,) = resources["train"]
    assert "gpu=1" in train and "runtime=1440" in train
    assert f"mem_mb={RESOURCES['train']['mem_mb']}" in train
    (games,) = resources["games"]
    assert "gpu=1" in games
    (sensitivity,) = resources["sensitivity_games"]  # runs the model, like games
    assert "gpu=1" in sensitivity
    # only the rules that run a model hold a GPU: the decompositions (extract, redecompose,
    # sensitivity, joint_extract) and the analyses run on CPUs
    assert "extract" in resources and "sensitivity" in resources
    assert all(
        "gpu" not in line
        for rule in resources
        if rule not in ("train", "games", "sensitivity_games")
        for line in resources[rule]
    )


def test_every_rule_with_a_job_has_its_resources_from_the_table():
    resources = planned_resources()
    for rule, lines in resources.items():
        if rule in ("all", "study_record"):
            continue
        (line,) = lines
        assert f"mem_mb={RESOURCES[rule]['mem_mb']}," in line, (rule, line)
        assert f"runtime={RESOURCES[rule]['runtime']}," in line, (rule, line)


def fake_scontrol(monkeypatch, comment: str, stdout: str = "(null)") -> list[list[str]]:
    """scontrol answering `show job -o` with a job of this comment and StdOut (the line
    format of Slurm 22.05), recording every other call."""
    calls = []

    def fake_run(argv, **kwargs):
        if argv[:3] == ["scontrol", "show", "job"]:
            line = (
                f"JobId={argv[-1]} JobName=f3a1 UserId=root(0) Comment={comment} "
                f"TRES=cpu=1,mem=2000M,node=1 Command=/tmp/x.sh WorkDir=/tmp/w "
                f"StdErr={stdout} StdIn=/dev/null StdOut={stdout} Power="
            )
            return subprocess.CompletedProcess(argv, 0, line + "\n", "")
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(jobs.subprocess, "run", fake_run)
    return calls


def test_each_slurm_job_names_its_rule_and_wildcards(monkeypatch):
    calls = fake_scontrol(monkeypatch, "rule_extract_wildcards_run=r0,epoch=0000")
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    jobs.label_slurm_job("extract", {"run": "r1", "epoch": "0003"})
    assert calls == []  # not under SLURM: nothing to label
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    jobs.label_slurm_job("extract", {"run": "r1", "epoch": "0003"})
    assert calls == [
        ["scontrol", "update", "JobId=1234", "Comment=rule_extract_wildcards_run=r1,epoch=0003"]
    ]
    # an array task is named by array and task id: the array's own id would name them all
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "1200")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    jobs.label_slurm_job("extract", {"run": "r1"})
    assert calls[-1][2] == "JobId=1200_3"


def test_a_group_job_keeps_its_group_label(monkeypatch):
    group = "rule_run_analyses_attributions_run_jaccard_run_wildcards_digits_digits-mlp-s0"
    calls = fake_scontrol(monkeypatch, group)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    # even the member named like its group is not the group
    for rule in ("jaccard_run", "run_analyses"):
        jobs.label_slurm_job(rule, {"dataset": "digits", "run": "digits-mlp-s0"})
    assert calls == []


def test_slurm_log_is_linked_beside_the_rule_log(monkeypatch, tmp_path):
    slurm_log = tmp_path / "logs" / "slurm" / "rule_train" / "1200_3.log"
    slurm_log.parent.mkdir(parents=True)
    slurm_log.write_text("SLURM's own output\n")
    rule_log = tmp_path / "logs" / "train" / "digits" / "digits-mlp-s0-0123456789ab.log"
    rule_log.parent.mkdir(parents=True)
    fake_scontrol(monkeypatch, "rule_train_wildcards_x", stdout=str(slurm_log))
    monkeypatch.setenv("SLURM_JOB_ID", "1203")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "1200")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    jobs.label_slurm_job("train", {"run": "r"}, [str(rule_log)])
    link = rule_log.with_name("digits-mlp-s0-0123456789ab.slurm.log")
    assert jobs.slurm_log_link(rule_log) == link
    assert link.is_symlink() and not Path(os.readlink(link)).is_absolute()  # moves with the store
    assert link.read_text() == "SLURM's own output\n"
    # a retry's job replaces the link
    newer = slurm_log.with_name("1300_0.log")
    newer.write_text("the retry\n")
    fake_scontrol(monkeypatch, "rule_train_wildcards_x", stdout=str(newer))
    jobs.label_slurm_job("train", {"run": "r"}, [str(rule_log)])
    assert link.read_text() == "the retry\n"
    assert [p.name for p in link.parent.iterdir()] == [link.name]  # no temporary link left


def test_a_failed_label_is_logged_not_hidden(monkeypatch, caplog):
    def failing(argv, **kwargs):
        return subprocess.CompletedProcess(argv, 1, "", "Access/permission denied")

    monkeypatch.setattr(jobs.subprocess, "run", failing)
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    with caplog.at_level(logging.WARNING):
        jobs.label_slurm_job("train", {"run": "r"})
    assert "could not set the SLURM comment of job 99: Access/permission denied" in caplog.text


def test_the_slurm_profile_selects_every_ready_job_of_a_lab_scale_study():
    """Plugin 2.8.0 never submits array jobs that Snakemake selected while others of their
    rule stayed ready (the study then waits forever): the profile's `jobs` must exceed every
    job of the lab-scale plan (docs/numbers/lab_scale.json, benchmarks/bench_dryrun.py), so
    that a selection is never partial."""
    import json

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    lab = json.loads((REPO / "docs" / "numbers" / "lab_scale.json").read_text())
    assert int(profile["jobs"]) > lab["total_jobs"]


def _benchmark_file(path: Path, max_rss: float, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"
    path.write_text(f"{header}\n{seconds}\t0:00:01\t{max_rss}\t1\t1\t1\t0\t0\t50\t1\n")


def test_memory_peaks_reads_every_benchmark_and_flags_a_peak_above_its_ask(tmp_path):
    """scripts/memory_peaks.py: per rule the jobs, the largest max_rss and the wall times, beside
    the ask of workflow/resources.yaml; exit 1 naming a rule whose peak exceeds it."""
    results = tmp_path / "results"
    (results / "studies" / "s-1").mkdir(parents=True)
    manifest = results / "digits" / "runs" / "r" / "run.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"provenance": {"packages": {"torch": "2.14.1"}}}')
    ask = RESOURCES["train"]["mem_mb"]
    _benchmark_file(results / "benchmarks" / "train" / "a" / "0.tsv", ask / 3, 2.0)
    _benchmark_file(results / "benchmarks" / "train" / "b" / "0.tsv", ask / 2, 4.0)
    _benchmark_file(results / "benchmarks" / "extract" / "a" / "1.tsv", 100.0, 6.0)
    _benchmark_file(results / "studies" / "s-1" / "a-1" / "benchmarks" / "scorecard.tsv", 50, 9)
    script = [sys.executable, str(REPO / "scripts" / "memory_peaks.py"), str(results)]
    done = subprocess.run([*script, "--json", str(tmp_path / "m.json")], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    import json

    record = json.loads((tmp_path / "m.json").read_text())
    rows = {row["rule"]: row for row in record["rows"]}
    assert rows["train"]["jobs"] == 2 and rows["train"]["max_rss_mb"] == ask / 2
    assert rows["train"]["median_s"] == 3.0 and rows["train"]["max_s"] == 4.0
    assert rows["train"]["mem_mb"] == ask and rows["extract"]["jobs"] == 1
    assert rows["scorecard"]["jobs"] == 1 and rows["scorecard"]["max_rss_mb"] == 50
    assert rows["scorecard"]["mem_mb"] == RESOURCES["scorecard"]["mem_mb"]
    assert record["studies"] == ["s-1"] and record["packages"] == {"torch": "2.14.1"}

    _benchmark_file(results / "benchmarks" / "train" / "c" / "0.tsv", ask + 1, 1.0)
    done = subprocess.run(script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "above the ask" in done.stdout and "train" in done.stdout
