"""Who ran what: provenance in run.json and in every results file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import h5py
import numpy as np
import torch

from harsanyi.extraction import extract_checkpoint
from harsanyi.models import build_model
from harsanyi.provenance import NUMERIC_PACKAGES, provenance
from harsanyi.store import InteractionResults, read_manifest, read_results, write_results
from harsanyi.train import train_from_settings

REPO = Path(__file__).resolve().parents[1]
KEYS = {
    "user",
    "host",
    "slurm_job_id",
    "slurm_array_job_id",
    "slurm_array_task_id",
    "device",
    "harsanyi",
    "git_commit",
    "torch",
    "cuda",
    "start",
    "end",
}


def slurm_env(monkeypatch) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "4200")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")


def test_provenance_names_user_host_slurm_device_versions_and_commit(monkeypatch):
    slurm_env(monkeypatch)
    record = provenance("cpu", start="2026-01-01T00:00:00+00:00")
    assert KEYS <= set(record)
    assert (record["slurm_job_id"], record["slurm_array_job_id"]) == ("4242", "4200")
    assert record["slurm_array_task_id"] == "7"
    assert record["device"].startswith("cpu (") and record["torch"] == torch.__version__
    assert record["user"] and record["host"]
    assert record["start"] == "2026-01-01T00:00:00+00:00" < record["end"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True)
    if head.returncode == 0:  # tests run from a checkout
        assert record["git_commit"] == head.stdout.decode().strip()


def test_a_results_file_keeps_its_provenance_and_old_files_still_read(tmp_path):
    width = 2**2
    results = InteractionResults(
        v=np.ones((1, width)),
        I_and=np.zeros((1, width)),
        I_or=np.zeros((1, width)),
        p=np.zeros((1, width)),
        q=np.zeros((1, width)),
        sample_ids=np.array([0]),
        labels=np.array([1]),
        split=np.array(["train"]),
        n=2,
        meta={"provenance": provenance("cpu")},
    )
    path = write_results(tmp_path / "with.h5", results)
    assert read_results(path).meta["provenance"]["device"].startswith("cpu (")
    results.meta = {}
    old = write_results(tmp_path / "old.h5", results)
    with h5py.File(old) as h5:
        assert "provenance" not in h5.attrs
    assert "provenance" not in read_results(old).meta


def test_extraction_and_training_record_provenance(tmp_path, monkeypatch):
    slurm_env(monkeypatch)
    settings = {
        "version": 1,
        "dataset": "breast_cancer",
        "data": {"max_train": 60, "max_test": 30, "image_size": None},
        "arch": "mlp",
        "seed": 0,
        "label_noise": 0.0,
        "noise_seed": 0,
        "training": {
            "epochs": 1,
            "batch_size": 32,
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 0.0,
            "optimizer": "sgd",
        },
        "checkpoint_epochs": [0, 1],
    }
    run_dir = tmp_path / "run"
    train_from_settings(settings, None, run_dir, tmp_path / "resume", device="cpu", progress=False)
    record = read_manifest(run_dir)["provenance"]
    assert KEYS <= set(record) and record["slurm_job_id"] == "4242"
    assert record["start"] <= record["end"]

    checkpoint = tmp_path / "c" / "checkpoints" / "epoch_0001.pt"
    checkpoint.parent.mkdir(parents=True)
    model = build_model("mlp", (30,), 2, seed=0)
    torch.save({"state_dict": model.state_dict(), "epoch": 1, "meta": {"arch": "mlp"}}, checkpoint)
    out = extract_checkpoint(
        checkpoint,
        "breast_cancer",
        tmp_path / "x.h5",
        players={"n": 3, "features": [0, 1, 2]},
        samples={"train_per_class": 1, "test_per_class": 1},
        extraction={"solver": "lp"},
        device="cpu",
    )
    record = read_results(out).meta["provenance"]
    assert KEYS <= set(record) and record["slurm_array_task_id"] == "7"
    assert record["device"].startswith("cpu (")


def test_provenance_records_every_package_that_can_change_a_number():
    import scipy

    packages = provenance("cpu")["packages"]
    assert set(packages) == set(NUMERIC_PACKAGES)
    assert packages["scipy"] == scipy.__version__ and packages["numpy"] == np.__version__
    assert packages["torch"] == torch.__version__.split("+")[0]


def test_the_lock_file_pins_what_is_installed_and_every_numeric_package():
    """requirements.lock, written by scripts/lock.py, matches this environment: a fresh
    install with `-c requirements.lock` gets the versions the README's numbers came from."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    for name in NUMERIC_PACKAGES:
        assert canonicalize_name(name) in pins, f"{name} is not pinned"
    stale = {
        name: (version, metadata.version(name))
        for name, version in pins.items()
        if metadata.version(name) != version
    }
    assert not stale, f"requirements.lock differs from the installed versions: {stale}"


def test_provenance_names_the_workflow_checkout_that_ran(tmp_path, monkeypatch):
    import subprocess

    from harsanyi.provenance import WORKFLOW_DIR_VARIABLE, git_state

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    git("init", "-q")
    (tmp_path / "Snakefile").write_text("rule all:\n")
    git("add", "Snakefile")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "workflow")
    monkeypatch.setenv(WORKFLOW_DIR_VARIABLE, str(tmp_path))
    git_state.cache_clear()
    try:
        assert git_state() == {"git_commit": git("rev-parse", "HEAD"), "git_dirty": False}
        (tmp_path / "Snakefile").write_text("rule all:\n    input: []\n")
        git_state.cache_clear()
        assert git_state()["git_dirty"] is True
    finally:
        git_state.cache_clear()


def test_store_packages_are_what_every_run_recorded_and_differences_are_named(tmp_path):
    import json

    import pytest

    from harsanyi.provenance import store_packages

    with pytest.raises(ValueError, match="no run.json"):
        store_packages(tmp_path)
    locked = {"torch": "2.14.1", "numpy": "2.4.6"}
    for run in ("a", "b"):
        manifest = tmp_path / "digits" / "runs" / run / "run.json"
        manifest.parent.mkdir(parents=True)
        manifest.write_text(json.dumps({"provenance": {"packages": locked}}))
    assert store_packages(tmp_path) == locked
    other = tmp_path / "digits" / "runs" / "b" / "run.json"
    other.write_text(json.dumps({"provenance": {"packages": {**locked, "torch": "2.13.0"}}}))
    with pytest.raises(ValueError, match="runs/b/run.json recorded different package versions"):
        store_packages(tmp_path)
