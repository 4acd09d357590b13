"""What every workflow job does first: logging into the rule's log, thread limits, device."""

from __future__ import annotations

import logging
import sys

import torch

log = logging.getLogger(__name__)


def pick_device(device: str = "auto") -> torch.device:
    """The GPU the job was given when one is visible, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def setup_job(log_paths: list[str] | tuple[str, ...] = (), threads: int = 1) -> None:
    """Prepare a workflow job: log records (an uncaught exception too) to stderr and the
    rule's log files, and torch limited to the threads Snakemake gave the job (so parallel
    jobs do not oversubscribe)."""
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
