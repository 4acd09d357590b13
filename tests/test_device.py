"""Device choice of every job (`harsanyi.jobs.pick_device`): a job given a GPU that PyTorch
cannot use fails loudly, naming the variable, instead of computing on the CPU."""

from __future__ import annotations

import logging

import pytest
import torch

from harsanyi import jobs
from harsanyi.jobs import DeviceError, device_name, gpu_assignment, pick_device

GPU_ENVIRONMENTS = [
    {"CUDA_VISIBLE_DEVICES": "0"},
    {"CUDA_VISIBLE_DEVICES": "GPU-5f2a1c3e-0000"},
    {"SLURM_JOB_GPUS": "3"},
    {"SLURM_STEP_GPUS": "0,1"},
    {"SLURM_JOB_GPUS": "0"},
    {"SLURM_GPUS": "1"},
    {"SLURM_GPUS_ON_NODE": "2"},
    {"SLURM_GPUS_PER_NODE": "a100:1"},
]
NO_GPU_ENVIRONMENTS = [
    {},
    {"CUDA_VISIBLE_DEVICES": ""},
    {"CUDA_VISIBLE_DEVICES": "-1"},
    {"CUDA_VISIBLE_DEVICES": "NoDevFiles"},
    {"SLURM_GPUS_ON_NODE": "0"},
    {"SLURM_GPUS_PER_NODE": "gpu:0"},
    {"SLURM_JOB_ID": "17", "SLURM_CPUS_PER_TASK": "4"},
]


@pytest.fixture
def no_cuda(monkeypatch):
    """A node whose PyTorch cannot use a GPU, whatever this machine has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("environ", GPU_ENVIRONMENTS, ids=lambda e: ",".join(e))
def test_a_job_given_a_gpu_it_cannot_use_fails_naming_the_variable(environ, no_cuda):
    ((name, value),) = environ.items()
    assert gpu_assignment(environ) == (name, value)
    with pytest.raises(DeviceError, match=f"{name}={value!r}.*refusing to fall back"):
        pick_device("auto", environ=environ)


@pytest.mark.parametrize("environ", NO_GPU_ENVIRONMENTS, ids=lambda e: ",".join(e) or "empty")
def test_a_job_without_a_gpu_runs_on_the_cpu(environ, no_cuda):
    assert gpu_assignment(environ) is None
    assert pick_device("auto", environ=environ) == torch.device("cpu")


def test_the_process_environment_is_read_by_default(monkeypatch, no_cuda):
    for name in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")
    with pytest.raises(DeviceError, match="SLURM_JOB_GPUS='0'"):
        pick_device()
    monkeypatch.delenv("SLURM_JOB_GPUS")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert pick_device() == torch.device("cpu")


@pytest.mark.parametrize("asked", ["cuda", "cuda:0", "cuda:1"])
def test_asking_for_cuda_without_one_fails(asked, no_cuda):
    with pytest.raises(DeviceError, match=f"device {asked!r} was asked for"):
        pick_device(asked, environ={})


def test_cpu_on_purpose_is_honoured_with_a_warning(no_cuda, caplog):
    environ = {"CUDA_VISIBLE_DEVICES": "0"}
    with caplog.at_level(logging.WARNING, logger="harsanyi.jobs"):
        assert pick_device("cpu", environ=environ) == torch.device("cpu")
    assert "CUDA_VISIBLE_DEVICES='0'" in caplog.text


def test_a_misspelt_device_is_named():
    with pytest.raises(ValueError, match="'gpu0'"):
        pick_device("gpu0", environ={})


def test_the_chosen_device_is_logged(no_cuda, caplog):
    with caplog.at_level(logging.INFO, logger="harsanyi.jobs"):
        pick_device("auto", environ={})
    assert "device: cpu (" in caplog.text


def test_a_visible_gpu_is_used_with_fixed_numerics(monkeypatch):
    """With a usable GPU (faked: only the numerics switches are touched), `auto` picks it and
    TF32 is off, cuDNN deterministic, cuBLAS' workspace fixed."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(jobs, "device_name", lambda device: f"{device} (fake)")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    for flag, value in (
        (torch.backends.cuda.matmul, True),
        (torch.backends.cudnn, True),
    ):
        monkeypatch.setattr(flag, "allow_tf32", value)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    assert pick_device("auto", environ={"CUDA_VISIBLE_DEVICES": "0"}).type == "cuda"
    assert not torch.backends.cuda.matmul.allow_tf32
    assert not torch.backends.cudnn.allow_tf32
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_device_names_for_provenance():
    assert device_name("cpu").startswith("cpu (")
    assert device_name(torch.device("cpu")) == device_name("cpu")
