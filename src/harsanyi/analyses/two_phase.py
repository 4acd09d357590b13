"""Two-phase dynamics: salient strength per order over training, the phase-2 start and the
loss-gap onset of every run."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import shown_epochs, uncertified
from harsanyi.dynamics import loss_gap_onset, two_phase_summary
from harsanyi.io import write_json, write_tsv
from harsanyi.stats import (
    DEFAULT_RATIO,
    mean_order,
    order_distribution,
    order_strength,
    order_strength_per_sample,
)
from harsanyi.store import InteractionResults, read_results
from harsanyi.verdicts import (
    GREATER,
    INCONCLUSIVE,
    LESS,
    LEVEL,
    N_BOOT,
    Claim,
    bootstrap_weights,
    claim,
    decide,
    not_applicable,
    placement_distance_null,
)

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
    "uncertified",
    # The same at the low and high ends of the optimal face (NaN: files without the face).
    "positive_low",
    "negative_low",
    "mean_order_low",
    "positive_high",
    "negative_high",
    "mean_order_high",
]
FACE_ENDS = ("low", "high")


def _strengths(part, ratio: float) -> tuple[pd.DataFrame, np.ndarray, float]:
    strength = order_strength(part.I_and, part.I_or, ratio=ratio)
    distribution = order_distribution(part.I_and, part.I_or, ratio=ratio)
    m = mean_order(distribution) if np.nansum(distribution) > 0 else np.nan
    return strength, distribution, m


def order_strength_table(files: Iterable[str | Path], *, ratio: float = 0.05) -> pd.DataFrame:
    """I⁺(k), I⁻(k) and the normalised order distribution per checkpoint file and split."""
    rows = []
    for path in files:
        results = read_results(path)
        model = results.meta["model"]
        for split in dict.fromkeys(results.split.tolist()):
            part = results.subset(split)
            strength, distribution, m = _strengths(part, ratio)
            ends = {}
            if part.has_face:
                ends = {end: _strengths(part.at_end(end), ratio) for end in FACE_ENDS}
            for k in range(1, results.n + 1):
                at_ends = {}
                for end in FACE_ENDS:
                    s, _, m_end = ends.get(end, (None, None, np.nan))
                    at_ends[f"positive_{end}"] = np.nan if s is None else s.loc[k, "positive"]
                    at_ends[f"negative_{end}"] = np.nan if s is None else s.loc[k, "negative"]
                    at_ends[f"mean_order_{end}"] = m_end
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
                        "uncertified": uncertified(part),
                        **{key: float(value) for key, value in at_ends.items()},
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


# --------------------------------------------------------------------------- claims

MIN_SAMPLES = 5
SMALLEST_ORDER_CHANGE = 0.1


def strength_cube(
    epochs: dict[int, InteractionResults], *, split: str = "train", ratio: float = DEFAULT_RATIO
) -> np.ndarray:
    """(checkpoints, samples, n) salient strength s_x(k) = I⁺ − I⁻ per sample and order.

    Samples are matched across checkpoints by sample id (every checkpoint must explain the
    same samples of `split`), so that a bootstrap over samples is paired over checkpoints.
    """
    cube, ids = [], None
    for epoch, results in sorted(epochs.items()):
        part = results.subset(split)
        order = np.argsort(part.sample_ids, kind="stable")
        if ids is None:
            ids = part.sample_ids[order]
        elif not np.array_equal(ids, part.sample_ids[order]):
            raise ValueError(f"epoch {epoch}: other {split} samples than the first checkpoint")
        positive, negative = order_strength_per_sample(
            part.I_and[order], part.I_or[order], ratio=ratio
        )
        cube.append(positive - negative)
    return np.stack(cube)


def pooled_mean_orders(cube: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(replicates, checkpoints) mean order of the sample-weighted pooled strength; nan where
    a checkpoint has no salient strength in a replicate."""
    pooled = np.einsum("rx,txk->rtk", weights, cube)
    total = pooled.sum(axis=-1)
    ks = np.arange(1, cube.shape[-1] + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, pooled @ ks / np.where(total > 0, total, 1.0), np.nan)


def _later_minimum(m: np.ndarray) -> np.ndarray:
    later = m[:, 1:]
    out = np.full(m.shape[0], np.nan)
    usable = np.isfinite(later).any(axis=1)
    out[usable] = np.nanmin(later[usable], axis=1)
    return out


def phase1_statistic(m: np.ndarray) -> np.ndarray:
    """Mean order at initialisation − minimal mean order after it (the phase-2 start)."""
    return m[:, 0] - _later_minimum(m)


def phase2_statistic(m: np.ndarray) -> np.ndarray:
    """Mean order at the last checkpoint − minimal mean order after initialisation."""
    return m[:, -1] - _later_minimum(m)


def _time_permuted(cube: np.ndarray, first: int, draws: int, seed: int) -> np.ndarray:
    """`draws` copies of the cube with each sample's checkpoints from `first` on shuffled
    independently: the same samples with their temporal order destroyed."""
    rng = np.random.default_rng(seed)
    t, x, _ = cube.shape
    keys = rng.random((draws, t - first, x))
    order = np.argsort(keys, axis=1) + first
    head = np.broadcast_to(np.arange(first)[None, :, None], (draws, first, x))
    index = np.concatenate([head, order], axis=1)  # (draws, t, x)
    return cube[index, np.arange(x)[None, None, :]]  # (draws, t, x, n)


