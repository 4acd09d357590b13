"""Generalisation: Jaccard similarity per order between the salient interactions of
training and test samples, per checkpoint (docs/interactions.md)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import (
    IDENTITY,
    ResultsLike,
    check_files,
    checkpoint_stages,
    identity,
    load,
    read_points,
    read_tsvs,
    results_split,
    uncertified,
)
from harsanyi.io import write_tsv
from harsanyi.masks import orders
from harsanyi.metrics import JACCARD_VARIANTS, jaccard_per_order, split_sign
from harsanyi.store import InteractionResults
from harsanyi.verdicts import INCONCLUSIVE, LESS, N_BOOT, NO, NOT_APPLICABLE, Claim, claim


def jaccard_table(
    items: Iterable[ResultsLike], *, variants: Sequence[str] = JACCARD_VARIANTS
) -> pd.DataFrame:
    """Jaccard similarity per order between the train and test samples of each checkpoint.

    `metrics.jaccard_per_order` (classes present in both splits, averaged over classes) for
    every variant.  Columns: run, arch, dataset, epoch, variant, order, similarity,
    n_classes, n_train, n_test, uncertified (samples without a certificate, kept).
    """
    unknown = [v for v in variants if v not in JACCARD_VARIANTS]
    if unknown:
        raise ValueError(f"variants {unknown} unknown; use {JACCARD_VARIANTS}")
    frames = []
    for item in items:
        results = load(item)
        where = os.fspath(item) if not isinstance(item, InteractionResults) else "results"
        train, test = results_split(results, "train", where), results_split(results, "test", where)
        for variant in variants:
            table = jaccard_per_order(
                train.I_and,
                train.I_or,
                train.labels,
                test.I_and,
                test.I_or,
                test.labels,
                variant=variant,
            ).reset_index()
            frames.append(
                table.assign(
                    **identity(results),
                    variant=variant,
                    n_train=train.n_samples,
                    n_test=test.n_samples,
                    uncertified=uncertified(train) + uncertified(test),
                )
            )
    if not frames:
        raise ValueError("no results files given")
    columns = [
        *IDENTITY,
        "variant",
        "order",
        "similarity",
        "n_classes",
        "n_train",
        "n_test",
        "uncertified",
    ]
    table = pd.concat(frames, ignore_index=True)[columns]
    return table.sort_values(["run", "epoch", "variant", "order"], ignore_index=True)


def run_step(*, interactions: Sequence[str | Path], table: str | Path) -> None:
    """Jaccard per order (both variants) of every checkpoint of a run → TSV."""
    write_tsv(jaccard_table(check_files(interactions, "interaction files")), table)


def study_step(
    *,
    tables: Sequence[str | Path],
    points: Sequence[str | Path],
    table: str | Path,
    figure: str | Path,
    variant: str = "average_then_split",
) -> None:
    """All runs' Jaccard tables in one TSV; figure of `variant` at the checkpoint stages."""
    from harsanyi.plots import jaccard_figure

    if variant not in JACCARD_VARIANTS:
        raise ValueError(f"analysis.jaccard_variant must be one of {JACCARD_VARIANTS}")
    joined = read_tsvs(check_files(tables, "Jaccard tables"))
    two_phase = read_points(check_files(points, "two-phase points"))
    stages = {
        run: checkpoint_stages(part.epoch, two_phase.get(run, {}).get("phase2_start"))
        for run, part in joined.groupby("run")
    }
    write_tsv(joined, table)
    jaccard_figure(joined, stages, figure, variant=variant)


# --------------------------------------------------------------------------- claim

MIN_SAMPLES = 10
MIN_PER_CLASS = 2
SMALLEST_SLOPE = 0.01


