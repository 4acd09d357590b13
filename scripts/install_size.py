"""Print the disk size of the installed packages that requirements.lock pins.

Run: python3 scripts/install_size.py [--json docs/numbers/install.json] (after the README's
install), from the repository root.
"""

import argparse
import json
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()
    pins = Path("requirements.lock").read_text().splitlines()
    locked = {canonicalize_name(line.split("==")[0]) for line in pins if "==" in line}
    total, found = 0, set()
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name not in locked or name in found:
            continue
        found.add(name)
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
    missing = sorted(locked - found)
    print(f"{len(found)} of {len(locked)} locked packages installed: {total / 1e9:.1f} GB")
    if missing:
        print(f"not installed: {', '.join(missing)}")
    if args.json:
        record = {
            "command": "python3 scripts/install_size.py",
            "packages": len(found),
            "locked": len(locked),
            "gigabytes": round(total / 1e9, 2),
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