def phase_claims(
    cube: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, tuple[Claim, dict]]:
    """Phase 1 and phase 2 as effects with intervals against a permutation null.

    Effects (`phase1_statistic`, `phase2_statistic` of the pooled mean orders) with a paired
    bootstrap over samples (the phase-2 start is re-selected in every replicate).  Null: the
    same statistic after shuffling each sample's checkpoints independently (all checkpoints
    for phase 1; for phase 2 those from the phase-2 start on, the window whose rise is
    claimed): what checkpoint-to-checkpoint noise, the extraction's included, and the
    selection of the minimum give without any trend.
    """
    t, x, _ = cube.shape
    if t < 3:
        reason = f"{t} checkpoints; phases need at least 3"
        return {key: (not_applicable(reason, n=x), {}) for key in ("phase1_drop", "phase2_rise")}
    point = pooled_mean_orders(cube, np.ones((1, x)))
    boot = pooled_mean_orders(cube, bootstrap_weights(x, n_boot, seed))
    out = {}
    # Phase 2 is judged on the window from the phase-2 start on: shuffling the phase-1 descent
    # into it would make its null as wide as phase 1 itself.
    later = point[0, 1:]
    start = 1 + int(np.nanargmin(later)) if np.isfinite(later).any() else 1
    for key, statistic, window in (
        ("phase1_drop", phase1_statistic, cube),
        ("phase2_rise", phase2_statistic, cube[start - 1 :]),
    ):
        # Index 0 of the window stays in place (the statistics never read it after it).
        first = 0 if key == "phase1_drop" else 1
        permuted = _time_permuted(window, first, n_boot, seed + 1)
        null = np.array([statistic(pooled_mean_orders(c, np.ones((1, x))))[0] for c in permuted])
        result = claim(
            float(statistic(point)[0]),
            statistic(boot),
            null=float(np.nanmedian(null)),
            null_replicates=null,
            direction=GREATER,
            n=x,
            min_n=MIN_SAMPLES,
            smallest_effect=SMALLEST_ORDER_CHANGE,
            units=x,
        )
        out[key] = (result, {"replicates": statistic(boot), "null_replicates": null})
    return out


def seeds_to_decide(positions: int, level: float = LEVEL) -> int:
    """Seeds whose mean distance can reach "yes" on a grid of `positions` checkpoints: the
    smallest S with P(all S random distances are 0) = (1/positions)^S ≤ 1 − `level`."""
    if positions < 2:
        raise ValueError(f"need at least two positions, got {positions}")
    return max(1, math.ceil(math.log(1 - level) / math.log(1 / positions) - 1e-12))


def gap_claim(
    cube: np.ndarray,
    epochs: Sequence[int],
    onset: int | None,
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> tuple[Claim, dict]:
    """Distance in checkpoints between the phase-2 start and the loss-gap onset, against two
    points placed at random on the same grid (the checkpoints after initialisation).

    Interval: bootstrap over samples of the phase-2 start (the onset comes from the losses).
    Null: the exact distribution of |i − j| for i, j uniform on the grid; the bound is the
    largest distance d with P(|i − j| ≤ d) ≤ 5 % (one-sided, as every bound here).  Where
    even distance 0 is likelier than that by chance (fewer than 20 checkpoints after
    initialisation: P = 1/positions) one run cannot decide the claim on its grid: the verdict
    is "inconclusive" with the reason "cannot be decided on this grid", the number of seeds
    whose pooled mean distance can decide it (`seeds_to_decide`; the pooled scorecard,
    `scorecard_seeds.tsv`), and the replicates that pooling uses.
    """
    epochs = list(epochs)
    x = cube.shape[1]
    positions = len(epochs) - 1
    if onset is None or onset not in epochs[1:] or positions < 2:
        return not_applicable("no loss-gap onset found", direction=LESS, n=x), {}
    where = epochs.index(onset) - 1
    m_point = pooled_mean_orders(cube, np.ones((1, x)))[:, 1:]
    m_boot = pooled_mean_orders(cube, bootstrap_weights(x, n_boot, seed))[:, 1:]
    m_boot = np.where(np.isfinite(m_boot), m_boot, np.inf)
    distance = float(abs(int(np.argmin(np.where(np.isfinite(m_point), m_point, np.inf))) - where))
    replicates = np.abs(np.argmin(m_boot, axis=1) - where).astype(float)
    p = placement_distance_null(positions)
    rng = np.random.default_rng(seed + 2)
    null = rng.choice(np.arange(positions), size=n_boot, p=p).astype(float)
    result = claim(
        distance,
        replicates,
        null=float(p @ np.arange(positions)),
        null_replicates=null,
        direction=LESS,
        n=x,
        min_n=MIN_SAMPLES,
        units=x,
    )
    tail = 1 - LEVEL
    cdf = np.cumsum(p)
    reachable = np.flatnonzero(cdf <= tail)
    extra = {"replicates": replicates, "null_replicates": null, "onset_located": where > 0}
    if where == 0:
        return replace(
            result,
            verdict=INCONCLUSIVE,
            reason="the loss gap rises from the first checkpoint examined: onset not located",
        ), extra
    if reachable.size == 0:
        seeds = seeds_to_decide(positions)
        return replace(
            result,
            verdict=INCONCLUSIVE,
            reason=(
                f"cannot be decided on this grid: {positions} checkpoints after initialisation, "
                f"chance puts the two points together with probability {p[0]:.3f} > "
                f"{tail:.2f}; needs >= {math.ceil(1 / tail)} checkpoints, or {seeds} seeds "
                "pooled (scorecard_seeds.tsv)"
            ),
        ), extra
    bound = float(reachable[-1]) + 0.5
    verdict, reason = decide(
        distance, result.low, result.high, bound, direction=LESS, n=x, min_n=MIN_SAMPLES
    )
    return replace(result, bound=bound, verdict=verdict, reason=reason), extra
