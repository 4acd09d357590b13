"""The README's first command measured as a newcomer runs it: the default study from scratch in
a fresh clone of the committed tree, its wall time, jobs and peak memory, and its scorecards
compared cell by cell with the committed ones (docs/default_scorecard*.tsv).

    python3 benchmarks/bench_default_study.py --json docs/numbers/default_study.json

Run nothing else on the machine meanwhile: the wall time is the point. The clone's own
`src/` is put first on PYTHONPATH, so its code is what runs. `--workdir DIR` keeps the clone
and its results there (a second call with the same DIR resumes: Snakemake redoes only what
is missing). `--json FILE` writes the numbers for the documentation
(scripts/docs_numbers.py renders them); the load average at the start and the end says
whether anything else ran.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harsanyi.analyses.scorecard import compare_scorecards
from harsanyi.io import write_json
from harsanyi.provenance import store_packages

REPO = Path(__file__).resolve().parents[1]
COMMITTED = {
    "scorecard.tsv": REPO / "docs" / "default_scorecard.tsv",
    "scorecard_seeds.tsv": REPO / "docs" / "default_scorecard_seeds.tsv",
}


def job_counts(log: str) -> dict[str, int]:
    """{rule: jobs} of the first "Job stats" table Snakemake printed, with "total"."""
    counts: dict[str, int] = {}
    lines = iter(log.splitlines())
    for line in lines:
        if line.strip() == "Job stats:":
            break
    for line in lines:
        match = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if match:
            counts[match[1]] = int(match[2])
            if match[1] == "total":
                break
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores (README: 2)")
    parser.add_argument("--workdir", type=Path, help="keep the clone and its results here")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    temp = None
    if args.workdir is None:
        temp = tempfile.mkdtemp(prefix="bench-default-")
        workdir = Path(temp) / "harsanyi"
    else:
        workdir = args.workdir.resolve()
    if not workdir.exists():
        subprocess.run(
            ["git", "clone", "--quiet", "--no-local", str(REPO), str(workdir)], check=True
        )
    subprocess.run(["git", "checkout", "--quiet", commit], cwd=workdir, check=True)
    environment = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    load_start = os.getloadavg()
    print(f"the default study at {commit[:7]} in {workdir} (load average {load_start[0]:.2f})")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", str(args.cores)],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - start
    load_end = os.getloadavg()
    (workdir / "bench_default_study.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"the study failed; its log: {workdir / 'bench_default_study.log'}")
    jobs = job_counts(done.stderr)
    peak_rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    (study_dir,) = (workdir / "results" / "studies").glob("default-*/a-*/")
    compared = {}
    for table, committed in COMMITTED.items():
        difference = compare_scorecards(committed, study_dir / table)
        compared[table] = {
            "against": str(committed.relative_to(REPO)),
            "rows": difference.rows,
            "verdicts_changed": difference.verdicts_changed,
            "cells_changed": len(difference.cells),
            "largest_effect_change": difference.largest_effect_change,
            "summary": difference.summary(),
        }
        print(f"{table} against {committed.relative_to(REPO)}: {difference.summary()}")
    print(
        f"{jobs.get('total', 0)} jobs in {elapsed:.0f} s on {args.cores} cores, peak memory "
        f"{peak_rss_kib / 2**20:.2f} GiB (load average {load_start[0]:.2f} at the start, "
        f"{load_end[0]:.2f} at the end)"
    )
    if args.json:
        write_json(
            {
                "command": " ".join(
                    ["python3", "benchmarks/bench_default_study.py", *sys.argv[1:]]
                ),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "commit": commit,
                "study": study_dir.relative_to(workdir / "results" / "studies").as_posix(),
                "cores": args.cores,
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "wall_s": round(elapsed),
                "jobs": jobs,
                "peak_rss_gib": round(peak_rss_kib / 2**20, 2),
                "load_average": {"start": round(load_start[0], 2), "end": round(load_end[0], 2)},
                "compared": compared,
                "packages": store_packages(workdir / "results"),  # what its runs recorded
            },
            args.json,
        )
    if temp is not None:
        shutil.rmtree(temp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
