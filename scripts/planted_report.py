"""Planted positive controls: in how many samples the planted rule is recovered.

python3 scripts/planted_report.py [--top-k K] [--min-order M] [--salient-ratio R]
    [--json FILE] RESULTS...

RESULTS: results files, or folders (a study's results root, a run directory) whose runs'
last checkpoints are read.  One line per file: "<dataset> <run> epoch E: planted rule
recovered in X of Y samples"; Y counts the samples where the rule applies, X those whose
decomposition shows it (criterion: `harsanyi.planted`; docs/default-study.md, "Planted positive
controls").
Files of datasets without a planted rule are skipped (a note on stderr); exit status 1 when
no file is left or one cannot be read.  `--json FILE` also writes the rows, the settings and
the command, for the documentation (scripts/docs_numbers.py renders them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harsanyi.io import write_json
from harsanyi.planted import (
    DEFAULT_MIN_ORDER,
    DEFAULT_TOP_K,
    PLANTED_DATASETS,
    last_checkpoint_files,
    planted_recovery,
    planted_terms,
    recovery_line,
    results_dataset,
)
from harsanyi.stats import DEFAULT_RATIO
from harsanyi.store import read_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", help="results files or folders")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K)
    parser.add_argument("--salient-ratio", type=float, default=DEFAULT_RATIO)
    parser.add_argument("--min-order", type=int, default=DEFAULT_MIN_ORDER)
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    rows = []
    try:
        files = last_checkpoint_files(args.results)
        reported = 0
        for path in files:
            results = read_results(path)
            if results_dataset(results) not in PLANTED_DATASETS:
                print(f"planted_report: skipped {path}: no planted rule", file=sys.stderr)
                continue
            recovery = planted_recovery(
                results,
                planted_terms(results),
                top_k=args.top_k,
                salient_ratio=args.salient_ratio,
                min_order=args.min_order,
            )
            print(recovery_line(path, recovery, results))
            model = results.meta.get("model", {})
            rows.append(
                {
                    "dataset": model.get("dataset"),
                    "run": model.get("run"),
                    "epoch": model.get("epoch"),
                    "recovered": recovery.recovered,
                    "samples": recovery.total,
                    "packages": (results.meta.get("provenance") or {}).get("packages"),
                }
            )
            reported += 1
        if not reported:
            raise ValueError(f"no results of a planted dataset ({', '.join(PLANTED_DATASETS)})")
    except (FileNotFoundError, ValueError) as err:
        print(f"planted_report: {err}", file=sys.stderr)
        return 1
    if args.json:
        write_json(
            {
                "command": " ".join(["python3 scripts/planted_report.py", *(argv or sys.argv[1:])]),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "top_k": args.top_k,
                "salient_ratio": args.salient_ratio,
                "min_order": args.min_order,
                "rows": rows,
            },
            args.json,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
