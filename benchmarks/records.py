"""A benchmark's table for the documentation: docs/numbers/<name>.json, with the command that
measured it and when (scripts/docs_numbers.py renders it)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from harsanyi.io import write_json
from harsanyi.provenance import package_versions


def write_table(path: Path, rows: list[dict], **extra: Any) -> None:
    """`rows` as `path` (JSON), beside the command as typed from the repository root, the
    time it finished, `extra`, torch's thread count and the versions of the packages that can
    change a number."""
    script = f"benchmarks/{Path(sys.argv[0]).name}"
    write_json(
        {
            "command": " ".join(["python3", script, *sys.argv[1:]]),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **extra,
            "threads": torch.get_num_threads(),
            "packages": package_versions(),
            "rows": rows,
        },
        path,
    )
