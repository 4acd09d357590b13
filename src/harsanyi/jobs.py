"""What every workflow job does first: logging into the rule's log, thread limits, device.

`pick_device` chooses where a job computes.  A job that was given a GPU (by SLURM, by
``CUDA_VISIBLE_DEVICES`` or by asking for ``cuda``) but whose PyTorch cannot use one fails
with `DeviceError` instead of quietly computing on the CPU; the chosen device is logged.
On a GPU it also fixes the numerics of every job: TF32 off (float32 matrix products and
convolutions), cuDNN deterministic and not benchmarking, cuBLAS' deterministic workspace.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from harsanyi.sharing import apply_group_umask_if_asked

log = logging.getLogger(__name__)

#: CUDA_VISIBLE_DEVICES values that hide every GPU (SLURM writes NoDevFiles on some setups).
NO_GPU_VALUES = ("", "-1", "NoDevFiles", "none", "void")
#: SLURM's variables naming the GPUs of a job or step (plus every SLURM_GPUS* variable).
SLURM_GPU_VARIABLES = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS")


class DeviceError(RuntimeError):
    """The job was given a GPU that PyTorch cannot use."""


def _counts_gpus(value: str) -> bool:
    """Whether a SLURM_GPUS* count ("1", "a100:2", "gpu:0") is at least one GPU."""
    value = value.strip()
    if value in NO_GPU_VALUES or value == "0":
        return False
    last = value.split(":")[-1]
    return not (last.isdigit() and int(last) == 0)


def gpu_assignment(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(variable, value) of the first environment variable saying that this job was given a
    GPU, or None: ``CUDA_VISIBLE_DEVICES`` other than empty, "-1" or "NoDevFiles";
    ``SLURM_JOB_GPUS``, ``SLURM_STEP_GPUS`` or any ``SLURM_GPUS*`` naming a GPU."""
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() not in NO_GPU_VALUES:
        return "CUDA_VISIBLE_DEVICES", visible
    for name in SLURM_GPU_VARIABLES:  # lists of GPU indices: "0", "0,1"
        value = environ.get(name)
        if value is not None and value.strip() not in NO_GPU_VALUES:
            return name, value
    for name in sorted(k for k in environ if k.startswith("SLURM_GPUS")):  # counts: "1", "a100:2"
        if _counts_gpus(environ[name]):
            return name, environ[name]
    return None


def pick_device(device: str = "auto", environ: Mapping[str, str] | None = None) -> torch.device:
    """Where the job computes: ``auto`` = the GPU the job was given, else the CPU; ``cpu``;
    ``cuda`` / ``cuda:<i>``.

    Raises `DeviceError` when the job was given a GPU (see `gpu_assignment`) or asked for
    ``cuda`` but ``torch.cuda.is_available()`` is false (a CPU-only PyTorch, a driver too
    old, no device node in the container): such a job would otherwise run for hours on the
    CPU.  Set ``device: cpu`` to compute on the CPU on purpose.
    """
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string like 'auto', 'cpu' or 'cuda:0', got {device!r}")
    device = str(device).strip()
    if device == "auto":
        given = gpu_assignment(environ)
        if given is None:
            chosen = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        elif torch.cuda.is_available():
            chosen = torch.device("cuda")
        else:
            name, value = given
            raise DeviceError(
                f"this job was given a GPU ({name}={value!r}) but PyTorch cannot use it "
                f"(torch.cuda.is_available() is false; torch {torch.__version__}, built for "
                f"CUDA {torch.version.cuda}): refusing to fall back to the CPU. Check the "
                "driver and the PyTorch build on this node, or set device: cpu to run on the "
                "CPU on purpose."
            )
    else:
        try:
            chosen = torch.device(device)
        except RuntimeError as error:
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}"
            ) from error
        if chosen.type == "cuda":
            if not torch.cuda.is_available():
                raise DeviceError(
                    f"device {device!r} was asked for but PyTorch cannot use a GPU "
                    f"(torch.cuda.is_available() is false; torch {torch.__version__}, built "
                    f"for CUDA {torch.version.cuda})"
                )
            count = torch.cuda.device_count()
            if chosen.index is not None and chosen.index >= count:
                raise DeviceError(f"device {device!r} was asked for but {count} GPU(s) are visible")
    if chosen.type == "cuda":
        configure_gpu_numerics()
    elif chosen.type == "cpu" and device != "auto" and gpu_assignment(environ) is not None:
        name, value = gpu_assignment(environ)
        log.warning(
            "device %r asked for although the job was given a GPU (%s=%r)", device, name, value
        )
    log.info("device: %s", device_name(chosen))
    return chosen


def configure_gpu_numerics() -> None:
    """The numerics of every GPU job: float32 without TF32 (matrix products and cuDNN
    convolutions), deterministic cuDNN algorithms without autotuning, and the cuBLAS
    workspace setting that `torch.use_deterministic_algorithms` needs (effective when set
    before the first cuBLAS call of the process, as here: jobs pick their device first)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def device_name(device: torch.device | str) -> str:
    """A device as provenance records and logs name it: ``cuda:0 (NVIDIA H100 80GB HBM3)``
    or ``cpu (x86_64)``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({platform.machine() or 'unknown'})"
    return str(device)


def slurm_comment(rule: str, wildcards: Mapping[str, object]) -> str:
    """`rule_<rule>_wildcards_<name>=<value>,...`: the executor plugin's comment format."""
    if not wildcards:
        return f"rule_{rule}"
    return f"rule_{rule}_wildcards_" + ",".join(f"{k}={v}" for k, v in wildcards.items())


SLURM_LOG_SUFFIX = ".slurm.log"  # beside a rule's log: a link to SLURM's log of the job


