"""Generalisation: Jaccard similarity per order between the salient interactions of
training and test samples, per checkpoint (docs/interactions.md)."""

from __future__ import annotations

import os
import warnings
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
from harsanyi.verdicts import (
    GREATER,
    INCONCLUSIVE,
    N_BOOT,
    NO,
    Claim,
    bootstrap_weights,
    claim,
    not_applicable,
)


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
# Resampling units: samples within class where every class has this many in each split,
# else classes (the statistic is a mean over classes) where there are this many classes.
MIN_PER_CLASS = 10
MIN_CLASSES = 5
SMALLEST_DIFFERENCE = 0.05


def order_bands(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) orders of the Jaccard claim: low 1..⌊n/3⌋ (at least order 1), high
    ⌊n/3⌋+1..n−1.  Order n (one coalition, AND and OR) is left out: a tail of one value
    that would weigh as much as a whole order of C(n,k) coalitions."""
    if n < 3:
        raise ValueError(f"the Jaccard claim needs n >= 3 players, got {n}")
    cut = max(1, n // 3)
    return np.arange(1, cut + 1), np.arange(cut + 1, n)


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


def _order_columns(n: int, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """(columns of [I_and, I_or] kept (∅ out, sorted by order), order of each compared
    non-negative column after the sign split)."""
    of_order = np.tile(orders(n), 2)
    keep = np.flatnonzero(of_order > 0)
    keep = keep[np.argsort(of_order[keep], kind="stable")]
    sorted_orders = of_order[keep]
    return keep, np.concatenate([sorted_orders, sorted_orders])


def class_similarity(
    vectors: np.ndarray,
    labels: np.ndarray,
    weights_a: np.ndarray,
    weights_b: np.ndarray,
    classes: np.ndarray,
    n: int,
    *,
    variant: str = "average_then_split",
) -> np.ndarray:
    """(replicates, classes, n) Jaccard per order between the weighted means of set a and of
    set b within each class (`metrics.jaccard_per_order`, per class); nan where undefined.

    `vectors`: (samples, 2·2^n) [I_and, I_or] of all samples; `weights_a`, `weights_b`:
    (replicates, samples) weights of the samples in set a (train) and set b (test).  Set
    membership is in the weights, so a permutation of train and test is another pair of
    weight matrices through the same code.
    """
    keep, order_of = _order_columns(n, variant)
    vectors = vectors[:, keep]
    if variant == "split_then_average":
        vectors = split_sign(vectors)
    out = np.full((weights_a.shape[0], len(classes), n), np.nan)
    for ci, c in enumerate(classes):
        members = np.flatnonzero(labels == c)
        rows = vectors[members]
        means = []
        for weights in (weights_a, weights_b):
            w = weights[:, members]
            total = w.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                means.append((w @ rows) / total)
        a, b = means
        if variant == "average_then_split":
            a, b = split_sign(a), split_sign(b)
        for k in range(1, n + 1):
            column = order_of == k
            low = np.minimum(a[:, column], b[:, column]).sum(axis=1)
            high = np.maximum(a[:, column], b[:, column]).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, ci, k - 1] = np.where(high > 0, low / np.where(high > 0, high, 1.0), np.nan)
    return out


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
    vectors, labels, w_a, w_b = _stacked(train, test, weights_train, weights_test)
    classes = np.intersect1d(train.labels, test.labels)
    sims = class_similarity(vectors, labels, w_a, w_b, classes, train.n, variant=variant)
    with np.errstate(invalid="ignore"):
        return np.nanmean(sims, axis=1) if classes.size else np.full((1, train.n), np.nan)


def _stacked(train, test, weights_train, weights_test):
    """All samples of both sets in one array, with each set's weights over all of them."""
    vectors = np.concatenate(
        [np.concatenate([part.I_and, part.I_or], axis=1) for part in (train, test)]
    )
    labels = np.concatenate([np.asarray(train.labels), np.asarray(test.labels)])
    a, b = np.atleast_2d(weights_train), np.atleast_2d(weights_test)
    w_a = np.concatenate([a, np.zeros((a.shape[0], test.n_samples))], axis=1)
    w_b = np.concatenate([np.zeros((b.shape[0], train.n_samples)), b], axis=1)
    return vectors, labels, w_a, w_b


