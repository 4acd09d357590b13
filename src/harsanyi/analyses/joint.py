"""Interactions shared by models that differ only in their architecture: joint extraction
(`harsanyi.joint`) next to the separately extracted decompositions.

A group is the runs of one dataset, seed and label noise with different architectures; they
explain the same samples with the same players, so their games can be decomposed jointly.

- `extract_step` (rule joint_extract): the group's interaction files of one checkpoint in
  (their stored games v), the certified joint decomposition out (HDF5, `write_joint`).
- `shared_table`: per group (and, in groups of three or more, per pair: column `models`),
  checkpoint, model and order the shared and model-specific salient strength
  (`harsanyi.joint.shared_specific`), for the joint extraction and, on the same samples, for
  the separate decompositions (column `method`).
- `shared_summary`: per group, checkpoint and method the shared fraction of all salient
  strength, averaged over the models.
- `study_step` (rule joint_study): the tables and the figure.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import IDENTITY, check_files, load, uncertified
from harsanyi.io import write_tsv
from harsanyi.joint import (
    DEFAULT_ALPHA,
    JointResults,
    extract_joint,
    read_joint,
    shared_specific,
    write_joint,
)
from harsanyi.stats import DEFAULT_RATIO
from harsanyi.store import InteractionResults, read_games

log = logging.getLogger(__name__)


def _same(values: list, what: str, paths: Sequence) -> None:
    if any(not np.array_equal(values[0], other) for other in values[1:]):
        raise ValueError(f"the files {list(map(str, paths))} differ in their {what}")


def first_per_split(split: np.ndarray, count: int | None) -> np.ndarray:
    """Row indices of the first `count` samples of each split, in file order (all for None)."""
    split = np.asarray(split).astype(str)
    if count is None:
        return np.arange(len(split))
    if count < 1:
        raise ValueError(f"samples_per_split must be at least 1, got {count}")
    rank = np.zeros(len(split), dtype=np.int64)
    for name in np.unique(split):
        rows = split == name
        rank[rows] = np.arange(rows.sum())
    return np.flatnonzero(rank < count)


def extract_step(
    *,
    interactions: Sequence[str | Path],
    out: str | Path,
    alpha: float = DEFAULT_ALPHA,
    qthres: float = 0.02,
    samples_per_split: int | None = None,
) -> None:
    """Joint decomposition of the games stored in `interactions` (games files or results
    files, one per model, same samples, players, baseline and output) → `out`, on the first
    `samples_per_split` samples of each split (None: all)."""
    paths = check_files(interactions, "games files")
    if len(paths) < 2:
        raise ValueError(f"a joint extraction needs two or more models, got {paths}")
    results = [read_games(path) for path in paths]
    for path, games in zip(paths, results, strict=True):
        missing = [key for key in IDENTITY if key not in (games.meta.get("model") or {})]
        if missing:
            raise ValueError(f"{path}: meta['model'] lacks {missing}; needs {IDENTITY}")
    _same([r.sample_ids for r in results], "samples", paths)
    _same([r.split.astype(str) for r in results], "splits", paths)
    for key in ("players", "baseline", "output"):
        _same([repr(r.meta[key]) for r in results], key, paths)
    first = results[0]
    rows = first_per_split(first.split, samples_per_split)
    log.info(
        "joint LP of %d models on %d of %d samples (%s per split), n = %d, alpha = %g",
        len(results),
        len(rows),
        len(first.split),
        "all" if samples_per_split is None else samples_per_split,
        first.n,
        alpha,
    )
    joint = extract_joint(
        np.stack([r.v[rows] for r in results]),
        alpha=alpha,
        qthres=qthres,
        models=[r.meta["model"] for r in results],
        sample_ids=first.sample_ids[rows],
        labels=first.labels[rows],
        meta={
            "players": first.meta["players"],
            "baseline": first.meta["baseline"],
            "output": first.meta["output"],
            "extra": {
                "split": first.split[rows].astype(str).tolist(),
                "samples_per_split": samples_per_split,
                "separate_files": [str(p) for p in paths],
            },
        },
        progress=True,
    )
    write_joint(out, joint)


def _group_label(models: list[dict]) -> str:
    first = models[0]
    archs = " + ".join(str(m.get("arch")) for m in models)
    run = str(first.get("run", ""))
    noise = next((p[5:] for p in run.split("-") if p.startswith("noise")), "")
    seed = next((p for p in run.split("-") if p[:1] == "s" and p[1:].isdigit()), "")
    parts = [str(first.get("dataset", "")), seed, f"noise {noise}" if noise else ""]
    return f"{' '.join(p for p in parts if p)}: {archs}"


def shared_table(
    joint: Sequence[str | Path],
    separate: Sequence[str | Path],
    *,
    ratio: float = DEFAULT_RATIO,
) -> pd.DataFrame:
    """Shared vs specific salient strength per group, checkpoint, model and order, for the
    joint extraction and the separate decompositions of the same models and samples.

    `separate`: interaction files that include every (run, epoch) a joint file joined (more
    are ignored)."""
    by_key = {}
    for path in check_files(separate, "interaction files"):
        results = load(path)
        model = results.meta["model"]
        by_key[(model["run"], int(model["epoch"]))] = results
    frames = []
    for path in check_files(joint, "joint extractions"):
        results = read_joint(path)
        keys = [(m["run"], int(m["epoch"])) for m in results.models]
        missing = [key for key in keys if key not in by_key]
        if missing:
            raise ValueError(f"{path}: no separate interaction file of (run, epoch) {missing}")
        parts = [by_key[key] for key in keys]
        rows = [_joint_rows(results, part, path) for part in parts]
        separate_pair = tuple(
            np.stack([getattr(part, name)[r] for part, r in zip(parts, rows, strict=True)])
            for name in ("I_and", "I_or")
        )
        label = _group_label(results.models)
        missing_certificates = {
            "joint": float((~results.certified).sum()),
            "separate": sum(uncertified(p) for p in parts),
        }
        everyone = tuple(range(len(parts)))
        # the whole group, and with three or more models each pair of it (shared = salient in
        # both models of the pair; the joint solution is the group's)
        subsets = [everyone] + (list(combinations(everyone, 2)) if len(parts) > 2 else [])
        for subset in subsets:
            for method, source in (("joint", results), ("separate", separate_pair)):
                table = shared_specific(source, group=subset, ratio=ratio)
                table["model"] = [results.models[m]["arch"] for m in table.model]
                table.insert(0, "group_label", label)
                table.insert(1, "group", Path(path).parent.name)
                table.insert(2, "models", " + ".join(results.models[m]["arch"] for m in subset))
                table.insert(3, "epoch", keys[0][1])
                table.insert(4, "method", method)
                table["uncertified"] = missing_certificates[method]
                frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _joint_rows(joint: JointResults, part: InteractionResults, path: str | Path) -> np.ndarray:
    """The rows of a separate decomposition that hold the joint extraction's samples, matched
    by split and sample id (a joint extraction may hold the first few samples of each split)."""
    splits = (joint.meta.get("extra") or {}).get("split")
    if splits is None:  # written without splits: the same samples in the same order
        _same([joint.sample_ids, part.sample_ids], "samples", [path])
        return np.arange(part.n_samples)
    part_keys = zip(np.asarray(part.split).astype(str), part.sample_ids, strict=True)
    where = {(str(s), int(i)): row for row, (s, i) in enumerate(part_keys)}
    wanted = [(str(s), int(i)) for s, i in zip(splits, joint.sample_ids, strict=True)]
    missing = [key for key in wanted if key not in where]
    if missing:
        raise ValueError(f"{path}: samples (split, id) {missing[:5]} are not in the separate file")
    return np.array([where[key] for key in wanted], dtype=np.int64)


def whole_groups(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of `shared_table` about whole groups (not pairs out of larger groups)."""
    return table[table.group_label.str.split(": ").str[-1] == table.models]


