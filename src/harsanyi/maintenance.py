"""Keeping a shared results store: which studies use what, disk usage, garbage collection.

Every study that the workflow runs records itself in
`<results>/studies/<study-id>/<a-id>/study.json` (rule `study_record`, which needs no input
and so runs before any training): its runs, their extraction and analysis ids and sample
selections, and who started it.  Each analysis setting of a study has its own record, so
two users with different settings keep each other's tables.  Those records are what `gc` keeps:
a run directory, an `x-`/`a-`/`s-` directory, a joint group (`j-`) or a sample manifest that
no recorded study uses is stale.  A store without any record (written before records existed)
cannot be collected.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harsanyi.io import write_json
from harsanyi.store import RUN_MANIFEST, resume_leftovers, run_dirs

STUDY_RECORD = "study.json"
RECORD_VERSION = 1


# --------------------------------------------------------------------------- study records


def study_record(study: Any, run_analysis_ids: dict[str, str]) -> dict:
    """The record of a resolved `config.Study`: its runs with their extraction ids, the
    per-run analysis ids (`a-` of each per-run rule) and the study's analysis id."""
    return {
        "version": RECORD_VERSION,
        "study": study.name,
        "study_id": study.study_id,
        "analysis_id": study.analysis_id,
        "run_analysis_ids": dict(sorted(run_analysis_ids.items())),
        "selections": {name: plan.selection_id for name, plan in sorted(study.datasets.items())},
        "runs": [
            {
                "run": run.name,
                "dataset": run.dataset,
                "extraction": study.extraction_id(run),
                "games": study.game_id(run),  # g-<hash> of its games files
                # x-<hash> of each decomposition variant (config analysis.variants)
                "variants": {name: study.variant_id(run, name) for name in study.variants},
            }
            for run in sorted(study.runs, key=lambda run: run.name)
        ],
        # s-<hash> of the sensitivity files and j-<hash> of the joint groups, where enabled
        "sensitivity": study.sensitivity_id if study.sensitivity["enabled"] else None,
        "joint_groups": sorted(study.joint_groups()) if study.joint["enabled"] else [],
    }


def write_study_record(path: str | os.PathLike[str], record: dict) -> Path:
    """`record` plus the provenance of the start of the study, as `path`, atomically."""
    from harsanyi.provenance import provenance

    return write_json({**record, "provenance": provenance()}, path)


def read_study_records(root: str | os.PathLike[str]) -> list[dict]:
    """Every study record under `<root>/studies/`; ValueError naming a malformed one."""
    records = []
    for path in sorted(Path(root).glob(f"studies/*/a-*/{STUDY_RECORD}")):
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: unreadable study record: {exc}") from None
        runs = record.get("runs") if isinstance(record, dict) else None
        if not isinstance(runs, list) or not all(
            isinstance(run, dict) and {"run", "dataset", "extraction"} <= set(run) for run in runs
        ):
            raise ValueError(f"{path}: study record without a list of runs")
        records.append({**record, "path": str(path)})
    return records


# --------------------------------------------------------------------------- disk usage


def _size(path: Path) -> tuple[int, int]:
    """Bytes and number of files under `path` (a file or a directory)."""
    if path.is_file():
        return path.stat().st_size, 1
    total = count = 0
    for directory, _, names in os.walk(path):
        for name in names:
            try:
                total += (Path(directory) / name).stat().st_size
                count += 1
            except FileNotFoundError:  # removed while we walk: a shared store is live
                pass
    return total, count


DU_COLUMNS = ["path", "kind", "bytes", "files"]


