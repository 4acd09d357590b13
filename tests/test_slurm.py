"""The slurm profile on a real one-node SLURM cluster with two (fake) GPUs.

Runs ``snakemake --profile <copy of profiles/slurm>`` on tests/data/slurm_toy and reads back
what each job saw: GPU rules must run as SLURM jobs holding one GPU, the CPU rule none.
Then runs the tiny study through the same profile plus the real workflow profile
(profiles/default): an ``sbatch`` wrapper first on PATH records every submission and SLURM's
own view of it (``scontrol show job``), and the results must equal a local run's.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401  (pytest fixture)
from test_reruns import TINY, finished_tiny_study

from harsanyi.config import load_study
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

    # `train` gets its GPU from the workflow profile's set-resources, as in the real workflow
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

GPU_RULES = {"train", "extract"}  # set-resources in profiles/default
MANY_JOB_ARRAY_RULES = {"extract"}  # waits for all its pending jobs: one array here
# (two_phase_run is an array rule too, but its 2 jobs here may become ready apart)
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
        comment = re.search(r"Comment=rule_(\S+)", self.scontrol)
        assert comment, self.scontrol
        return comment[1].split("_wildcards_")[0]

    @property
    def array_size(self) -> int | None:
        match = re.search(r"--array=(\d+)-(\d+)", self.argv)
        return None if match is None else int(match[2]) - int(match[1]) + 1


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


@pytest.mark.slow
def test_tiny_study_on_slurm_matches_a_local_run(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    local = finished_tiny_study(tmp_path_factory) / "results"
    workdir = tmp_path / "study"
    workdir.mkdir()
    records = tmp_path / "sbatch-calls"
    cluster = record_sbatch_calls(slurm_cluster, records)

    start = time.monotonic()
    cluster.run_snakemake(
        workdir,
        "-s",
        str(REPO / "Snakefile"),
        "--configfile",
        str(TINY),
        "--config",
        f"results={workdir / 'results'}",
        # the cluster's GPUs are fake: a job given one that PyTorch cannot use refuses to
        # run (harsanyi.jobs.pick_device), so this study computes on the CPU on purpose
        "device=cpu",
        workflow_profile=str(REPO / "profiles" / "default"),
        timeout_s=1500,
    )
    print(f"tiny study on the one-node SLURM cluster: {time.monotonic() - start:.0f} s")

    profile = yaml.safe_load((cluster.profile / "config.yaml").read_text())
    array_rules = {rule.strip() for rule in profile["slurm-array-jobs"].split(",")}
    assert MANY_JOB_ARRAY_RULES <= array_rules
    submissions = read_submissions(records)
    assert submissions, "no sbatch call was recorded"
    jobs_per_rule: dict[str, int] = {}
    for sub in submissions:
        assert f"Partition={cluster.partition} " in sub.scontrol, sub.scontrol
        asks_gpu = re.search(r"--gpus=1\b", sub.argv) is not None
        holds_gpu = re.search(r"TresPer(Job|Node)=gres:gpu:1\b", sub.scontrol) is not None
        if sub.rule in GPU_RULES:
            assert asks_gpu and holds_gpu, f"{sub.rule} without a GPU:\n{sub.argv}\n{sub.scontrol}"
        else:
            assert "--gpus" not in sub.argv and "--gres" not in sub.argv, sub.argv
            assert "TresPer" not in sub.scontrol, f"{sub.rule} asks for a GPU:\n{sub.scontrol}"
        if sub.rule in MANY_JOB_ARRAY_RULES:
            assert sub.array_size is not None, f"{sub.rule} not submitted as an array: {sub.argv}"
            assert re.search(r"ArrayJobId=\d+ ArrayTaskId=", sub.scontrol), sub.scontrol
        elif sub.rule not in array_rules:  # (an array rule with one job goes out alone)
            assert sub.array_size is None, sub.argv
        jobs_per_rule[sub.rule] = jobs_per_rule.get(sub.rule, 0) + (sub.array_size or 1)

    study = load_study(TINY)
    n_extract = sum(len(run.epochs) for run in study.runs)
    assert jobs_per_rule["train"] == len(study.runs)
    assert jobs_per_rule["extract"] == n_extract
    assert jobs_per_rule["two_phase_run"] == len(study.runs)
    extract_calls = [sub for sub in submissions if sub.rule == "extract"]
    # One array per batch of runs whose trainings finished together: at most one per run.
    assert math.ceil(n_extract / profile["slurm-array-limit"]) <= len(extract_calls)
    assert len(extract_calls) <= len(study.runs)

    files = sorted(p.relative_to(local) for p in local.glob("*/runs/*/interactions/*/*.h5"))
    assert len(files) == n_extract
    for path in files:
        on_slurm, here = read_results(workdir / "results" / path), read_results(local / path)
        for name in ("v", "I_and", "I_or"):
            np.testing.assert_allclose(
                getattr(on_slurm, name), getattr(here, name), rtol=0, atol=1e-12, err_msg=str(path)
            )
