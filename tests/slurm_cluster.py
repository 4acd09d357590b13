"""A throw-away one-node SLURM cluster on localhost, for tests.

``running_slurm_cluster(root)`` starts munged, slurmctld and slurmd (foreground mode, as child
processes of this one) with every socket, key, spool, state and log file under ``root``, and
waits until ``sinfo`` shows the node idle. The node advertises two fake GPUs (``Gres=gpu:2``)
backed by character devices made with ``mknod``, so GPU scheduling (``--gpus``, ``--gres``) is
real even on a machine without GPUs. On exit it cancels every job, stops the daemons it
started by process id and removes ``root``.

Clients (``sbatch``, ``squeue``, ``snakemake --executor slurm``) reach the cluster through
``cluster.env``, which sets ``SLURM_CONF`` (and puts an ``srun`` shim first on ``PATH``, see
``_srun_shim``); ``cluster.profile`` is a copy of ``profiles/slurm`` with the test partition
filled in, and ``cluster.run_snakemake(workdir, *args)`` runs a workflow through it.

Needs root and the Debian packages slurm-wlm and munge (see ``.ci/install-slurm.sh``);
``slurm_cluster_unavailable_reason()`` says why a cluster cannot be started here.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO_ROOT / "profiles" / "slurm"
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sinfo", "sbatch", "srun", "squeue", "scontrol", "scancel")
PARTITION = "testgpu"
N_FAKE_GPUS = 2
NVIDIA_MAJOR = 195
STATUS_CHECK_SECONDS = 2


@dataclass(frozen=True)
class SlurmCluster:
    """A running cluster: pass ``env`` to every subprocess that talks to it."""

    root: Path
    conf: Path
    env: dict[str, str]
    node: str
    partition: str
    n_gpus: int
    profile: Path

    def log_tail(self, n_lines: int = 40) -> str:
        """The last lines of every daemon log, for error messages."""
        return _log_tail(self.root / "log", n_lines)

    def run_snakemake(
        self,
        workdir: Path,
        *args: str,
        workflow_profile: str = "none",
        timeout_s: float = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``snakemake --profile <self.profile> ... *args`` in ``workdir``; fails with all logs
        (unless ``check`` is false: a run expected to fail).

        A workflow profile (``profiles/default`` next to the Snakefile or in ``workdir``)
        overrides the cluster profile key by key, so none is used unless one is named.
        """
        argv = [sys.executable, "-m", "snakemake", "--profile", str(self.profile)]
        argv += ["--workflow-profile", workflow_profile, "--directory", str(workdir), *args]
        done = subprocess.run(
            argv, cwd=workdir, env=self.env, capture_output=True, text=True, timeout=timeout_s
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                f"{_slurm_job_logs(workdir)}\nDaemon logs:\n{self.log_tail()}"
            )
        return done


def slurm_cluster_unavailable_reason() -> str | None:
    """Why no cluster can be started on this machine, or None if one can."""
    missing = [name for name in DAEMONS + CLIENTS if shutil.which(name) is None]
    if missing:
        return (
            f"SLURM/munge programs not installed: {', '.join(missing)} "
            "(Debian: apt-get install slurm-wlm munge, see .ci/install-slurm.sh)"
        )
    if os.geteuid() != 0:
        return "starting slurmctld/slurmd/munged needs root"
    return None


@pytest.fixture
def slurm_cluster(tmp_path: Path) -> Iterator[SlurmCluster]:
    """A fresh one-node cluster under ``tmp_path / "slurm"``; skips where none can run."""
    reason = slurm_cluster_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_slurm_cluster(tmp_path / "slurm") as cluster:
        yield cluster


