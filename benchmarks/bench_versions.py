"""How much other package versions move a study's numbers: the tiny study run by another
Python environment, its scorecard compared cell by cell with the committed one.

    python3 -m venv --system-site-packages /tmp/other
    /tmp/other/bin/python -m pip install --no-deps "torch===2.13.0" "torchvision==0.28.0"
    python3 benchmarks/bench_versions.py --python /tmp/other/bin/python \
        --json docs/numbers/versions_torch-2.13.0.json

The committed scorecard (tests/data/tiny_scorecard.tsv) was made with the versions of
requirements.lock; `--json FILE` writes the versions that differ from the lock, the verdicts
and cells that moved and the largest change of an effect (`harsanyi compare`), for the
documentation (scripts/docs_numbers.py renders it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harsanyi.analyses.scorecard import compare_scorecards
from harsanyi.io import write_json

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "tests" / "data" / "tiny_scorecard.tsv"


def versions(python: str) -> dict[str, str | None]:
    """The versions provenance records (the packages that can change a number), as seen by
    `python`."""
    code = (
        "import json; from harsanyi.provenance import package_versions; "
        "print(json.dumps(package_versions()))"
    )
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def locked() -> dict[str, str]:
    """{package: version} of requirements.lock."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[name.strip().lower()] = version.strip()
    return pins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="the other environment's python")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    other = versions(args.python)
    lock = locked()
    changed = {
        package: {"lock": lock.get(package.lower()), "here": version}
        for package, version in other.items()
        if version != lock.get(package.lower())
    }
    print("versions that differ from requirements.lock:", changed or "none")
    with tempfile.TemporaryDirectory(prefix="bench-versions-") as temp:
        workdir = Path(temp)
        start = time.monotonic()
        subprocess.run(
            [args.python, "-m", "snakemake", "--cores", "2", "-s", str(REPO / "Snakefile")]
            + ["--configfile", str(REPO / "tests" / "data" / "tiny.yaml")]
            + ["--config", f"results={workdir / 'results'}", "device=cpu"],
            cwd=workdir,
            check=True,
            capture_output=True,
        )
        elapsed = time.monotonic() - start
        # the trainings really ran with the other versions: each run.json records them
        for manifest in (workdir / "results").glob("*/runs/*/run.json"):
            recorded = json.loads(manifest.read_text())["provenance"]["packages"]
            if recorded != other:
                raise SystemExit(f"{manifest} records {recorded}, not {other}")
        (fresh,) = (workdir / "results" / "studies").glob("tiny-*/a-*/scorecard.tsv")
        difference = compare_scorecards(COMMITTED, fresh)
    print(f"tiny study with these versions ({elapsed:.0f} s): {difference.summary()}")
    if not difference.same:
        print(difference.cells.to_string(index=False, max_colwidth=40))
    if args.json:
        write_json(
            {
                "study": "tests/data/tiny.yaml",
                "against": str(COMMITTED.relative_to(REPO)),
                "command": " ".join(["python3", "benchmarks/bench_versions.py", *sys.argv[1:]]),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "changed": changed,
                "rows": difference.rows,
                "verdicts_changed": difference.verdicts_changed,
                "cells_changed": len(difference.cells),
                "rows_changed": int(difference.cells[["run", "key"]].drop_duplicates().shape[0]),
                "largest_effect_change": difference.largest_effect_change,
                "summary": difference.summary(),
            },
            args.json,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
