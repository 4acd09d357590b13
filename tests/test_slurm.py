"""The slurm profile on a real one-node SLURM cluster with two (fake) GPUs.

Runs ``snakemake --profile <copy of profiles/slurm>`` on tests/data/slurm_toy and reads back
what each job saw: GPU rules must run as SLURM jobs holding one GPU, the CPU rule none.
Then runs the tiny study through the same profile plus the real workflow profile
(profiles/default): an ``sbatch`` wrapper first on PATH records every submission and SLURM's
own view of it (``scontrol show job``), and the results must equal a local run's.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from slurm_cluster import (  # noqa: F401  (slurm_cluster: a pytest fixture)
    SlurmCluster,
    running_slurm_cluster,
    slurm_cluster,
    slurm_cluster_unavailable_reason,
)
from test_reruns import TINY, finished_tiny_study

from harsanyi.config import load_study
from harsanyi.jobs import SLURM_LOG_SUFFIX, slurm_log_link
from harsanyi.store import read_results

REPO = Path(__file__).resolve().parents[1]
TOY = Path(__file__).parent / "data" / "slurm_toy"
GPU_PROBES = ("train", "gres_probe")
CPU_PROBES = ("cpu_probe",)

pytestmark = pytest.mark.slurm


def seen_by(workdir: Path, probe: str) -> tuple[dict[str, str], str]:
    """(environment lines, ``scontrol show job -d`` text) that a probe job wrote."""
    text = (workdir / "seen" / f"{probe}.txt").read_text()
    env_part, _, scontrol = text.partition("--- scontrol show job")
    env = dict(line.split("=", 1) for line in env_part.splitlines() if "=" in line)
    return env, scontrol


def test_gpu_rules_get_a_gpu_and_cpu_rule_none(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "toy"
    shutil.copytree(TOY, workdir)

    # `train` asks for its GPU with the `gpu` resource, as the real workflow's rules do
    slurm_cluster.run_snakemake(workdir, workflow_profile=str(REPO / "profiles" / "default"))

    job_ids = set()
    for probe in GPU_PROBES + CPU_PROBES:
        env, scontrol = seen_by(workdir, probe)
        assert env["SLURM_JOB_ID"].isdigit(), f"{probe} did not run as a SLURM job: {env}"
        job_ids.add(env["SLURM_JOB_ID"])
        assert f"JobId={env['SLURM_JOB_ID']} " in scontrol
        assert f"Partition={slurm_cluster.partition} " in scontrol
        if probe in GPU_PROBES:
            assert re.search(r"JOB_GRES=gpu:1\b", scontrol), f"{probe} holds no GPU:\n{scontrol}"
            assert re.search(r"TresPer(Job|Node)=gres:gpu:1\b", scontrol), scontrol
            gpu_index = re.search(r"Nodes=\S+ .*GRES=gpu:1\(IDX:(\d)\)", scontrol)
            assert gpu_index, scontrol
            # the job step sees exactly the GPU SLURM allocated (global index: no cgroups here)
            assert env["SLURM_GPUS_ON_NODE"] == "1", f"{probe}: {env}"
            assert env["SLURM_STEP_GPUS"] == gpu_index[1], f"{probe}: {env}\n{scontrol}"
            assert env["CUDA_VISIBLE_DEVICES"] == gpu_index[1], f"{probe}: {env}\n{scontrol}"
        else:
            assert env["SLURM_GPUS_ON_NODE"] in {"", "0"}, f"{probe}: {env}"
            assert env["SLURM_STEP_GPUS"] == env["CUDA_VISIBLE_DEVICES"] == "", f"{probe}: {env}"
            assert "JOB_GRES=(null)" in scontrol, f"{probe} holds a GPU:\n{scontrol}"
            assert re.search(r"Nodes=\S+ .*GRES=\s*$", scontrol, re.MULTILINE), scontrol
            assert "TresPer" not in scontrol, f"{probe} asked for a GPU:\n{scontrol}"
    assert len(job_ids) == len(GPU_PROBES + CPU_PROBES), "each rule must be its own job"


# --------------------------------------------------------------------------- the tiny study

GPU_RULES = {"train", "games", "sensitivity_games"}  # workflow/resources.yaml: they run a model
ARRAY_RULES = {
    "select_samples",
    "train",
    "games",
    "extract",
    "redecompose",
    "sensitivity_games",
    "sensitivity",
}
ARRAY_RULES |= {"joint_extract"}
# (slurm-array-jobs, profiles/slurm)
GROUPS = {"run_analyses", "study_analyses"}  # analyses go out as group jobs
RESOURCES = yaml.safe_load((REPO / "workflow" / "resources.yaml").read_text())
# The node has exactly the memory of the largest request: an ask the plugin enlarges (its
# array "memory fudge") or a group that sums too much is refused by sbatch.
NODE_MEMORY_MB = max(entry["mem_mb"] for entry in RESOURCES.values())
SBATCH_RECORDER = """#!/bin/sh
# Answer exactly as sbatch does, and record the call and SLURM's view of the new job.
out=$("{sbatch}" "$@")
status=$?
printf '%s\\n' "$out"
if [ "$status" -eq 0 ]; then
    record="{records}/$(date +%s%N)-$$"
    {{ printf '%s\\n' "$*"; echo "--- scontrol"; scontrol show job -d "${{out%%;*}}"; }} \\
        > "$record.tmp"
    mv "$record.tmp" "$record.txt"