@contextmanager
def running_slurm_cluster(
    root: Path,
    start_timeout_s: float = 60.0,
    real_memory_mb: int | None = None,
    status_check_seconds: int | None = STATUS_CHECK_SECONDS,
) -> Iterator[SlurmCluster]:
    """Bring a one-node cluster up under ``root`` (must not exist yet) and tear it down after.

    ``real_memory_mb``: the node's memory as SLURM knows it (default: 90% of this machine's),
    e.g. exactly a job's request, to check that the request is what reaches sbatch.
    ``status_check_seconds``: the profile's first status-check delay (quick for tests; None
    keeps profiles/slurm's own, for measuring a study as a lab would run it).
    """
    reason = slurm_cluster_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    root = root.resolve()
    if root.exists():
        raise FileExistsError(f"slurm cluster root already exists: {root}")
    with ExitStack() as daemons:
        daemons.callback(shutil.rmtree, root, ignore_errors=True)
        layout = _make_layout(root)
        node = socket.gethostname().split(".")[0]
        conf = _write_config(layout, node, real_memory_mb or _real_memory_mb())
        cluster = SlurmCluster(
            root=root,
            conf=conf,
            env=_client_env(conf, layout["bin"]),
            node=node,
            partition=PARTITION,
            n_gpus=N_FAKE_GPUS,
            profile=_write_profile(layout["profile"], PARTITION, status_check_seconds),
        )
        munged = _start_munged(daemons, layout, cluster, start_timeout_s)
        log = layout["log"]
        started = [
            munged,
            _start_daemon(
                daemons, ["slurmctld", "-D", "-c", "-i"], cluster.env, log / "slurmctld.stderr"
            ),
            _start_daemon(
                daemons, ["slurmd", "-D", "-N", node], cluster.env, log / "slurmd.stderr"
            ),
        ]
        daemons.callback(_cancel_all_jobs, cluster)
        _wait_for(
            lambda: _node_is_idle(cluster), "idle node in sinfo", started, cluster, start_timeout_s
        )
        try:
            yield cluster
        except BaseException:
            print(f"SLURM daemon logs ({root}):\n{cluster.log_tail()}")
            raise


def _start_munged(
    daemons: ExitStack, layout: dict[str, Path], cluster: SlurmCluster, timeout_s: float
) -> subprocess.Popen[bytes]:
    key, socket_path = layout["munge"] / "munge.key", layout["munge"] / "munge.socket"
    _run(["mungekey", "--create", "--keyfile", str(key)], cluster.env)
    argv = [
        "munged",
        "--foreground",
        "--force",  # pytest's tmp dirs are 0700; munged wants world-executable parents
        f"--socket={socket_path}",
        f"--key-file={key}",
        f"--pid-file={layout['run'] / 'munged.pid'}",
        f"--seed-file={layout['munge'] / 'munged.seed'}",
    ]
    # in the foreground munged logs to stderr only
    munged = _start_daemon(daemons, argv, cluster.env, layout["log"] / "munged.log")
    _wait_for(socket_path.exists, "munged socket", [munged], cluster, timeout_s)
    return munged


def _client_env(conf: Path, bin_dir: Path) -> dict[str, str]:
    """This process's environment minus inherited SLURM settings, pointing at ``conf``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_"))
    }
    env["SLURM_CONF"] = str(conf)
    env["PATH"] = _srun_shim(bin_dir, conf)
    return env


def _make_layout(root: Path) -> dict[str, Path]:
    layout = {
        name: root / name
        for name in ("etc", "bin", "munge", "run", "log", "state", "spool", "dev", "profile")
    }
    for path in layout.values():
        path.mkdir(parents=True, mode=0o700)
    for index in range(N_FAKE_GPUS):
        device = layout["dev"] / f"nvidia{index}"
        os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(NVIDIA_MAJOR, index))
    return layout


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _real_memory_mb() -> int:
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return int(total_mb * 0.9)  # slurmd drains a node that has less memory than configured


def _write_config(layout: dict[str, Path], node: str, real_memory_mb: int) -> Path:
    ctld_port, slurmd_port = _free_ports(2)
    etc, log, run = layout["etc"], layout["log"], layout["run"]
    n_cpus = os.cpu_count() or 1
    slurm_conf = f"""\
