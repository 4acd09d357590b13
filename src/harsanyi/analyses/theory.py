"""Theory against measurement: the spindle at initialisation, the σ² fit of the phase-2
theory per checkpoint, and the pure-theory ratio r(k) (harsanyi.theory holds the maths)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import (
    ResultsLike,
    by_run,
    check_files,
    identity,
    read_points,
    read_tsvs,
    results_split,
    shown_epochs,
)
from harsanyi.io import write_tsv
from harsanyi.stats import (
    DEFAULT_RATIO,
    mean_order,
    order_distribution,
    order_strength_per_sample,
    salient_masks,
)
from harsanyi.store import InteractionResults
from harsanyi.theory import (
    DEFAULT_SPINDLE_TEMPLATE,
    MAX_THEORY_PLAYERS,
    SPINDLE_TEMPLATES,
    fit_sigma2,
    low_high_ratio,
    phase2_solution,
    predicted_distribution,
    spindle_distribution,
)


def theory_w_star(I_and, I_or, *, ratio: float = DEFAULT_RATIO) -> np.ndarray:
    """Ground-truth interactions w* (samples, 2^n) for the phase-2 theory.

    The theory has one AND game; we merge the OR part coalition-wise and keep what is
    salient: w*(T) = I_and(T)·1[salient] + I_or(T)·1[salient], and w*(∅) = 0 (the offset
    v(∅) is no interaction between players).  With this choice the prediction at σ² = 0
    reproduces the measured distribution up to AND/OR terms of the same T of opposite sign.
    """
    a, o = np.atleast_2d(I_and), np.atleast_2d(I_or)
    and_mask, or_mask = salient_masks(a, o, ratio=ratio)
    w = np.where(and_mask, a, 0.0) + np.where(or_mask, o, 0.0)
    w[:, 0] = 0.0
    return w


def total_variation(p, q) -> float:
    """½ Σ_k |p(k) − q(k)| of two distributions over orders."""
    return float(0.5 * np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q)).sum())


def middle_orders(n: int) -> tuple[int, int]:
    """(⌈n/4⌉, ⌊3n/4⌋): the orders counted as "middle" (3..7 for n = 10)."""
    return max(1, math.ceil(n / 4)), max(1, (3 * n) // 4)


def theory_tables(
    items: Iterable[ResultsLike], *, ratio: float = DEFAULT_RATIO
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spindle at initialisation and the σ² fit of the phase-2 theory, per run and checkpoint.

    w* = `theory_w_star` of the training samples at the run's last checkpoint.  Measured:
    `stats.order_distribution` of the training samples (salient at `ratio`).  Predicted:
    `theory.predicted_distribution(w*, σ²)` (|ŵ| summed over samples, then normalised) with
    σ² = `theory.fit_sigma2(w*, measured)`.  Returns (orders, fit): orders has one row per
    checkpoint × order with measured, predicted and spindle (`theory.spindle_distribution`);
    fit one row per checkpoint with sigma2, distance (the fit's squared error), tv (total
    variation predicted vs measured), spindle_tv (measured vs spindle), peak_order (argmax of
    the measured distribution) and both mean orders.  "spindle" is the seed's template
    ("binomial", ∝ C(n,k)); "spindle_iid_v" (orders) and "spindle_iid_v_tv" (fit) are the
    alternative for i.i.d. v (∝ C(n,k)·2^{k/2}), named as such.
    """

    runs = by_run(items)
    for run, epochs in runs.items():
        n = next(iter(epochs.values())).n
        if n > MAX_THEORY_PLAYERS:
            raise ValueError(f"run {run}: n = {n} players; the theory needs n <= 12")
    order_rows, fit_rows = [], []
    for run, epochs in runs.items():
        last = results_split(epochs[max(epochs)], "train", f"run {run}")
        w_star = theory_w_star(last.I_and, last.I_or, ratio=ratio)
        theory_usable = bool(np.any(w_star != 0))
        for results in epochs.values():
            info, n = identity(results), results.n
            train = results_split(results, "train", f"run {run}")
            measured = order_distribution(train.I_and, train.I_or, ratio=ratio)
            spindle = spindle_distribution(n, "binomial")
            spindle_iid_v = spindle_distribution(n, "iid_v")
            predicted = np.full(n, np.nan)
            sigma2 = np.nan
            if theory_usable and np.nansum(measured) > 0:
                sigma2 = fit_sigma2(w_star, measured)
                predicted = predicted_distribution(w_star, sigma2)
            has_measure = bool(np.nansum(measured) > 0)
            for k in range(1, n + 1):
                order_rows.append(
                    {
                        **info,
                        "order": k,
                        "measured": measured[k - 1],
                        "predicted": predicted[k - 1],
                        "spindle": spindle[k - 1],
                        "spindle_iid_v": spindle_iid_v[k - 1],
                    }
                )
            fit_rows.append(
                {
                    **info,
                    "n": n,
                    "sigma2": sigma2,
                    "distance": float(np.sum((predicted - measured) ** 2)),
                    "tv": total_variation(predicted, measured),
                    "spindle_tv": total_variation(spindle, measured) if has_measure else np.nan,
                    "spindle_iid_v_tv": total_variation(spindle_iid_v, measured)
                    if has_measure
                    else np.nan,
                    "peak_order": int(np.nanargmax(measured)) + 1 if has_measure else np.nan,
                    "mean_order_measured": mean_order(measured) if has_measure else np.nan,
                    "mean_order_predicted": mean_order(predicted)
                    if np.all(np.isfinite(predicted))
                    else np.nan,
                }
            )
    return (
        pd.DataFrame(order_rows).sort_values(["run", "epoch", "order"], ignore_index=True),
        pd.DataFrame(fit_rows).sort_values(["run", "epoch"], ignore_index=True),
    )