fi
exit "$status"
"""


@dataclasses.dataclass
class Submission:
    """One sbatch call: its arguments and ``scontrol show job -d`` right after it."""

    argv: str
    scontrol: str

    @property
    def rule(self) -> str:
        """The rule (or group) the plugin's comment names: `rule_<rule>_wildcards_...`, or
        `rule_<group>_<its rules>` for a group job."""
        comment = re.search(r"Comment=rule_(\S+)", self.scontrol)
        assert comment, self.scontrol
        group = [name for name in GROUPS if comment[1].startswith(f"{name}_")]
        return group[0] if group else comment[1].split("_wildcards_")[0]

    @property
    def job_id(self) -> str:
        match = re.search(r"JobId=(\d+)", self.scontrol)
        assert match, self.scontrol
        return match[1]

    @property
    def array_size(self) -> int | None:
        match = re.search(r"--array=(\d+)-(\d+)", self.argv)
        return None if match is None else int(match[2]) - int(match[1]) + 1

    @property
    def mem_mb(self) -> int:
        match = re.search(r"--mem (\d+)", self.argv)
        assert match, self.argv
        return int(match[1])


def record_sbatch_calls(cluster: SlurmCluster, records: Path) -> SlurmCluster:
    """The cluster with an sbatch on PATH that writes one record per call into ``records``."""
    records.mkdir()
    bin_dir = records.parent / "sbatch-recorder"
    bin_dir.mkdir()
    real = shutil.which("sbatch", path=cluster.env["PATH"])
    assert real is not None
    wrapper = bin_dir / "sbatch"
    wrapper.write_text(SBATCH_RECORDER.format(sbatch=real, records=records))
    wrapper.chmod(0o755)
    env = {**cluster.env, "PATH": f"{bin_dir}{os.pathsep}{cluster.env['PATH']}"}
    return dataclasses.replace(cluster, env=env)


def read_submissions(records: Path) -> list[Submission]:
    submissions = []
    for path in sorted(records.glob("*.txt")):
        argv, _, scontrol = path.read_text().partition("--- scontrol")
        submissions.append(Submission(argv.strip(), scontrol))
    return submissions


def task_comments(cluster: SlurmCluster, job_id: str) -> dict[str, str]:
    """Comment of every task of a (finished) job or array, keyed by its JobId."""
    done = subprocess.run(
        ["scontrol", "show", "job", job_id], env=cluster.env, capture_output=True, text=True
    )
    records = done.stdout.split("\n\n")
    comments = {}
    for record in records:
        job = re.search(r"JobId=(\d+)", record)
        comment = re.search(r"Comment=(\S+)", record)
        if job and comment:
            comments[job[1]] = comment[1]
    return comments


@pytest.fixture
def node_sized_cluster(tmp_path: Path) -> Iterator[SlurmCluster]:
    reason = slurm_cluster_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_slurm_cluster(tmp_path / "slurm", real_memory_mb=NODE_MEMORY_MB) as cluster:
        yield cluster


def run_tiny_study(
    cluster: SlurmCluster, workdir: Path, device: str, **options
) -> subprocess.CompletedProcess[str]:
    """The tiny study through profiles/slurm and profiles/default, results under `workdir`."""
    workdir.mkdir()
    return cluster.run_snakemake(
        workdir,
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(TINY),
        "--config",
        f"results={workdir / 'results'}",
        device,
        workflow_profile=str(REPO / "profiles" / "default"),
        **options,
    )


@pytest.mark.slow
def test_tiny_study_on_slurm_as_typed(
    node_sized_cluster: SlurmCluster,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The tiny study through the slurm profile on a node whose memory equals the largest
    request: results equal a local run's, GPUs where they belong, trainings and extractions
    as arrays, analyses as one group job per run and one per study, every job's SLURM log
    kept under the results' logs, each array task's comment naming its own rule and run."""
    local = finished_tiny_study(tmp_path_factory) / "results"
    workdir = tmp_path / "study"
    records = tmp_path / "sbatch-calls"
    cluster = record_sbatch_calls(node_sized_cluster, records)

    start = time.monotonic()
    # the cluster's GPUs are fake: a job given one that PyTorch cannot use refuses to run
    # (harsanyi.jobs.pick_device), so this study computes on the CPU on purpose
    run_tiny_study(cluster, workdir, "device=cpu", timeout_s=1500)
    elapsed = time.monotonic() - start

    submissions = read_submissions(records)
    assert submissions, "no sbatch call was recorded"
    calls: dict[str, int] = {}
    jobs_per_rule: dict[str, int] = {}
    for sub in submissions:
        assert f"Partition={cluster.partition} " in sub.scontrol, sub.scontrol
        assert sub.mem_mb <= NODE_MEMORY_MB, sub.argv
        asks_gpu = re.search(r"--gpus=1\b", sub.argv) is not None
        holds_gpu = re.search(r"TresPer(Job|Node)=gres:gpu:1\b", sub.scontrol) is not None
        if sub.rule in GPU_RULES:
            assert asks_gpu and holds_gpu, f"{sub.rule} without a GPU:\n{sub.argv}\n{sub.scontrol}"
            assert sub.mem_mb == RESOURCES[sub.rule]["mem_mb"], sub.argv  # as typed
        else:
            assert "--gpus" not in sub.argv and "--gres" not in sub.argv, sub.argv
            assert "TresPer" not in sub.scontrol, f"{sub.rule} asks for a GPU:\n{sub.scontrol}"
        assert sub.rule in ARRAY_RULES | GROUPS | {"select_samples"}, sub.rule
        calls[sub.rule] = calls.get(sub.rule, 0) + 1
        jobs_per_rule[sub.rule] = jobs_per_rule.get(sub.rule, 0) + (sub.array_size or 1)
    observed = (
        f"tiny study on the one-node SLURM cluster: {elapsed:.0f} s, "
        f"{len(submissions)} sbatch calls: {dict(sorted(calls.items()))}, "
        f"jobs and array tasks per rule: {dict(sorted(jobs_per_rule.items()))}"
    )
    print(observed)
    if os.environ.get("HARSANYI_SLURM_REPORT"):  # where a measuring run wants the numbers
        with open(os.environ["HARSANYI_SLURM_REPORT"], "a") as report:
            report.write(observed + "\n")

    study = load_study(TINY)
    n_extract = sum(len(run.epochs) for run in study.runs)
    assert jobs_per_rule["train"] == len(study.runs) and calls["train"] == 1
    assert jobs_per_rule["games"] == jobs_per_rule["extract"] == n_extract
    assert calls["games"] <= len(study.runs)  # one array per batch of finished trainings
    assert calls["extract"] <= len(study.runs)  # a run's decompositions go out together
    n_sensitivity = sum(len(study.sensitivity_epochs(run)) for run in study.runs)
    for rule in ("sensitivity_games", "sensitivity"):
        assert jobs_per_rule[rule] == n_sensitivity and calls[rule] <= len(study.runs)
    assert calls["run_analyses"] == len(study.runs)
    assert calls["study_analyses"] == 1

    # every array task names its own rule and run in its comment
    for sub in submissions:
        if sub.array_size is None:
            continue
        comments = task_comments(cluster, sub.job_id)
        assert len(comments) == sub.array_size, comments
        assert len(set(comments.values())) == sub.array_size, comments
        assert all(c.startswith(f"rule_{sub.rule}_wildcards_") for c in comments.values())

    # group jobs keep the label the plugin gave them (their group), whichever member ran last
    for sub in submissions:
        if sub.rule in GROUPS:
            comments = task_comments(cluster, sub.job_id)
            assert all(c.startswith(f"rule_{sub.rule}_") for c in comments.values()), comments

    # SLURM's log of every job and array task is kept, under the results' logs
    slurm_dir = workdir / "results" / "logs" / "slurm"
    slurm_logs = list(slurm_dir.rglob("*.log"))
    assert len(slurm_logs) == sum(sub.array_size or 1 for sub in submissions), slurm_logs
    # and is linked beside the rule's own log (found from rule and run alone): single jobs,
    # array tasks and group members alike; study_record runs on the login node
    rule_logs = [
        path
        for path in (workdir / "results").rglob("*.log")
        if not path.is_relative_to(slurm_dir)
        and not path.name.endswith(SLURM_LOG_SUFFIX)
        and "study_record" not in path.name
    ]
    assert len(rule_logs) >= sum(jobs_per_rule.values()), rule_logs
    for path in rule_logs:
        link = slurm_log_link(path)
        assert link.is_symlink(), f"no link to SLURM's log beside {path}"
        assert link.resolve().is_file() and link.resolve().is_relative_to(slurm_dir), link

    files = sorted(p.relative_to(local) for p in local.glob("*/runs/*/interactions/*/*.h5"))
    assert len(files) == n_extract
    for path in files:
        on_slurm, here = read_results(workdir / "results" / path), read_results(local / path)
        for name in ("v", "I_and", "I_or"):
            np.testing.assert_allclose(
                getattr(on_slurm, name), getattr(here, name), rtol=0, atol=1e-12, err_msg=str(path)
            )
        provenance = on_slurm.meta["provenance"]
        assert provenance["slurm_job_id"] and provenance["host"], provenance
        games = on_slurm.meta["extra"]["games_provenance"]  # the job that ran the model
        assert games["slurm_job_id"] and games["slurm_job_id"] != provenance["slurm_job_id"]


