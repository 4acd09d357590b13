"""What every workflow job does first: logging into the rule's log, thread limits, device."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping

import torch

log = logging.getLogger(__name__)


def pick_device(device: str = "auto") -> torch.device:
    """The GPU the job was given when one is visible, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def slurm_comment(rule: str, wildcards: Mapping[str, object]) -> str:
    """`rule_<rule>_wildcards_<name>=<value>,...`: the executor plugin's comment format."""
    if not wildcards:
        return f"rule_{rule}"
    return f"rule_{rule}_wildcards_" + ",".join(f"{k}={v}" for k, v in wildcards.items())


def label_slurm_job(rule: str, wildcards: Mapping[str, object]) -> None:
    """Inside a SLURM job, set its comment to this job's rule and wildcards.

    The executor plugin names every job by its run UUID (it finds its jobs by that name)
    and gives all tasks of an array the comment of the first task; each task corrects its
    own comment here, so `squeue -o "%.12i %.60k"` shows which rule and run a task is.
    """
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        # the last task of an array carries the array's own id, which names every task
        job_id = f"{array_job}_{task}"
    comment = slurm_comment(rule, wildcards)
    argv = ["scontrol", "update", f"JobId={job_id}", f"Comment={comment}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("could not set the SLURM comment of job %s: %s", job_id, error)
        return
    if done.returncode != 0:
        log.warning("could not set the SLURM comment of job %s: %s", job_id, done.stderr.strip())


def setup_job(
    log_paths: list[str] | tuple[str, ...] = (),
    threads: int = 1,
    rule: str | None = None,
    wildcards: Mapping[str, object] | None = None,
) -> None:
    """Prepare a workflow job: log records (an uncaught exception too) to stderr and the
    rule's log files, torch limited to the threads Snakemake gave the job (so parallel
    jobs do not oversubscribe), and under SLURM the job's comment naming rule and run."""
    torch.set_num_threads(max(1, int(threads)))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers += [logging.FileHandler(str(path), mode="w") for path in log_paths]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )

    def log_uncaught(kind, error, traceback) -> None:
        # the rule's log file, not only the scheduler's stderr, must say why a job failed
        log.critical("job failed: %s", error, exc_info=(kind, error, traceback))

    sys.excepthook = log_uncaught
    if rule is not None:
        label_slurm_job(rule, wildcards or {})
