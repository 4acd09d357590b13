"""The slurm profile on a real one-node SLURM cluster with two (fake) GPUs.

Runs ``snakemake --profile <copy of profiles/slurm>`` on tests/data/slurm_toy and reads back
what each job saw: GPU rules must run as SLURM jobs holding one GPU, the CPU rule none.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401  (pytest fixture)

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

    slurm_cluster.run_snakemake(workdir)

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