def shared_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per group, checkpoint and method: the shared fraction of the salient strength (all
    orders), averaged over the models (the top row of the figure); one row per pair as well
    where a group has three or more models (column `models`)."""
    totals = table.groupby(["group_label", "group", "models", "epoch", "method", "model"])[
        ["shared", "specific"]
    ].sum()
    totals["shared_fraction"] = totals.shared / (totals.shared + totals.specific)
    keys = ["group_label", "group", "models", "epoch", "method"]
    summary = totals.groupby(keys).shared_fraction.mean().unstack("method")
    summary.columns = [f"shared_fraction_{method}" for method in summary.columns]
    return summary.reset_index()


def readme_part(summary: pd.DataFrame) -> str:
    """The joint extraction in the study-results section, from `shared_summary`'s table (whole
    groups): at how many group × checkpoint cells the joint decomposition finds more of the
    salient strength shared than the separate ones, and the mean over groups per epoch."""
    whole = whole_groups(summary)
    joint, separate = whole.shared_fraction_joint, whole.shared_fraction_separate
    means = whole.groupby("epoch")[["shared_fraction_joint", "shared_fraction_separate"]].mean()
    epochs = "; ".join(
        f"epoch {epoch}: {row.shared_fraction_joint:.2f} against {row.shared_fraction_separate:.2f}"
        for epoch, row in means.iterrows()
    )
    return (
        f"Joint extraction (`joint_summary.tsv`, `joint.png`): the joint decomposition finds "
        f"more of the models' salient strength shared than their separate decompositions at "
        f"{int((joint > separate).sum())} of {len(whole)} group × checkpoint cells "
        f"({whole.group.nunique()} groups). Shared fraction, mean over the groups, joint "
        f"against separate: {epochs}."
    )


def study_step(
    *,
    joint: Sequence[str | Path],
    separate: Sequence[str | Path],
    table: str | Path,
    summary: str | Path,
    figure: str | Path,
    ratio: float = DEFAULT_RATIO,
) -> None:
    """Every group's joint files (and the separate files they joined) → tables and figure."""
    from harsanyi.plots import joint_figure

    frame = shared_table(joint, separate, ratio=ratio)
    write_tsv(frame, table)
    write_tsv(shared_summary(frame), summary)
    joint_figure(whole_groups(frame), figure)