def theory_ratio_table(
    ns: Sequence[int] = (6, 8, 10),
    sigma2s: Sequence[float] = tuple(np.logspace(-6, 0, 7)),
    *,
    draws: int = 8,
    seed: int = 0,
) -> pd.DataFrame:
    """Pure theory: r(k) = `theory.low_high_ratio` of ŵ for every split order k, n and σ².

    w*: `draws` seeded vectors with i.i.d. standard normal entries on every non-empty
    coalition (w*(∅) = 0), strengths summed over the draws.  Columns: n, sigma2,
    split_order, ratio.
    """

    rng = np.random.default_rng(seed)
    rows = []
    for n in ns:
        w_star = rng.normal(size=(draws, 2**n))
        w_star[:, 0] = 0.0
        for sigma2 in sigma2s:
            w_hat = phase2_solution(w_star, float(sigma2))
            for k in range(1, n):
                ratio = low_high_ratio(w_hat, n, split_order=k)
                rows.append({"n": n, "sigma2": float(sigma2), "split_order": k, "ratio": ratio})
    return pd.DataFrame(rows)


def run_step(
    *,
    interactions: Sequence[str | Path],
    orders: str | Path,
    fit: str | Path,
    ratio: float = DEFAULT_RATIO,
) -> None:
    """Spindle and σ² fit of one run → two TSVs."""
    orders_table, fit_table = theory_tables(
        check_files(interactions, "interaction files"), ratio=ratio
    )
    write_tsv(orders_table, orders)
    write_tsv(fit_table, fit)


def study_step(
    *,
    orders_tables: Sequence[str | Path],
    fit_tables: Sequence[str | Path],
    points: Sequence[str | Path],
    orders: str | Path,
    fit: str | Path,
    figure: str | Path,
    ratio: str | Path,
    ratio_figure: str | Path,
    shown: int = 4,
) -> None:
    """All runs: theory tables, theory-vs-measurement figure, and the pure r(k) figure."""
    from harsanyi.plots import theory_figure, theory_ratio_figure

    orders_table = read_tsvs(check_files(orders_tables, "theory tables"))
    fit_table = read_tsvs(check_files(fit_tables, "theory fits"))
    two_phase = read_points(check_files(points, "two-phase points"))
    epochs = {
        run: shown_epochs(part.epoch.unique(), shown, two_phase.get(run, {}).get("phase2_start"))
        for run, part in orders_table.groupby("run")
    }
    ratio_table = theory_ratio_table()
    write_tsv(orders_table, orders)
    write_tsv(fit_table, fit)
    write_tsv(ratio_table, ratio)
    theory_figure(orders_table, fit_table, epochs, figure)
    theory_ratio_figure(ratio_table, ratio_figure)


# --------------------------------------------------------------------------- claim

MIN_SAMPLES = 5
SMALLEST_TV_GAIN = 0.05


def spindle_statistic(
    strength: np.ndarray, weights: np.ndarray, *, template: str = DEFAULT_SPINDLE_TEMPLATE
) -> np.ndarray:
    """(replicates,) TV(measured, flat) − TV(measured, spindle) of the sample-weighted pooled
    order distribution: > 0 where the spindle (`theory.spindle_distribution` of `template`)
    fits better than a flat distribution over orders."""
    n = strength.shape[1]
    pooled = weights @ strength
    total = pooled.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, pooled / np.where(total > 0, total, 1.0), np.nan)
    flat = np.full(n, 1.0 / n)
    spindle = spindle_distribution(n, template)
    return 0.5 * np.abs(p - flat).sum(axis=1) - 0.5 * np.abs(p - spindle).sum(axis=1)


def spindle_claim(
    first: InteractionResults,
    *,
    ratio: float = DEFAULT_RATIO,
    n_boot: int = 1000,
    seed: int = 0,
    template: str = DEFAULT_SPINDLE_TEMPLATE,
) -> tuple:
    """Spindle at initialisation: how much closer (total variation) the measured order
    distribution of the training samples at the first checkpoint is to the spindle than to a
    flat distribution over orders; null value 0 (both fit equally), interval by bootstrap
    over samples.

    `template`: "binomial" (default; the seed's theorem, i.i.d. interactions: ∝ C(n,k)) or
    "iid_v" (the alternative for i.i.d. v: ∝ C(n,k)·2^{k/2}); the other template's effect is
    returned in `extra` ("effect_<template>") beside it.
    """
    from harsanyi.verdicts import GREATER, bootstrap_weights, claim

    if template not in SPINDLE_TEMPLATES:
        raise ValueError(f"spindle template must be one of {SPINDLE_TEMPLATES}, got {template!r}")
    train = results_split(first, "train", "first checkpoint")
    positive, negative = order_strength_per_sample(train.I_and, train.I_or, ratio=ratio)
    strength = positive - negative
    x = strength.shape[0]
    ones = np.ones((1, x))
    effect = float(spindle_statistic(strength, ones, template=template)[0])
    replicates = spindle_statistic(strength, bootstrap_weights(x, n_boot, seed), template=template)
    null = np.zeros(1)
    result = claim(
        effect,
        replicates,
        null=0.0,
        null_replicates=null,
        direction=GREATER,
        n=x,
        min_n=MIN_SAMPLES,
        smallest_effect=SMALLEST_TV_GAIN,
        units=x,
    )
    extra = {"replicates": replicates, "null_replicates": null, "template": template}
    for other in SPINDLE_TEMPLATES:
        if other != template:
            extra[f"effect_{other}"] = float(spindle_statistic(strength, ones, template=other)[0])
    return result, extra