def disk_usage(root: str | os.PathLike[str]) -> list[dict]:
    """One row per part of the store: every run directory split into checkpoints,
    interactions, analysis and the rest, then sample manifests, resume states, studies,
    logs and benchmarks of each dataset or of the root."""
    root = Path(root)
    rows = []

    def add(path: Path, kind: str) -> None:
        if path.exists():
            size, files = _size(path)
            rows.append({"path": str(path), "kind": kind, "bytes": size, "files": files})

    for run_dir in run_dirs(root):
        parts = {"checkpoints", "games", "interactions", "analysis", "sensitivity"}
        for part in sorted(parts):
            add(run_dir / part, part)
        other = [p for p in run_dir.iterdir() if p.name not in parts]
        size = sum(_size(p)[0] for p in other)
        rows.append({"path": str(run_dir), "kind": "run files", "bytes": size, "files": len(other)})
    for dataset in sorted(p for p in root.iterdir() if (p / "runs").is_dir()):
        add(dataset / "samples", "sample manifests")
        add(dataset / "resume", "resume states")
        add(dataset / "joint", "joint extractions")
    add(root / "studies", "studies")
    add(root / "logs", "logs")
    add(root / "benchmarks", "benchmarks")
    return rows


# --------------------------------------------------------------------------- garbage


@dataclass(frozen=True)
class Garbage:
    path: Path
    reason: str
    bytes: int


# Nothing younger than this is collected: a study that is running now writes files that no
# finished record may name yet (its record is written first, but a second user's study may
# have started a moment ago).
DEFAULT_GRACE_HOURS = 24.0


