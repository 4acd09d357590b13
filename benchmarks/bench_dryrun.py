"""Dry-run cost and job shape of a lab-scale study.

The study: 6 architectures × 5 image datasets × 3 seeds, 20 checkpoints per run (1,800
checkpoints, so 1,800 extraction jobs).  Data roots are empty temporary directories: a dry
run reads no data.  Prints the jobs per rule, the SLURM submissions that the slurm profile
implies (rules in slurm-array-jobs go out as arrays of at most slurm-array-limit tasks, the
analyses as one group job per run and one per study, every other job as its own sbatch
call) and the seconds `snakemake -n` takes, plain and with `--profile profiles/slurm`.
Array calls are given as a range: all jobs of a rule ready together (fewest) to every run's
jobs ready alone (most; extraction arrays are released per batch of finished trainings).

    python benchmarks/bench_dryrun.py            # from the repository root
    python benchmarks/bench_dryrun.py --observed docs/numbers/slurm_default.json

`--observed FILE` checks this model against what SLURM saw instead: the study that
`bench_slurm_calls.py --json FILE` ran on the test cluster is dry-run here, and for every rule
or group its observed jobs must equal the planned ones and its observed sbatch calls lie in
the predicted range (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SLURM_PROFILE = REPO / "profiles" / "slurm"
ARCHITECTURES = ["lenet", "vgg11", "vgg13", "alexnet", "resnet18", "mlp"]
DATASETS = {  # name -> needs a data root
    "mnist": True,
    "cifar10": True,
    "cifar100": True,
    "fashion_mnist": False,
    "digits": False,
}
SEEDS = [0, 1, 2]
# epoch 0, every epoch to 10, then every 5th to 55: 11 + 9 = 20 checkpoints per run
TRAINING = {
    "epochs": 55,
    "checkpoints": {"dense_until": 10, "dense_every": 1, "sparse_every": 5},
}
CHECKPOINTS_PER_RUN = 20
LOCAL_RULES = {"all", "study_record"}
# Rules whose arrays are released per batch of finished trainings (most: one per run).
PER_TRAINING_ARRAYS = {"games", "extract", "redecompose", "sensitivity_games", "sensitivity"}
# Joint extractions wait for the games of every run of their group at one checkpoint: each can
# become ready alone (seen on the test cluster: 8 jobs of the default study in 6 sbatch calls).
JOB_BY_JOB_ARRAYS = {"joint_extract"}


def rule_groups() -> dict[str, str]:
    """rule -> its `group:` in workflow/rules/*.smk: the jobs that go out as one group job
    (one per run for run_analyses, one per study for study_analyses), read from the workflow
    itself so that a rule added to a group is counted in it."""
    groups = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        rule = None
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"(?:local)?rule (\w+):", line)
            if match:
                rule = match[1]
            elif line.strip() == "group:" and rule is not None:
                groups[rule] = lines[index + 1].strip().strip('"')
    return groups


def lab_config(data_root: Path, results: Path) -> dict:
    """The study config; every dataset that needs a root gets an empty one under data_root."""
    datasets = {}
    for name, needs_root in DATASETS.items():
        entry: dict = {
            "architectures": ARCHITECTURES,
            "players": {"grid": [8, 8], "n": 10, "seed": 0},
        }
        if needs_root:
            root = data_root / name
            root.mkdir(parents=True, exist_ok=True)
            entry["root"] = str(root)
        datasets[name] = entry
    return {
        "study": "lab",
        "results": str(results),
        "seeds": SEEDS,
        "label_noise": [0.0],
        "training": TRAINING,
        "datasets": datasets,
        "extraction": {"solver": "adam", "iters": 2000},
    }


def job_counts(output: str) -> dict[str, int]:
    """Jobs per rule from the "Job stats" table of a dry run."""
    table = output.partition("Job stats:")[2]
    if not table:
        raise RuntimeError(f"no 'Job stats' table in the dry-run output:\n{output[-3000:]}")
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.fullmatch(r"(\S+)\s+(\d+)", line.strip())
        if match is None or match[1] == "total":
            break
        counts[match[1]] = int(match[2])
    return counts


def dry_run(config: Path, workdir: Path, *extra: str) -> tuple[float, str]:
    """Seconds and output of `snakemake -n` on `config`."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        "-n",
        "--quiet",
        "rules",
        *extra,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{output[-4000:]}")
    return seconds, output


def slurm_submissions(counts: dict[str, int], n_runs: int) -> dict[str, tuple[int, int]]:
    """(fewest, most) sbatch calls per rule (or group) under profiles/slurm."""
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    array_rules = {r.strip() for r in str(profile.get("slurm-array-jobs", "")).split(",")}
    limit = int(profile.get("slurm-array-limit", 1000))
    groups = rule_groups()
    calls = {}
    for rule, count in counts.items():
        if rule in LOCAL_RULES:
            continue
        if groups.get(rule) == "run_analyses":
            calls["group run_analyses"] = (n_runs, n_runs)  # one group job per run
        elif groups.get(rule) == "study_analyses":
            calls["group study_analyses"] = (1, 1)
        elif rule in groups:
            raise RuntimeError(f"rule {rule}: group {groups[rule]!r} is not counted here")
        elif rule in array_rules and count > 1:
            fewest = math.ceil(count / limit)
            most = max(fewest, n_runs) if rule in PER_TRAINING_ARRAYS else fewest
            most = count if rule in JOB_BY_JOB_ARRAYS else most
            calls[rule] = (fewest, most)
        else:
            calls[rule] = (count, count)
    return calls


def check_observed(path: Path) -> int:
    """Compare the observed sbatch calls of `path` (bench_slurm_calls.py --json) with this
    model's range for the same study; 0 if every rule or group lies in it."""
    observed = json.loads(path.read_text())
    with tempfile.TemporaryDirectory(prefix="bench-dryrun-") as temp:
        workdir = Path(temp) / "study"
        workdir.mkdir()
        config = REPO / observed["config"]
        if "config_text" in observed:  # the study as it ran, not as its file reads now
            config = Path(temp) / "observed.yaml"
            config.write_text(observed["config_text"])
        _, output = dry_run(config, workdir, "--config", f"results={workdir}")
    counts = job_counts(output)
    n_runs = counts["train"]
    calls = slurm_submissions(counts, n_runs)
    predicted = {name.removeprefix("group "): pair for name, pair in calls.items()}
    # a group's members run inside its group job: one SLURM job per run, one per study
    group_jobs = {"run_analyses": n_runs, "study_analyses": 1}
    status = 0
    print(f"{observed['config']}: observed on the test cluster vs this model")
    print(f"{'rule or group':<22}{'jobs seen':>10}{'planned':>9}{'calls seen':>12}{'range':>10}")
    for rule in sorted(set(predicted) | set(observed["sbatch_calls"])):
        fewest, most = predicted.get(rule, (0, 0))
        seen = observed["sbatch_calls"].get(rule, 0)
        jobs = observed["jobs"].get(rule, 0)
        planned = group_jobs.get(rule, counts.get(rule, 0))
        ok = fewest <= seen <= most and jobs == planned
        status |= not ok
        mark = "" if ok else "  <- differs"
        print(f"{rule:<22}{jobs:>10}{planned:>9}{seen:>12}{f'{fewest}-{most}':>10}{mark}")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-slurm", action="store_true", help="skip the --profile dry run")
    parser.add_argument("--observed", type=Path, help="check against bench_slurm_calls' JSON")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    if args.observed:
        return check_observed(args.observed)
    with tempfile.TemporaryDirectory(prefix="bench-dryrun-") as temp:
        temp_dir = Path(temp)
        config_path = temp_dir / "lab.yaml"
        config_path.write_text(
            yaml.safe_dump(lab_config(temp_dir / "data", temp_dir / "results"), sort_keys=False)
        )
        workdir = temp_dir / "work"
        workdir.mkdir()
        seconds, output = dry_run(config_path, workdir)
        counts = job_counts(output)
        slurm_seconds = None
        if not args.no_slurm:
            slurm_seconds, slurm_output = dry_run(
                config_path, workdir, "--profile", str(SLURM_PROFILE)
            )
            if job_counts(slurm_output) != counts:
                raise RuntimeError("the slurm-profile dry run plans other jobs")

    n_runs = len(ARCHITECTURES) * len(DATASETS) * len(SEEDS)
    if counts.get("train") != n_runs or counts.get("extract") != n_runs * CHECKPOINTS_PER_RUN:
        raise RuntimeError(f"unexpected plan: {counts}")
    calls = slurm_submissions(counts, n_runs)
    width = max(map(len, [*counts, *calls])) + 2
    print(
        f"study: {len(ARCHITECTURES)} architectures × {len(DATASETS)} datasets × "
        f"{len(SEEDS)} seeds = {n_runs} runs, {CHECKPOINTS_PER_RUN} checkpoints each"
    )
    print(f"{'rule':<{width}}{'jobs':>7}")
    for rule, count in counts.items():
        print(f"{rule:<{width}}{count:>7}")
    print(f"{'total':<{width}}{sum(counts.values()):>7}")
    print(f"{'sbatch calls':<{width}}{'fewest':>7}{'most':>7}")
    for rule, (fewest, most) in calls.items():
        print(f"{rule:<{width}}{fewest:>7}{most:>7}")
    fewest, most = (sum(pair[i] for pair in calls.values()) for i in (0, 1))
    print(f"{'total':<{width}}{fewest:>7}{most:>7}")
    print(f"snakemake -n: {seconds:.1f} s")
    if slurm_seconds is not None:
        print(f"snakemake -n --profile profiles/slurm: {slurm_seconds:.1f} s")
    if args.json:
        record = {
            "command": "python3 benchmarks/bench_dryrun.py",
            "runs": n_runs,
            "checkpoints_per_run": CHECKPOINTS_PER_RUN,
            "plan": (
                f"{len(ARCHITECTURES)} architectures × {len(DATASETS)} datasets × "
                f"{len(SEEDS)} seeds"
            ),
            "jobs": counts,
            "total_jobs": sum(counts.values()),
            "sbatch_calls": {rule: list(pair) for rule, pair in calls.items()},
            "fewest_calls": fewest,
            "most_calls": most,
            "dry_run_s": round(seconds, 1),
            "dry_run_slurm_s": None if slurm_seconds is None else round(slurm_seconds, 1),
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
