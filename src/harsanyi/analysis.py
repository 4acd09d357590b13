"""Tidy tables computed from results files: one row per run × checkpoint × split × order."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.dynamics import loss_gap_onset, two_phase_summary
from harsanyi.stats import mean_order, order_distribution, order_strength
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