def _newest_change(path: Path) -> float:
    """The latest modification time of `path` and everything under it (links not followed)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for directory, subdirectories, names in os.walk(path):
            for name in subdirectories + names:
                try:
                    newest = max(newest, (Path(directory) / name).lstat().st_mtime)
                except FileNotFoundError:  # removed while we walk: a shared store is live
                    pass
    return newest


def _through_link(path: Path, root: Path) -> bool:
    """Whether `path` is a link or lies under one below `root` (gc never follows links: a
    linked dataset directory may hold another store's data, or anything at all)."""
    part = path
    while part != root and part != part.parent:
        if part.is_symlink():
            return True
        part = part.parent
    return False


# A study whose record is this old, that never finished (no scorecard) and whose study and
# run directories changed in none of these days, was abandoned: its record no longer keeps
# its runs.  A study that runs this long writes into its runs all the while.
DEFAULT_ABANDONED_DAYS = 30.0
STUDY_FINISHED = "scorecard.tsv"  # the last table a study writes, beside its record


def abandoned(record: dict, root: Path, days: float) -> bool:
    """Whether the study of `record` (read_study_records) never finished and nothing of it,
    its record, study directory and runs, changed in the last `days` days."""
    study_dir = Path(record["path"]).parent
    if (study_dir / STUDY_FINISHED).exists():
        return False
    cutoff = time.time() - days * 86400
    if _newest_change(study_dir) > cutoff:
        return False
    for run in record["runs"]:
        run_dir = root / run["dataset"] / "runs" / run["run"]
        if run_dir.exists() and _newest_change(run_dir) > cutoff:
            return False
    return True


def find_garbage(
    root: str | os.PathLike[str],
    *,
    grace_hours: float = DEFAULT_GRACE_HOURS,
    abandoned_days: float = DEFAULT_ABANDONED_DAYS,
) -> list[Garbage]:
    """What no recorded study uses: run directories, extraction (`x-`) and analysis (`a-`)
    directories of used runs, sample manifests, and resume states of finished or unused
    runs; never a link or anything under one, nor anything changed in the last
    `grace_hours`.  A study recorded when it started keeps its runs while it runs, and after
    it finished; one abandoned for `abandoned_days` (`abandoned`) keeps nothing, and its
    study directory is collected too.  ValueError when the store holds no study record
    (nothing could be told apart)."""
    root = Path(root)
    if not (isinstance(grace_hours, (int, float)) and grace_hours >= 0):
        raise ValueError(f"grace_hours must be a number >= 0, got {grace_hours!r}")
    if not (isinstance(abandoned_days, (int, float)) and abandoned_days > 0):
        raise ValueError(f"abandoned_days must be a number > 0, got {abandoned_days!r}")
    records = read_study_records(root)
    if not records:
        raise ValueError(
            f"{root}: no study records (studies/*/a-*/{STUDY_RECORD}); run each study's workflow "
            "once with this version so that it records the runs it uses, then collect"
        )
    given_up = [record for record in records if abandoned(record, root, abandoned_days)]
    records = [record for record in records if record not in given_up]
    extractions: dict[str, set[str]] = {}
    games: dict[str, set[str] | None] = {}  # None: a record older than games files
    analyses: set[str] = set()
    selections: set[str] = set()
    sensitivities: set[str] = set()
    joint_groups: set[str] = set()
    for record in records:
        for run in record["runs"]:
            used = extractions.setdefault(run["run"], set())
            used |= {run["extraction"], *(run.get("variants") or {}).values()}
            if run.get("games") is None or games.get(run["run"], set()) is None:
                games[run["run"]] = None  # keep every games file of the run
            else:
                games.setdefault(run["run"], set()).add(run["games"])
        analyses |= set((record.get("run_analysis_ids") or {}).values())
        selections |= set((record.get("selections") or {}).values())
        sensitivities |= {record["sensitivity"]} if record.get("sensitivity") else set()
        joint_groups |= set(record.get("joint_groups") or [])

    found: list[Garbage] = []
    cutoff = time.time() - grace_hours * 3600

    def stale(path: Path, reason: str) -> None:
        if _through_link(path, root) or _newest_change(path) > cutoff:
            return
        found.append(Garbage(path, reason, _size(path)[0]))

    for run_dir in run_dirs(root):
        used = extractions.get(run_dir.name)
        if used is None:
            stale(run_dir, "run used by no recorded study")
            continue
        used_games = games.get(run_dir.name)
        for gdir in sorted((run_dir / "games").glob("g-*")) if used_games is not None else ():
            if gdir.name not in used_games:
                stale(gdir, "games settings used by no recorded study")
        for kind in ("interactions", "analysis", "sensitivity"):
            for xdir in sorted((run_dir / kind).glob("x-*")):
                if xdir.name not in used:
                    stale(xdir, "extraction used by no recorded study")
                elif kind == "analysis":
                    for adir in sorted(xdir.glob("a-*")):
                        if adir.name not in analyses:
                            stale(adir, "analysis settings used by no recorded study")
                elif kind == "sensitivity":
                    for sdir in sorted(xdir.glob("s-*")):
                        if sdir.name not in sensitivities:
                            stale(sdir, "sensitivity settings used by no recorded study")
    for group in sorted(root.glob("*/joint/j-*")):
        if group.name not in joint_groups:
            stale(group, "joint extraction used by no recorded study")
    for manifest in sorted(root.glob("*/samples/sel-*.json")):
        if manifest.stem not in selections:
            stale(manifest, "sample selection used by no recorded study")
    for record in given_up:
        stale(
            Path(record["path"]).parent,
            f"study abandoned: never finished, nothing of it changed in {abandoned_days:g} days",
        )
    for resume in resume_leftovers(root):
        run_dir = resume.parent.parent / "runs" / resume.name
        if (run_dir / RUN_MANIFEST).exists():
            stale(resume, "resume state of a finished training")
        elif resume.name not in extractions:
            stale(resume, "resume state of a run used by no recorded study")
    return found


def remove(garbage: list[Garbage]) -> None:
    """Remove what `find_garbage` listed; a path that became a link meanwhile is left."""
    for item in garbage:
        if item.path.is_symlink():
            continue
        if item.path.is_dir():
            shutil.rmtree(item.path)
        else:
            item.path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- run index


def write_analysis_index(path: str | os.PathLike[str], tables: dict[str, str]) -> Path:
    """`path` (JSON): each per-run analysis step with its table, relative to `path`'s
    directory, and the table's size; written last by a run's analysis group job."""
    directory = Path(path).parent
    index = {
        step: {"table": os.path.relpath(table, directory), "bytes": Path(table).stat().st_size}
        for step, table in sorted(tables.items())
    }
    return write_json(index, path)
