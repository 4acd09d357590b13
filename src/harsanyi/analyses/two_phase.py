"""Two-phase dynamics: salient strength per order over training, the phase-2 start and the
loss-gap onset of every run."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import shown_epochs
from harsanyi.dynamics import loss_gap_onset, two_phase_summary
from harsanyi.io import write_json, write_tsv
from harsanyi.stats import DEFAULT_RATIO, mean_order, order_distribution, order_strength
from harsanyi.store import read_results

ORDER_COLUMNS = [
    "run",
    "arch",
    "dataset",
    "epoch",
    "split",
    "order",
    "positive",
    "negative",
    "distribution",
    "mean_order",
    "samples",
]


def order_strength_table(files: Iterable[str | Path], *, ratio: float = 0.05) -> pd.DataFrame:
    """I⁺(k), I⁻(k) and the normalised order distribution per checkpoint file and split."""
    rows = []
    for path in files:
        results = read_results(path)
        model = results.meta["model"]
        for split in dict.fromkeys(results.split.tolist()):
            part = results.subset(split)
            strength = order_strength(part.I_and, part.I_or, ratio=ratio)
            distribution = order_distribution(part.I_and, part.I_or, ratio=ratio)
            m = mean_order(distribution) if np.nansum(distribution) > 0 else np.nan
            for k in range(1, results.n + 1):
                rows.append(
                    {
                        "run": model["run"],
                        "arch": model["arch"],
                        "dataset": model["dataset"],
                        "epoch": int(model["epoch"]),
                        "split": split,
                        "order": k,
                        "positive": float(strength.loc[k, "positive"]),
                        "negative": float(strength.loc[k, "negative"]),
                        "distribution": float(distribution[k - 1]),
                        "mean_order": m,
                        "samples": len(part.sample_ids),
                    }
                )
    return pd.DataFrame(rows, columns=ORDER_COLUMNS).sort_values(["run", "epoch", "split", "order"])


def two_phase_points(
    strength: pd.DataFrame, metrics: pd.DataFrame, *, split: str = "train", fraction: float = 0.1
) -> dict:
    """Phase-2 start (minimal mean order after the first checkpoint) and loss-gap onset."""
    per_epoch = (
        strength[strength.split == split]
        .groupby("epoch")["mean_order"]
        .first()
        .dropna()
        .sort_index()
    )
    gaps = metrics.set_index("epoch").loc[per_epoch.index, "loss_gap"]
    summary = two_phase_summary(
        per_epoch.index.to_numpy(), per_epoch.to_numpy(), gaps.to_numpy(), fraction=fraction
    )
    # A random network's train and test losses agree, so the gap at initialisation is ~0
    # and its first rise is the start of learning, not of over-fitting: look from epoch 1 on.
    later = per_epoch.index > per_epoch.index[0]
    if later.sum() >= 3:
        onset = loss_gap_onset(
            per_epoch.index[later].to_numpy(), gaps[later].to_numpy(), fraction=fraction
        )
        summary["gap_onset"] = onset
        summary["distance_epochs"] = None if onset is None else onset - summary["phase2_start"]
    summary["mean_order_init"] = float(per_epoch.iloc[0])
    summary["mean_order_min"] = float(per_epoch.min())
    summary["mean_order_final"] = float(per_epoch.iloc[-1])
    return summary


def run_step(
    *,
    interactions: Sequence[str | Path],
    metrics: str | Path,
    table: str | Path,
    points: str | Path,
    figure: str | Path,
    ratio: float = DEFAULT_RATIO,
    shown: int = 4,
    fraction: float = 0.1,
) -> None:
    """Order strength per checkpoint of one run, its phase-2 start and loss-gap onset, figure."""
    from harsanyi.plots import two_phase_figure

    strength = order_strength_table(interactions, ratio=ratio)
    run_metrics = pd.read_csv(metrics, sep="\t")
    run = strength.run.iloc[0]
    found = two_phase_points(strength, run_metrics, fraction=fraction)
    found["run"] = run
    write_tsv(strength, table)
    write_json(found, points)
    epochs = shown_epochs(strength.epoch.unique(), shown, found["phase2_start"])
    two_phase_figure(strength, {run: run_metrics}, {run: epochs}, {run: found}, figure)


def study_step(
    *,
    tables: Sequence[str | Path],
    metrics: Sequence[str | Path],
    points: Sequence[str | Path],
    table: str | Path,
    summary: str | Path,
    figure: str | Path,
    shown: int = 4,
) -> None:
    """All runs of a study: one strength table, one summary table, one figure."""
    from harsanyi.plots import two_phase_figure

    strength = pd.concat([pd.read_csv(t, sep="\t") for t in tables], ignore_index=True)
    found = [json.loads(Path(p).read_text()) for p in points]
    run_metrics = {p["run"]: pd.read_csv(m, sep="\t") for p, m in zip(found, metrics, strict=True)}
    write_tsv(strength, table)
    write_tsv(pd.DataFrame(found), summary)
    epochs = {
        p["run"]: shown_epochs(
            strength[strength.run == p["run"]].epoch.unique(), shown, p["phase2_start"]
        )
        for p in found
    }
    two_phase_figure(strength, run_metrics, epochs, {p["run"]: p for p in found}, figure)