def _slurm_job_fields(job_id: str) -> dict[str, str]:
    """`scontrol show job -o <id>` as key=value pairs (empty when scontrol cannot tell)."""
    try:
        done = subprocess.run(
            ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.warning("could not read SLURM job %s: %s", job_id, error)
        return {}
    if done.returncode != 0:
        log.warning("could not read SLURM job %s: %s", job_id, done.stderr.strip())
        return {}
    line = done.stdout.splitlines()[0] if done.stdout.strip() else ""
    return dict(
        re.match(r"([^=]+)=(.*)", token).groups()  # type: ignore[union-attr]
        for token in re.split(r" (?=[A-Za-z:/]+=)", line.strip())
        if "=" in token
    )


def label_slurm_job(
    rule: str, wildcards: Mapping[str, object], log_paths: list[str] | tuple[str, ...] = ()
) -> None:
    """Inside a SLURM job: set its comment to this job's rule and wildcards, and link SLURM's
    log of the job beside each of the rule's logs (`<rule log stem>.slurm.log`).

    The executor plugin names every job by its run UUID (it finds its jobs by that name)
    and gives all tasks of an array the comment of the first task; each task corrects its
    own comment here, so `squeue -o "%.12i %.60k"` shows which rule and run a task is.  A
    group job keeps the comment the plugin gave it (the group's name and its rules), not
    that of whichever member started last.  The plugin files SLURM's logs by rule or group,
    wildcards, array and job ids; the link puts each where the rule's own log is, findable
    from the rule and the run alone, for single jobs, array tasks, group members and
    retries alike (a rerun relinks to the newest job).
    """
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        # the last task of an array carries the array's own id, which names every task
        job_id = f"{array_job}_{task}"
    fields = _slurm_job_fields(job_id)
    comment = slurm_comment(rule, wildcards)
    given = fields.get("Comment", "")
    own = given == f"rule_{rule}" or given.startswith(f"rule_{rule}_wildcards_")
    if own or not given or given == "(null)":
        argv = ["scontrol", "update", f"JobId={job_id}", f"Comment={comment}"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as error:
            log.warning("could not set the SLURM comment of job %s: %s", job_id, error)
        else:
            if done.returncode != 0:
                log.warning(
                    "could not set the SLURM comment of job %s: %s", job_id, done.stderr.strip()
                )
    stdout = fields.get("StdOut", "")
    if stdout.startswith("/"):
        for path in log_paths:
            link_slurm_log(Path(path), Path(stdout))


def slurm_log_link(rule_log: str | os.PathLike[str]) -> Path:
    """Where the link to SLURM's log of a rule log's job lies: beside it, `.slurm.log`."""
    rule_log = Path(rule_log)
    return rule_log.with_name(rule_log.name.removesuffix(".log") + SLURM_LOG_SUFFIX)


def link_slurm_log(rule_log: Path, slurm_log: Path) -> None:
    """Point `slurm_log_link(rule_log)` at `slurm_log` (replacing an older job's link)."""
    link = slurm_log_link(rule_log)
    temp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        temp.unlink(missing_ok=True)
        temp.symlink_to(os.path.relpath(slurm_log, link.parent))
        temp.replace(link)
    except OSError as error:
        log.warning("could not link SLURM's log %s beside %s: %s", slurm_log, rule_log, error)


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
    apply_group_umask_if_asked()  # config group_writable: a store the lab's group shares
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
        log.critical("job failed: %s: %s", kind.__name__, error, exc_info=(kind, error, traceback))

    sys.excepthook = log_uncaught
    if rule is not None:
        label_slurm_job(rule, wildcards or {}, log_paths)


# --------------------------------------------------------------------------- failed jobs

# What setup_job's hook writes into a rule's log when a job dies of an exception.
FAILED_MARK = " CRITICAL job failed: "
_RUN_PART = re.compile(r"^[A-Za-z0-9_.-]+-[0-9a-f]{12}")
_TAIL_BYTES = 64 * 1024


@dataclass
class FailedJob:
    """A job whose rule log ends in a failure: its rule, run, log, reason and last lines."""

    rule: str
    run: str
    log: Path
    reason: str
    modified: float
    tail: list[str]

    def one_line(self) -> str:
        slurm = slurm_log_link(self.log)
        where = f"log: {self.log}" + (f", SLURM log: {slurm}" if slurm.exists() else "")
        return f"FAILED {self.rule} ({self.run}): {self.reason}  [{where}]"


def failed_jobs(
    results: str | os.PathLike[str], *, since: float | None = None, lines: int = 5
) -> list[FailedJob]:
    """Jobs whose rule log under `<results>/logs/` records a failure (setup_job's hook), newest
    first; `since`: only logs written after this time (seconds since the epoch), e.g. those of
    one run of the workflow.  A job that succeeded again rewrote its log, so it is not listed.
    SLURM's own logs (`logs/slurm/`) are not read."""
    root = Path(results) / "logs"
    found = []
    for path in root.rglob("*.log") if root.is_dir() else ():
        relative = path.relative_to(root)
        if relative.parts[0] == "slurm" or not path.is_file() or path.is_symlink():
            continue
        modified = path.stat().st_mtime
        if since is not None and modified < since:
            continue
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - _TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
        marks = [line for line in text.splitlines() if FAILED_MARK in line]
        if not marks:
            continue
        run = next((p for p in relative.parts[1:] if _RUN_PART.match(p)), "-")
        match = _RUN_PART.match(run)
        found.append(
            FailedJob(
                rule=relative.parts[0],
                run=match.group(0) if match else run,
                log=path,
                reason=marks[-1].split(FAILED_MARK, 1)[1].strip(),
                modified=modified,
                tail=[line for line in text.splitlines() if line.strip()][-lines:],
            )
        )
    return sorted(found, key=lambda job: job.modified, reverse=True)
