"""Who ran what, where and with which software: the record kept in run.json and in every
results file (HDF5 attribute `provenance`, docs/hdf5-layout.md).

`provenance(device, start=...)` returns a JSON-ready dict; a value that cannot be found here
(no SLURM job, no git checkout) is None rather than a guess.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from harsanyi import __version__

PACKAGE_DIR = Path(__file__).resolve().parent
# Packages whose version can change a number the project writes (training, forward passes,
# the LP solvers, data loading, the analyses); requirements.lock pins them all.
NUMERIC_PACKAGES = (
    "torch",
    "torchvision",
    "transformers",
    "numpy",
    "scipy",
    "highspy",
    "scikit-learn",
    "pandas",
    "h5py",
    "captum",
)
SLURM_VARIABLES = {
    "slurm_job_id": "SLURM_JOB_ID",
    "slurm_array_job_id": "SLURM_ARRAY_JOB_ID",
    "slurm_array_task_id": "SLURM_ARRAY_TASK_ID",
    "slurm_cluster": "SLURM_CLUSTER_NAME",
}


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry (some containers)
        return None


# Set by the workflow to its own directory: the checkout whose rules and scripts ran, which
# may differ from the one the package is imported from (an installed package, another clone).
WORKFLOW_DIR_VARIABLE = "HARSANYI_WORKFLOW_DIR"


def record_workflow_dir(path: str | os.PathLike[str]) -> None:
    """Name the workflow checkout that runs (the workflow calls this at start-up): the jobs it
    starts inherit the variable, locally and under SLURM, and record that checkout's commit."""
    os.environ[WORKFLOW_DIR_VARIABLE] = str(path)


def _git(*args: str) -> str | None:
    where = os.environ.get(WORKFLOW_DIR_VARIABLE) or str(PACKAGE_DIR)
    try:
        done = subprocess.run(
            ["git", "-C", where, *args],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    """Commit of the workflow checkout that runs the job (HARSANYI_WORKFLOW_DIR, set by the
    workflow), else of the checkout the package is imported from, and whether tracked files
    differ from it; both None outside a git checkout."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str | None]:
    """{package: installed version} of `NUMERIC_PACKAGES` (None where one is not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in NUMERIC_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def store_packages(results: str | Path) -> dict[str, str | None]:
    """The package versions (`provenance.packages`) that every run of a results store
    recorded in its run.json: what produced the store's numbers.  ValueError where the store
    has no run or two runs recorded different versions (naming both)."""
    import json

    found: dict[str, dict] = {}
    for manifest in sorted(Path(results).glob("*/runs/*/run.json")):
        packages = (json.loads(manifest.read_text()).get("provenance") or {}).get("packages")
        found[str(manifest)] = packages
    if not found:
        raise ValueError(f"{results}: no run.json under */runs/*/ (not a results store?)")
    (first, versions), *others = found.items()
    for other, theirs in others:
        if theirs != versions:
            raise ValueError(f"{first} and {other} recorded different package versions")
    return versions


def device_name(device: Any = None) -> str:
    """The device as logs name it (`harsanyi.jobs.device_name`): "cpu (x86_64)" or
    "cuda:0 (<GPU name>)"; the CPU when no device is given."""
    from harsanyi.jobs import device_name as name

    return name("cpu" if device is None else device)


def provenance(device: Any = None, *, start: str | None = None) -> dict[str, Any]:
    """User, host, SLURM ids, device (None when not given: no model ran), software
    versions (Python, torch, CUDA, and every package of `NUMERIC_PACKAGES` under
    `packages`), git commit, start and end (now)."""
    import torch

    return {
        "user": _user(),
        "host": socket.gethostname(),
        **{key: os.environ.get(variable) for key, variable in SLURM_VARIABLES.items()},
        "device": None if device is None else device_name(device),
        "harsanyi": __version__,
        **git_state(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "packages": package_versions(),
        "start": start or utc_now(),
        "end": utc_now(),
    }