@pytest.mark.slow
def test_a_failure_a_retry_cannot_fix_is_submitted_once_and_explained(
    node_sized_cluster: SlurmCluster,
    tmp_path: Path,
) -> None:
    """On these fake GPUs every `train` task stops with DeviceError (PyTorch cannot use the
    GPU SLURM gave it): the profile does not resubmit it (retries 0; SLURM itself requeues
    only jobs whose node failed or that were preempted), and the terminal names the rule, the
    run, the reason and the log in one line per failed task."""
    workdir = tmp_path / "study"
    records = tmp_path / "sbatch-calls"
    cluster = record_sbatch_calls(node_sized_cluster, records)
    done = run_tiny_study(cluster, workdir, "device=auto", timeout_s=900, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    trains = [sub for sub in read_submissions(records) if sub.rule == "train"]
    assert len(trains) == 1, [sub.argv for sub in trains]  # one array, never resubmitted
    assert "--requeue" in trains[0].argv  # node failures and preemption: SLURM requeues
    failed = re.findall(
        r"FAILED train \((\S+)\): DeviceError: .*\[log: (\S+), SLURM log: (\S+)\]", output
    )
    study = load_study(TINY)
    assert {run for run, _, _ in failed} == {run.name for run in study.runs}, output
    for _, log, slurm_log in failed:
        assert "DeviceError" in (workdir / log).read_text()  # workdir / an absolute path: it
        assert (workdir / slurm_log).is_symlink() and (workdir / slurm_log).resolve().is_file()