def stratified_weights(labels, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, samples) bootstrap counts that resample within each class (class sizes kept)."""
    labels = np.asarray(labels).ravel()
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, labels.size))
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        draws = members[rng.integers(0, members.size, size=(n_boot, members.size))]
        np.add.at(counts, (np.repeat(np.arange(n_boot), members.size), draws.ravel()), 1.0)
    return counts


def similarity_per_order(
    train: InteractionResults,
    test: InteractionResults,
    weights_train: np.ndarray,
    weights_test: np.ndarray,
    *,
    variant: str = "average_then_split",
) -> np.ndarray:
    """(replicates, n) Jaccard per order (`metrics.jaccard_per_order`, averaged over the
    classes of both sets) with samples weighted per replicate; nan where undefined."""
    n = train.n
    of_order = np.tile(orders(n), 2)
    columns = np.argsort(of_order[of_order > 0], kind="stable")
    keep = np.flatnonzero(of_order > 0)[columns]
    sorted_orders = of_order[keep]
    if variant == "split_then_average":
        sorted_orders = np.concatenate([sorted_orders, sorted_orders])
    classes = np.intersect1d(train.labels, test.labels)
    sims = []
    for c in classes:
        means = []
        for part, weights in ((train, weights_train), (test, weights_test)):
            vectors = np.concatenate([part.I_and, part.I_or], axis=1)[:, keep]
            if variant == "split_then_average":
                vectors = split_sign(vectors)
            w = weights * (np.asarray(part.labels) == c)[None, :]
            mean = (w @ vectors) / w.sum(axis=1, keepdims=True)
            means.append(mean)
        a, b = means
        if variant == "average_then_split":
            a, b = split_sign(a), split_sign(b)
            order_of = np.concatenate([sorted_orders, sorted_orders])
        else:
            order_of = sorted_orders
        low = np.zeros((a.shape[0], n))
        high = np.zeros((a.shape[0], n))
        for k in range(1, n + 1):
            column = order_of == k
            low[:, k - 1] = np.minimum(a[:, column], b[:, column]).sum(axis=1)
            high[:, k - 1] = np.maximum(a[:, column], b[:, column]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sims.append(np.where(high > 0, low / np.where(high > 0, high, 1.0), np.nan))
    with np.errstate(invalid="ignore"):
        return np.nanmean(np.stack(sims), axis=0) if sims else np.full((1, n), np.nan)


def slope(similarity: np.ndarray) -> np.ndarray:
    """(replicates,) least-squares slope of similarity against order, per replicate, over the
    orders with a defined similarity (nan with fewer than 3)."""
    s = np.atleast_2d(similarity)
    k = np.broadcast_to(np.arange(1, s.shape[1] + 1, dtype=float), s.shape)
    ok = np.isfinite(s)
    count = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        k_mean = np.where(ok, k, 0).sum(axis=1) / count
        s_mean = np.where(ok, s, 0).sum(axis=1) / count
        dk = np.where(ok, k - k_mean[:, None], 0)
        ds = np.where(ok, s - s_mean[:, None], 0)
        out = (dk * ds).sum(axis=1) / (dk**2).sum(axis=1)
    return np.where(count >= 3, out, np.nan)


def jaccard_claim(
    first: InteractionResults,
    last: InteractionResults,
    *,
    variant: str = "average_then_split",
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> tuple[Claim, dict]:
    """Jaccard falls with order: the slope of similarity per order at the last checkpoint,
    against the same slope at initialisation (`first`).

    Both with a bootstrap over the train and the test samples, resampled within class, the
    same resampling at both checkpoints.  "yes" needs the last checkpoint's interval below
    the initialisation's interval and below 0; "inconclusive" with fewer than
    `MIN_SAMPLES` samples in a split or `MIN_PER_CLASS` in a class.
    """
    train_last = results_split(last, "train", "last checkpoint")
    test_last = results_split(last, "test", "last checkpoint")
    train_first = results_split(first, "train", "first checkpoint")
    test_first = results_split(first, "test", "first checkpoint")
    for a, b in ((train_first, train_last), (test_first, test_last)):
        if not np.array_equal(np.sort(a.sample_ids), np.sort(b.sample_ids)):
            raise ValueError("the first and the last checkpoint explain other samples")
    w_train = stratified_weights(train_last.labels, n_boot, seed)
    w_test = stratified_weights(test_last.labels, n_boot, seed + 1)
    ones_train, ones_test = np.ones((1, train_last.n_samples)), np.ones((1, test_last.n_samples))

    def slopes(train, test, weights_train, weights_test):
        order_train = _align(train, train_last)
        order_test = _align(test, test_last)
        return slope(
            similarity_per_order(
                order_train, order_test, weights_train, weights_test, variant=variant
            )
        )

    effect = float(slopes(train_last, test_last, ones_train, ones_test)[0])
    replicates = slopes(train_last, test_last, w_train, w_test)
    null_point = float(slopes(train_first, test_first, ones_train, ones_test)[0])
    null = slopes(train_first, test_first, w_train, w_test)
    result = claim(
        effect,
        replicates,
        null=null_point,
        null_replicates=null,
        direction=LESS,
        n=min(train_last.n_samples, test_last.n_samples),
        min_n=MIN_SAMPLES,
        smallest_effect=SMALLEST_SLOPE,
        null_kind="interval",
        floor=0.0,
    )
    extra = {"replicates": replicates, "null_replicates": null}
    per_class = min(
        int(np.min(np.unique(part.labels, return_counts=True)[1]))
        for part in (train_last, test_last)
    )
    if per_class < MIN_PER_CLASS and result.verdict not in (NO, NOT_APPLICABLE):
        reason = f"{per_class} sample(s) in a class: resampling within class cannot vary"
        result = replace(result, verdict=INCONCLUSIVE, reason=reason)
    return result, extra


def _align(part: InteractionResults, reference: InteractionResults) -> InteractionResults:
    """`part` with its samples in the order of `reference`'s (by sample id)."""
    where = {int(s): i for i, s in enumerate(part.sample_ids)}
    rows = np.array([where[int(s)] for s in reference.sample_ids])
    return part._rows(rows)
