"""The memory each rule's jobs used in a finished study, against what the workflow asks for.

    python3 scripts/memory_peaks.py <results> --json docs/numbers/memory.json

Reads every Snakemake benchmark file of the store (one per job, `<results>/benchmarks/<rule>/`
for a run's rules and `<results>/studies/*/*/benchmarks/<rule>.tsv` for a study's; the last
line is the job's peak `max_rss` in MB and its wall seconds `s`) and prints, per rule,
the jobs, the largest peak and the median and largest wall time, beside the rule's `mem_mb`
in workflow/resources.yaml. Exits 1 where a peak exceeds its rule's ask. `--json FILE` writes
the table for the documentation (scripts/docs_numbers.py renders it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from harsanyi.io import write_json
from harsanyi.provenance import store_packages

REPO = Path(__file__).resolve().parents[1]


def benchmark_files(results: Path) -> dict[str, list[Path]]:
    """{rule: its jobs' benchmark files}: `<results>/benchmarks/<rule>/...` for the rules of a
    run, `<results>/studies/<study>/<analysis>/benchmarks/<rule>.tsv` for a study's."""
    found: dict[str, list[Path]] = {}
    for rule_dir in sorted(p for p in (results / "benchmarks").iterdir() if p.is_dir()):
        found[rule_dir.name] = sorted(rule_dir.rglob("*.tsv"))
    for path in sorted((results / "studies").glob("*/*/benchmarks/*.tsv")):
        found.setdefault(path.stem, []).append(path)
    return {rule: files for rule, files in found.items() if files}


def peaks(results: Path) -> list[dict]:
    """One row per rule with benchmark files under `results`."""
    asks = yaml.safe_load((REPO / "workflow" / "resources.yaml").read_text())
    rows = []
    for rule, files in benchmark_files(results).items():
        last = pd.DataFrame([pd.read_csv(f, sep="\t").iloc[-1] for f in files])
        rss = pd.to_numeric(last["max_rss"], errors="coerce")
        seconds = pd.to_numeric(last["s"], errors="coerce")
        rows.append(
            {
                "rule": rule,
                "jobs": len(files),
                "max_rss_mb": float(np.nanmax(rss)) if rss.notna().any() else None,
                "median_s": float(np.nanmedian(seconds)),
                "max_s": float(np.nanmax(seconds)),
                "mem_mb": (asks.get(rule) or {}).get("mem_mb"),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="the study's results store")
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = parser.parse_args()
    if not (args.results / "benchmarks").is_dir():
        raise SystemExit(f"{args.results}: no benchmarks/ folder (is it a results store?)")
    rows = peaks(args.results)
    over = []
    for row in rows:
        rss = row["max_rss_mb"]
        peak = "n/a" if rss is None else f"{rss:.0f}"
        print(
            f"{row['rule']:<20} {row['jobs']:>4} jobs  peak {peak:>6} MB  ask {row['mem_mb']} MB"
            f"  wall median {row['median_s']:.1f} s, max {row['max_s']:.1f} s"
        )
        if rss is not None and row["mem_mb"] is not None and rss > row["mem_mb"]:
            over.append(row["rule"])
    if args.json:
        studies = sorted(p.name for p in (args.results / "studies").glob("*/"))
        write_json(
            {
                "command": f"python3 scripts/memory_peaks.py {' '.join(sys.argv[1:])}",
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "studies": studies,
                "packages": store_packages(args.results),
                "rows": rows,
            },
            args.json,
        )
    if over:
        print(f"peaks above the ask of workflow/resources.yaml: {', '.join(over)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
