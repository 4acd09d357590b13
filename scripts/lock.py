"""Write requirements.lock: the exact version of every package harsanyi[test] installs.

Run: python3 scripts/lock.py [--out requirements.lock]

Walks the installed dependency tree of the project (its requirements, with the `test` extra,
and theirs, markers evaluated for this machine) and pins what is installed, so that
`python3 -m pip install -c requirements.lock -e ".[test]"` reproduces this environment's
numbers on another machine of the same platform.
"""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = "harsanyi"


def closure(root: str, extras: tuple[str, ...]) -> dict[str, str]:
    """{canonical name: installed version} of `root`'s dependency tree, `root` left out."""
    found: dict[str, str] = {}
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not any(
                marker.evaluate({"extra": extra}) for extra in (*wanted, "")
            ):
                continue
            key = canonicalize_name(requirement.name)
            if key in found:
                continue
            try:
                found[key] = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                continue  # an optional dependency this machine does not need
            todo.append((requirement.name, tuple(requirement.extras)))
    found.pop(canonicalize_name(root), None)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("requirements.lock"))
    args = parser.parse_args()
    pins = closure(ROOT, ("test",))
    header = [
        '# Exact versions of everything `pip install -e ".[test]"` installs, written by',
        "# `python3 scripts/lock.py` on "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}.",
        '# Use: python3 -m pip install -c requirements.lock -e ".[test]"',
    ]
    lines = header + [f"{name}=={version}" for name, version in sorted(pins.items())]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"{args.out}: {len(pins)} packages", file=sys.stderr)


if __name__ == "__main__":
    main()
