"""Observed sbatch calls of a study on the throw-away one-node SLURM cluster of the tests.

Starts the cluster of tests/slurm_cluster.py (root, slurm-wlm and munge needed), puts the
sbatch recorder of tests/test_slurm.py first on PATH, runs the study through profiles/slurm
and profiles/default, and prints the sbatch calls and jobs per rule (or group).

    python benchmarks/bench_slurm_calls.py tests/data/tiny.yaml      # from the repository root
    python benchmarks/bench_slurm_calls.py config/config.yaml --timeout 7200 \
        --json docs/slurm/default.json

The cluster's GPUs are fake (GRES on character devices), so the study computes on the CPU
(`device=cpu`; a job given a GPU it cannot use would refuse to run).  `--json FILE` writes
the numbers (wall time, sbatch calls and array tasks or jobs per rule or group, the command,
the commit) for the documentation (docs/numbers/, scripts/docs_numbers.py renders them);
`--local` then runs the same study without SLURM on the same machine for its wall time.
Run nothing else on the machine meanwhile: a second test cluster beside it (tests/test_slurm.py)
makes its jobs fail.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from slurm_cluster import running_slurm_cluster  # noqa: E402
from test_slurm import read_submissions, record_sbatch_calls  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="study config")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for the study")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    parser.add_argument(
        "--local",
        action="store_true",
        help="then run the same study without SLURM (snakemake --cores 2), for its wall time",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as temp:
        temp_dir = Path(temp)
        workdir = temp_dir / "study"
        workdir.mkdir()
        records = temp_dir / "sbatch-calls"
        # profiles/slurm as shipped (its status-check delay too), only the partition set
        with running_slurm_cluster(temp_dir / "slurm", status_check_seconds=None) as cluster:
            cluster = record_sbatch_calls(cluster, records)
            start = time.monotonic()
            cluster.run_snakemake(
                workdir,
                "-s",
                str(REPO / "Snakefile"),
                "--configfile",
                str(args.config.resolve()),
                "--config",
                f"results={workdir / 'results'}",
                "device=cpu",
                workflow_profile=str(REPO / "profiles" / "default"),
                timeout_s=args.timeout,
            )
            elapsed = time.monotonic() - start
            submissions = read_submissions(records)
        local_elapsed = None
        if args.local:
            local_dir = temp_dir / "local"
            local_dir.mkdir()
            start = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "snakemake", "--cores", "2", "-s", str(REPO / "Snakefile")]
                + ["--configfile", str(args.config.resolve())]
                + ["--config", f"results={local_dir / 'results'}", "device=cpu"],
                cwd=local_dir,
                check=True,
                capture_output=True,
                timeout=args.timeout,
            )
            local_elapsed = time.monotonic() - start
    calls: dict[str, int] = {}
    jobs: dict[str, int] = {}
    for sub in submissions:
        calls[sub.rule] = calls.get(sub.rule, 0) + 1
        jobs[sub.rule] = jobs.get(sub.rule, 0) + (sub.array_size or 1)
    print(f"{args.config}: {elapsed:.0f} s on the one-node cluster")
    if local_elapsed is not None:
        print(f"{args.config}: {local_elapsed:.0f} s locally (snakemake --cores 2)")
    print(f"{'rule or group':<20}{'sbatch calls':>14}{'array tasks/jobs':>18}")
    for rule in sorted(calls):
        print(f"{rule:<20}{calls[rule]:>14}{jobs[rule]:>18}")
    print(f"{'total':<20}{sum(calls.values()):>14}{sum(jobs.values()):>18}")
    if args.json:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        record = {
            "config": str(args.config),
            # the study as it ran: the config file may change after (bench_dryrun --observed)
            "config_text": args.config.read_text(),
            "command": " ".join(["python3", "benchmarks/bench_slurm_calls.py", *sys.argv[1:]]),
            "commit": commit,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "wall_s": round(elapsed),
            "local_wall_s": None if local_elapsed is None else round(local_elapsed),
            "sbatch_calls": dict(sorted(calls.items())),
            "jobs": dict(sorted(jobs.items())),
            "total_calls": sum(calls.values()),
            "total_jobs": sum(jobs.values()),
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        temp = args.json.with_name(f".{args.json.name}.tmp")
        temp.write_text(json.dumps(record, indent=1) + "\n")
        temp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
