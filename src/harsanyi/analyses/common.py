"""What the analyses share: loading results files with their model identity, grouping them
by run, the named checkpoints of a run, and reading the tables other steps wrote."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.store import InteractionResults, read_results

ResultsLike = str | os.PathLike | InteractionResults

IDENTITY = ["run", "arch", "dataset", "epoch"]


def load(item: ResultsLike) -> InteractionResults:
    """`item` itself, or the results file it names; meta["model"] must identify the model."""
    results = item if isinstance(item, InteractionResults) else read_results(item)
    model = results.meta.get("model") or {}
    missing = [key for key in IDENTITY if key not in model]
    if missing:
        where = "results" if isinstance(item, InteractionResults) else os.fspath(item)
        raise ValueError(f"{where}: meta['model'] lacks {missing}; needs {IDENTITY}")
    return results


def uncertified(results: InteractionResults) -> float:
    """How many samples carry no certificate within the solver's gap tolerance.

    Analyses keep such samples (their decomposition is exact, v_and + v_or = v + q with
    |q| ≤ ε, only not proven within 0.5 % of the sparsest) and count them in the column
    `uncertified` of every per-checkpoint table.  NaN for files written before certificates
    existed.
    """
    if results.certified is None:
        return float("nan")
    return float(np.sum(~np.asarray(results.certified, dtype=bool)))


def identity(results: InteractionResults) -> dict:
    """run, arch, dataset and epoch of the checkpoint behind `results`."""
    model = results.meta["model"]
    return {
        "run": str(model["run"]),
        "arch": str(model["arch"]),
        "dataset": str(model["dataset"]),
        "epoch": int(model["epoch"]),
    }


def results_split(results: InteractionResults, split: str, where: str) -> InteractionResults:
    part = results.subset(split)
    if part.n_samples == 0:
        raise ValueError(f"{where}: no {split!r} samples in the results of {identity(results)}")
    return part


def by_run(items: Iterable[ResultsLike]) -> dict[str, dict[int, InteractionResults]]:
    """{run: {epoch: results}}, epochs sorted; a checkpoint given twice is an error."""
    runs: dict[str, dict[int, InteractionResults]] = {}
    for item in items:
        results = load(item)
        info = identity(results)
        epochs = runs.setdefault(info["run"], {})
        if info["epoch"] in epochs:
            raise ValueError(f"run {info['run']}: epoch {info['epoch']} given twice")
        epochs[info["epoch"]] = results
    if not runs:
        raise ValueError("no results files given")
    return {run: dict(sorted(epochs.items())) for run, epochs in runs.items()}


def checkpoint_stages(epochs: Iterable[int], phase2_start: int | None = None) -> dict[str, int]:
    """Named checkpoints of a run: init, early, phase-2 start and final.

    init / final are the first / last checkpoint; early is the checkpoint half way (by
    position) between init and the phase-2 start (or the last checkpoint when the phase-2
    start is unknown).  A stage whose checkpoint an earlier stage already took is left out.
    """
    ordered = sorted(set(int(e) for e in epochs))
    if not ordered:
        raise ValueError("a run needs at least one checkpoint")
    start = phase2_start if phase2_start in ordered else None
    end = ordered.index(start) if start is not None else len(ordered) - 1
    candidates = [
        ("init", ordered[0]),
        ("early", ordered[end // 2]),
        ("phase-2 start", start),
        ("final", ordered[-1]),
    ]
    stages: dict[str, int] = {}
    for name, epoch in candidates:
        if epoch is not None and epoch not in stages.values():
            stages[name] = epoch
    return stages


def shown_epochs(epochs: Iterable[int], count: int, phase2_start: int | None = None) -> list[int]:
    """`count` checkpoints spread over training: first, last, the phase-2 start, and fill."""
    epochs = sorted(set(int(e) for e in epochs))
    chosen = {epochs[0], epochs[-1]}
    if phase2_start is not None and phase2_start in epochs:
        chosen.add(phase2_start)
    for position in np.linspace(0, len(epochs) - 1, count):
        if len(chosen) >= count:
            break
        chosen.add(epochs[int(round(position))])
    return sorted(chosen)[:count] if len(chosen) > count else sorted(chosen)


def read_tsv(path: str | Path) -> pd.DataFrame:
    """A table written by a step; only empty fields are missing values (a verdict "n/a" stays
    text, which pandas' defaults would turn into NaN)."""
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])


def read_tsvs(paths: Iterable[str | Path]) -> pd.DataFrame:
    frames = [read_tsv(path) for path in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_points(paths: Iterable[str | Path]) -> dict[str, dict]:
    points = {}
    for path in paths:
        point = json.loads(Path(path).read_text())
        if "run" not in point:
            raise ValueError(f"{path}: two-phase points without a 'run' entry")
        points[point["run"]] = point
    return points


def check_files(paths: Iterable[str | Path], what: str) -> list[str]:
    paths = [os.fspath(p) for p in paths]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{what}: missing {missing}")
    return paths


def plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