ClusterName=harsanyitest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={layout["munge"] / "munge.socket"}
StateSaveLocation={layout["state"]}
SlurmdSpoolDir={layout["spool"]}
SlurmctldPidFile={run / "slurmctld.pid"}
SlurmdPidFile={run / "slurmd.pid"}
SlurmctldLogFile={log / "slurmctld.log"}
SlurmdLogFile={log / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={etc / "plugstack.conf"}
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MailProg=/bin/true
# finished jobs (and their comments) stay visible to scontrol for the tests to read back
MinJobAge=3600
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 CPUs={n_cpus} RealMemory={real_memory_mb} \
Gres=gpu:{N_FAKE_GPUS} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    devices = layout["dev"] / f"nvidia[0-{N_FAKE_GPUS - 1}]"
    (etc / "slurm.conf").write_text(slurm_conf)
    (etc / "gres.conf").write_text(f"NodeName={node} Name=gpu File={devices}\n")
    (etc / "plugstack.conf").write_text("")
    return etc / "slurm.conf"


def _write_profile(directory: Path, partition: str, status_check_seconds: int | None) -> Path:
    """Copy profiles/slurm with our partition, no account (none exist here) and, unless None,
    quick status checks."""
    shutil.copytree(SLURM_PROFILE, directory, dirs_exist_ok=True)
    config_path = directory / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    resources = dict(config.get("default-resources") or {})
    resources.pop("slurm_account", None)
    resources["slurm_partition"] = partition
    config["default-resources"] = resources
    if status_check_seconds is not None:
        config["slurm-init-seconds-before-status-checks"] = status_check_seconds
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return directory


def _srun_shim(bin_dir: Path, conf: Path) -> str:
    """PATH with an ``srun`` and an ``scontrol`` that find our slurm.conf even without
    ``SLURM_CONF``.

    snakemake-executor-plugin-slurm-jobstep 0.6.1 deletes every ``SLURM_*`` variable except
    the job's identity before its inner ``srun``, ``SLURM_CONF`` included, and jobs call
    ``scontrol`` to set their comment; real clusters keep slurm.conf in /etc/slurm or run
    configless, where that does no harm.
    """
    for client in ("srun", "scontrol"):
        real = shutil.which(client)
        shim = bin_dir / client
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="{conf}" exec "{real}" "$@"\n')
        shim.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def _start_daemon(
    daemons: ExitStack, argv: list[str], env: dict[str, str], out: Path
) -> subprocess.Popen[bytes]:
    with out.open("wb") as sink:
        process = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    daemons.callback(_stop, process)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def _node_is_idle(cluster: SlurmCluster) -> bool:
    states = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--format=%t", "--nodes", cluster.node],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return states.returncode == 0 and states.stdout.split() == ["idle"]


def _cancel_all_jobs(cluster: SlurmCluster) -> None:
    """Let no job outlive the cluster (slurmstepd would otherwise keep running)."""
    subprocess.run(["scancel", "--partition", cluster.partition], env=cluster.env, timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        queue = subprocess.run(
            ["squeue", "--noheader", "--format=%i"],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if queue.returncode != 0 or not queue.stdout.strip():
            return
        time.sleep(0.5)


def _wait_for(
    ready: Callable[[], bool],
    what: str,
    daemons: list[subprocess.Popen[bytes]],
    cluster: SlurmCluster,
    timeout_s: float,
) -> None:
    """Poll ``ready`` until it holds; fail early, with the logs, if a daemon exits."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        dead = [" ".join(map(str, d.args)) for d in daemons if d.poll() is not None]
        if dead or time.monotonic() > deadline:
            problem = f"exited: {'; '.join(dead)}" if dead else f"after {timeout_s:.0f} s"
            raise RuntimeError(
                f"SLURM test cluster: no {what} ({problem}; config {cluster.conf}). "
                f"Daemon logs:\n{cluster.log_tail()}"
            )
        time.sleep(0.25)


def _slurm_job_logs(workdir: Path, n_lines: int = 30) -> str:
    """Tails of the plugin's per-job logs (kept for failed jobs) under ``workdir``."""
    parts = []
    for path in sorted((workdir / ".snakemake" / "slurm_logs").glob("**/*.log")):
        lines = path.read_text(errors="replace").splitlines()[-n_lines:]
        parts.append(f"--- {path} ---\n" + "\n".join(lines))
    return "\n".join(parts)


def _log_tail(log_dir: Path, n_lines: int) -> str:
    """Tails of the daemon logs (``*.log``); stderr copies only where a daemon left no log."""
    logs = {path.stem: path for path in log_dir.glob("*.stderr")}
    logs.update({path.stem: path for path in log_dir.glob("*.log")})
    parts = []
    for _, path in sorted(logs.items()):
        lines = path.read_text(errors="replace").splitlines()[-n_lines:]
        parts.append(f"--- {path.name} ---\n" + "\n".join(lines))
    return "\n".join(parts)