def band_difference(similarity: np.ndarray, n: int) -> np.ndarray:
    """(…) mean Jaccard over the low orders minus mean over the high orders (`order_bands`)
    of similarity (…, n); nan where either band has no defined order."""
    low, high = order_bands(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-nan band gives nan
        return np.nanmean(similarity[..., low - 1], axis=-1) - np.nanmean(
            similarity[..., high - 1], axis=-1
        )


def within_class_permutations(labels, is_a, classes, draws: int, seed: int) -> np.ndarray:
    """(draws, samples) 0/1 membership of set a after shuffling set a and set b within each
    class of `classes` (set sizes per class kept); samples of other classes stay out (0)."""
    labels, is_a = np.asarray(labels), np.asarray(is_a, dtype=bool)
    rng = np.random.default_rng(seed)
    out = np.zeros((draws, labels.size))
    for c in classes:
        members = np.flatnonzero(labels == c)
        size = int(is_a[members].sum())
        order = np.argsort(rng.random((draws, members.size)), axis=1)
        chosen = members[order[:, :size]]
        np.put_along_axis(out, chosen, 1.0, axis=1)
    return out


def jaccard_claim(
    first: InteractionResults,
    last: InteractionResults,
    *,
    variant: str = "average_then_split",
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> tuple[Claim, dict]:
    """Jaccard falls with order: at the last checkpoint, the mean Jaccard similarity (train vs
    test, within class) over the low orders minus that over the high orders
    (`order_bands`), averaged over the classes present in both splits.

    Interval: bootstrap over samples within class where every class has `MIN_PER_CLASS`
    samples in each split, else over classes (the per-class differences are independent
    units), expanded for the number of units.  Null: the same statistic, same code, with the
    train and test samples of each class shuffled (class sizes per split kept), `n_boot`
    permutations; the bound is its 95th percentile, and at least 0.  The statistic at the
    first checkpoint (untrained) is given beside it (`extra`), not as the null.
    """
    train_last = results_split(last, "train", "last checkpoint")
    test_last = results_split(last, "test", "last checkpoint")
    train_first = results_split(first, "train", "first checkpoint")
    test_first = results_split(first, "test", "first checkpoint")
    for a, b in ((train_first, train_last), (test_first, test_last)):
        if not np.array_equal(np.sort(a.sample_ids), np.sort(b.sample_ids)):
            raise ValueError("the first and the last checkpoint explain other samples")
    n = last.n
    if n < 3:
        return not_applicable(f"n = {n} players: no high orders to compare", direction=GREATER), {}
    n_samples = min(train_last.n_samples, test_last.n_samples)
    classes = np.intersect1d(train_last.labels, test_last.labels)

    def per_class(train, test, w_train, w_test):
        vectors, labels, w_a, w_b = _stacked(train, test, w_train, w_test)
        sims = class_similarity(vectors, labels, w_a, w_b, classes, n, variant=variant)
        return band_difference(sims, n)  # (replicates, classes)

    ones_train, ones_test = np.ones((1, train_last.n_samples)), np.ones((1, test_last.n_samples))
    d_classes = per_class(train_last, test_last, ones_train, ones_test)[0]
    defined = np.isfinite(d_classes)
    if not defined.any():
        return not_applicable("no class with both order bands defined", direction=GREATER), {}
    effect = float(d_classes[defined].mean())
    sizes = [
        np.unique(part.labels, return_counts=True)[1].min() for part in (train_last, test_last)
    ]
    if min(sizes) >= MIN_PER_CLASS:
        resampled, units = "samples within class", int(min(sizes))
        w_train = stratified_weights(train_last.labels, n_boot, seed)
        w_test = stratified_weights(test_last.labels, n_boot, seed + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            resampled_classes = per_class(train_last, test_last, w_train, w_test)[:, defined]
            replicates = np.nanmean(resampled_classes, axis=1)
    else:
        resampled, units = "classes", int(defined.sum())
        picks = bootstrap_weights(units, n_boot, seed)
        replicates = picks @ d_classes[defined] / units
    # Null: train and test shuffled within class, the same statistic over the same classes.
    vectors, labels, is_train, _ = _stacked(train_last, test_last, ones_train, ones_test)
    w_a = within_class_permutations(labels, is_train[0] > 0, classes, n_boot, seed + 2)
    in_classes = np.isin(labels, classes)[None, :]
    w_b = np.where(in_classes, 1.0 - w_a, 0.0)
    sims = class_similarity(vectors, labels, w_a, w_b, classes, n, variant=variant)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        null = np.nanmean(band_difference(sims, n)[:, defined], axis=1)
    result = claim(
        effect,
        replicates,
        null=float(np.nanmedian(null)),
        null_replicates=null,
        direction=GREATER,
        n=n_samples,
        min_n=MIN_SAMPLES,
        smallest_effect=SMALLEST_DIFFERENCE,
        floor=0.0,
        units=units,
    )
    at_init = per_class(
        _align(train_first, train_last), _align(test_first, test_last), ones_train, ones_test
    )[0]
    low, high = order_bands(n)
    extra = {
        "replicates": replicates,
        "null_replicates": null,
        "resampled": resampled,
        "units": units,
        "bands": f"orders {low[0]}–{low[-1]} vs {high[0]}–{high[-1]}",
        "effect_at_init": float(np.nanmean(at_init)) if np.isfinite(at_init).any() else np.nan,
    }
    if resampled == "classes" and units < MIN_CLASSES and result.verdict not in (NO,):
        reason = (
            f"{units} class(es) with < {MIN_PER_CLASS} samples per split: too few units to resample"
        )
        result = replace(result, verdict=INCONCLUSIVE, reason=reason)
    return result, extra


def _align(part: InteractionResults, reference: InteractionResults) -> InteractionResults:
    """`part` with its samples in the order of `reference`'s (by sample id)."""
    where = {int(s): i for i, s in enumerate(part.sample_ids)}
    rows = np.array([where[int(s)] for s in reference.sample_ids])
    return part._rows(rows)
