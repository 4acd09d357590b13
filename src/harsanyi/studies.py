"""The study analyses: generalisation, label noise, cross-model similarity, theory, Shapley
values and a scorecard of the published claims.

Each analysis has pure functions from results files (or `InteractionResults`) to tidy
tables, one row per run × checkpoint × order × …, and step functions `<name>_step` that read
files and write the tables (TSV) and figures (PNG + PDF) atomically; the workflow's scripts
only call the steps.  Definitions: docs/interactions.md.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.masks import coalition_matrix, orders
from harsanyi.metrics import (
    DEFAULT_COVERAGE_TAUS,
    DEFAULT_TOPK_RATIOS,
    JACCARD_VARIANTS,
    bootstrap_ci,
    coverage_sweep,
    jaccard_per_order,
    topk_overlap_sweep,
)
from harsanyi.stats import (
    DEFAULT_RATIO,
    mean_order,
    order_distribution,
    order_strength_per_sample,
    salient_masks,
    shapley_from_and,
)
from harsanyi.store import InteractionResults, read_results

ResultsLike = str | os.PathLike | InteractionResults
IDENTITY = ["run", "arch", "dataset", "epoch"]
STAGES = ("init", "early", "phase-2 start", "final")

# --------------------------------------------------------------------------- loading


def load(item: ResultsLike) -> InteractionResults:
    """`item` itself, or the results file it names; meta["model"] must identify the model."""
    results = item if isinstance(item, InteractionResults) else read_results(item)
    model = results.meta.get("model") or {}
    missing = [key for key in IDENTITY if key not in model]
    if missing:
        where = "results" if isinstance(item, InteractionResults) else os.fspath(item)
        raise ValueError(f"{where}: meta['model'] lacks {missing}; needs {IDENTITY}")
    return results


def identity(results: InteractionResults) -> dict:
    """run, arch, dataset and epoch of the checkpoint behind `results`."""
    model = results.meta["model"]
    return {
        "run": str(model["run"]),
        "arch": str(model["arch"]),
        "dataset": str(model["dataset"]),
        "epoch": int(model["epoch"]),
    }


def _split(results: InteractionResults, split: str, where: str) -> InteractionResults:
    part = results.subset(split)
    if part.n_samples == 0:
        raise ValueError(f"{where}: no {split!r} samples in the results of {identity(results)}")
    return part


def _by_run(items: Iterable[ResultsLike]) -> dict[str, dict[int, InteractionResults]]:
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


def short_name(run: str) -> str:
    """The run label without its settings hash: "digits-lenet-s0-noise0.15"."""
    head, _, tail = run.rpartition("-")
    return head if head and len(tail) == 12 else run


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


# --------------------------------------------------------------------------- 1. Jaccard


def jaccard_table(
    items: Iterable[ResultsLike], *, variants: Sequence[str] = JACCARD_VARIANTS
) -> pd.DataFrame:
    """Jaccard similarity per order between the train and test samples of each checkpoint.

    `metrics.jaccard_per_order` (classes present in both splits, averaged over classes) for
    every variant.  Columns: run, arch, dataset, epoch, variant, order, similarity,
    n_classes, n_train, n_test.
    """
    unknown = [v for v in variants if v not in JACCARD_VARIANTS]
    if unknown:
        raise ValueError(f"variants {unknown} unknown; use {JACCARD_VARIANTS}")
    frames = []
    for item in items:
        results = load(item)
        where = os.fspath(item) if not isinstance(item, InteractionResults) else "results"
        train, test = _split(results, "train", where), _split(results, "test", where)
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
                )
            )
    if not frames:
        raise ValueError("no results files given")
    columns = [*IDENTITY, "variant", "order", "similarity", "n_classes", "n_train", "n_test"]
    table = pd.concat(frames, ignore_index=True)[columns]
    return table.sort_values(["run", "epoch", "variant", "order"], ignore_index=True)


# --------------------------------------------------------------------------- 2. label noise


def high_order_start(n: int) -> int:
    """First order counted as high: orders k > n/2, i.e. k ≥ ⌊n/2⌋ + 1."""
    return n // 2 + 1


def difference_ci(
    a, b, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean(a) − mean(b), low, high): percentile bootstrap, each group resampled on its own."""
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError(f"difference_ci needs values in both groups, got {x.size} and {y.size}")
    if not 0 < level < 1 or n_boot < 1:
        raise ValueError(f"need 0 < level < 1 and n_boot >= 1, got {level!r}, {n_boot!r}")
    rng = np.random.default_rng(seed)
    boot_x = x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
    boot_y = y[rng.integers(0, y.size, (n_boot, y.size))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(boot_x - boot_y, [tail, 1 - tail])
    return float(x.mean() - y.mean()), float(low), float(high)


def _per_sample_orders(strength: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample normalised strength, mean order and high-order share (usable rows only)."""
    total = strength.sum(axis=1)
    usable = total > 0
    share = strength[usable] / total[usable, None]
    n = strength.shape[1]
    mean_orders = share @ np.arange(1, n + 1)
    high = share[:, high_order_start(n) - 1 :].sum(axis=1)
    return share, mean_orders, high


OOD_GROUPS = {"normal": "train", "flipped": "flipped"}


def ood_tables(
    items: Iterable[ResultsLike],
    *,
    ratio: float = DEFAULT_RATIO,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Salient strength per order of flipped-label (OOD) vs normal training samples.

    Per sample x and order k, s_x(k) = I⁺ − I⁻ = Σ_op Σ_{S salient, |S|=k} |I_op(S|x)|
    (`stats.order_strength_per_sample`); its per-sample normalised form is
    p_x(k) = s_x(k) / Σ_k' s_x(k') (samples without salient strength are dropped there).

    Returns (strength, summary).  strength: one row per checkpoint × group (normal = the
    correctly labelled training samples, flipped) × order with `strength` = mean s_x(k) and
    `share` = mean p_x(k), each with its `metrics.bootstrap_ci` interval (`*_low`, `*_high`),
    and `distribution` = the group's `stats.order_distribution`.  summary: one row per
    checkpoint with, per group, the mean order of `distribution` and the high-order share
    h = mean_x Σ_{k > n/2} p_x(k); `high_share_diff` = h_flipped − h_normal and
    `mean_order_diff` (difference of the per-sample mean orders Σ_k k·p_x(k)), both with a
    two-group bootstrap interval (`difference_ci`), and the verdict: "yes" iff the interval
    of `high_share_diff` lies above 0, "no" otherwise, "n/a" if a group has no usable sample.
    """
    strength_rows, summary_rows = [], []
    for item in items:
        results = load(item)
        where = os.fspath(item) if not isinstance(item, InteractionResults) else "results"
        info, n = identity(results), results.n
        groups = {name: _split(results, split, where) for name, split in OOD_GROUPS.items()}
        per_group = {}
        for group, part in groups.items():
            positive, negative = order_strength_per_sample(part.I_and, part.I_or, ratio=ratio)
            strength = positive - negative
            share, orders_x, high = _per_sample_orders(strength)
            distribution = order_distribution(part.I_and, part.I_or, ratio=ratio)
            per_group[group] = (share, orders_x, high, distribution)
            for k in range(1, n + 1):
                s_mean, s_low, s_high = bootstrap_ci(strength[:, k - 1], n_boot=n_boot, seed=seed)
                if share.shape[0]:
                    p_mean, p_low, p_high = bootstrap_ci(share[:, k - 1], n_boot=n_boot, seed=seed)
                else:
                    p_mean = p_low = p_high = np.nan
                strength_rows.append(
                    {
                        **info,
                        "group": group,
                        "order": k,
                        "strength": s_mean,
                        "strength_low": s_low,
                        "strength_high": s_high,
                        "share": p_mean,
                        "share_low": p_low,
                        "share_high": p_high,
                        "distribution": distribution[k - 1],
                        "samples": part.n_samples,
                    }
                )
        summary_rows.append(_ood_summary(info, n, per_group, n_boot, level, seed))
    if not summary_rows:
        raise ValueError("no results files given")
    strength = pd.DataFrame(strength_rows).sort_values(
        ["run", "epoch", "group", "order"], ignore_index=True
    )
    summary = pd.DataFrame(summary_rows).sort_values(["run", "epoch"], ignore_index=True)
    return strength, summary


def _ood_summary(info: dict, n: int, per_group: dict, n_boot: int, level: float, seed: int):
    row = {**info, "n": n, "high_from_order": high_order_start(n)}
    for group, (_, _, high, distribution) in per_group.items():
        usable = np.nansum(distribution) > 0
        row[f"mean_order_{group}"] = mean_order(distribution) if usable else np.nan
        row[f"high_share_{group}"] = float(high.mean()) if high.size else np.nan
        row[f"samples_{group}"] = int(high.size)
    (_, orders_f, high_f, _), (_, orders_n, high_n, _) = per_group["flipped"], per_group["normal"]
    if high_f.size and high_n.size:
        kwargs = {"n_boot": n_boot, "level": level, "seed": seed}
        diff, low, high = difference_ci(high_f, high_n, **kwargs)
        order_diff, order_low, order_high = difference_ci(orders_f, orders_n, **kwargs)
        verdict = "yes" if low > 0 else "no"
    else:
        diff = low = high = order_diff = order_low = order_high = np.nan
        verdict = "n/a"
    row.update(
        high_share_diff=diff,
        high_share_diff_low=low,
        high_share_diff_high=high,
        mean_order_diff=order_diff,
        mean_order_diff_low=order_low,
        mean_order_diff_high=order_high,
        verdict=verdict,
    )
    return row


def ood_verdict(summary: pd.DataFrame, run: str | None = None) -> dict:
    """The verdict of a run at its last checkpoint, with a one-line `text`."""
    rows = summary if run is None else summary[summary.run == run]
    if rows.empty or rows.run.nunique() != 1:
        raise ValueError(f"need the summary of exactly one run, got runs {sorted(set(rows.run))}")
    last = rows.sort_values("epoch").iloc[-1].to_dict()
    last["text"] = (
        f"epoch {last['epoch']}: mean order flipped {last['mean_order_flipped']:.2f} vs normal "
        f"{last['mean_order_normal']:.2f}; high-order share (k ≥ {last['high_from_order']}) "
        f"{last['high_share_flipped']:.3f} vs {last['high_share_normal']:.3f}, difference "
        f"{last['high_share_diff']:.3f} [{last['high_share_diff_low']:.3f}, "
        f"{last['high_share_diff_high']:.3f}]: {last['verdict']}"
    )
    return {key: _plain(value) for key, value in last.items()}


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- 3. similarity


def _stage_epoch(epochs: Sequence[int], stage: str | int, run: str) -> int:
    if stage == "init":
        return epochs[0]
    if stage == "final":
        return epochs[-1]
    if isinstance(stage, str) and not stage.isdigit():
        raise ValueError(f"stage must be 'init', 'final' or an epoch, got {stage!r}")
    if int(stage) not in epochs:
        raise ValueError(f"run {run} has no checkpoint at epoch {stage}; it has {list(epochs)}")
    return int(stage)


def shared_rows(a: InteractionResults, b: InteractionResults) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a and of b holding the same train/test samples, matched by (split, sample_id)."""

    def keys(results: InteractionResults) -> dict[tuple[str, int], int]:
        splits = np.asarray(results.split).astype(str)
        return {
            (s, int(i)): row
            for row, (s, i) in enumerate(zip(splits, results.sample_ids, strict=True))
            if s in ("train", "test")
        }

    key_a, key_b = keys(a), keys(b)
    common = [key for key in key_a if key in key_b]
    if not common:
        raise ValueError(
            f"runs {identity(a)['run']} and {identity(b)['run']} share no train/test sample"
        )
    return np.array([key_a[k] for k in common]), np.array([key_b[k] for k in common])


def comparable_pairs(
    runs: Mapping[str, InteractionResults], label_noise: Mapping[str, float] | None = None
) -> list[tuple[str, str]]:
    """Ordered pairs (a, b), a = b included, of runs on the same dataset with the same noise.

    Without `label_noise` (run → noise level) runs count as having the same noise when both
    or neither hold flipped samples.
    """

    def noise(run: str) -> float | bool:
        if label_noise is None:
            return bool((np.asarray(runs[run].split).astype(str) == "flipped").any())
        if run not in label_noise:
            raise ValueError(f"label_noise names no level for run {run}")
        return float(label_noise[run])

    names = sorted(runs)
    return [
        (a, b)
        for a in names
        for b in names
        if identity(runs[a])["dataset"] == identity(runs[b])["dataset"] and noise(a) == noise(b)
    ]


def similarity_tables(
    items: Iterable[ResultsLike],
    *,
    stages: Sequence[str | int] = ("init", "final"),
    label_noise: Mapping[str, float] | None = None,
    taus=DEFAULT_COVERAGE_TAUS,
    tau2: float = 0.05,
    order_tau: float = 0.05,
    ratios=DEFAULT_TOPK_RATIOS,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Coverage and top-K overlap of salient interactions between every comparable pair.

    Pairs: `comparable_pairs` (same dataset and label noise; other arch or seed; a run with
    itself gives the diagonal).  A stage is "init" / "final" (each run's first / last given
    checkpoint) or an epoch.  Samples: the train and test samples both runs explain,
    matched by (split, sample_id).  Returns three tables, means over samples:
    - "coverage": `metrics.coverage_sweep` per pair × stage × τ₁ (coverage of run a's salient
      set at ratio τ₁ by run b's at `tau2`) with its random baselines and `ratio` =
      coverage / random_expected;
    - "orders": coverage restricted to order k, Ω₁ at `order_tau`, Ω₂ at `tau2`, per k, with
      random_expected = |Ω₂,k| / (2·C(n,k));
    - "topk": `metrics.topk_overlap_sweep` per pair × stage × op × r.
    The joint extraction with a shared p (docs/interactions.md, optional) is not done.
    """
    runs = _by_run(items)
    for stage in stages:
        for run, epochs in runs.items():
            _stage_epoch(list(epochs), stage, run)
    coverage_frames, order_rows, topk_frames = [], [], []
    for stage in stages:
        at = {run: epochs[_stage_epoch(list(epochs), stage, run)] for run, epochs in runs.items()}
        for a, b in comparable_pairs(at, label_noise):
            first, second = at[a], at[b]
            rows_a, rows_b = shared_rows(first, second)
            ia, oa = first.I_and[rows_a], first.I_or[rows_a]
            ib, ob = second.I_and[rows_b], second.I_or[rows_b]
            pair = {
                "dataset": identity(first)["dataset"],
                "stage": str(stage),
                "run_a": a,
                "run_b": b,
                "arch_a": identity(first)["arch"],
                "arch_b": identity(second)["arch"],
                "epoch_a": identity(first)["epoch"],
                "epoch_b": identity(second)["epoch"],
                "samples": len(rows_a),
            }
            sweep = coverage_sweep(ia, oa, ib, ob, taus=taus, tau2=tau2, seed=seed)
            mean = sweep.groupby("tau1", as_index=False)[
                ["size1", "size2", "coverage", "random_expected", "random_empirical"]
            ].mean()
            mean["ratio"] = mean.coverage / mean.random_expected
            coverage_frames.append(mean.assign(**pair))
            order_rows += _order_coverage(ia, oa, ib, ob, order_tau, tau2, pair)
            topk = topk_overlap_sweep(ia, oa, ib, ob, ratios=ratios, seed=seed)
            mean = topk.groupby(["op", "r", "k"], as_index=False)[
                ["overlap", "random_expected", "random_empirical"]
            ].mean()
            topk_frames.append(mean.assign(**pair))
    pair_columns = ["dataset", "stage", "run_a", "run_b", "arch_a", "arch_b", "epoch_a"]
    pair_columns += ["epoch_b", "samples"]
    coverage = pd.concat(coverage_frames, ignore_index=True)
    coverage = coverage[pair_columns + [c for c in coverage if c not in pair_columns]]
    topk = pd.concat(topk_frames, ignore_index=True)
    topk = topk[pair_columns + [c for c in topk if c not in pair_columns]]
    return {"coverage": coverage, "orders": pd.DataFrame(order_rows), "topk": topk}


def _order_coverage(ia, oa, ib, ob, tau1: float, tau2: float, pair: dict) -> list[dict]:
    """Coverage of a's salient order-k sets by b's, mean over samples with a non-empty Ω₁,k."""
    n = int(round(math.log2(ia.shape[1])))
    omega1 = np.concatenate(salient_masks(ia, oa, ratio=tau1), axis=1)
    omega2 = np.concatenate(salient_masks(ib, ob, ratio=tau2), axis=1)
    of_order = np.tile(orders(n), 2)
    rows = []
    for k in range(1, n + 1):
        column = of_order == k
        s1, s2 = omega1[:, column], omega2[:, column]
        size1, size2 = s1.sum(axis=1), s2.sum(axis=1)
        kept = size1 > 0
        rows.append(
            {
                **pair,
                "order": k,
                "samples_with_salient": int(kept.sum()),
                "size1": float(size1.mean()),
                "size2": float(size2.mean()),
                "coverage": float(((s1 & s2).sum(axis=1)[kept] / size1[kept]).mean())
                if kept.any()
                else np.nan,
                "random_expected": float((size2[kept] / column.sum()).mean())
                if kept.any()
                else np.nan,
            }
        )
    return rows


def coverage_matrix(coverage: pd.DataFrame, stage: str, tau1: float = 0.05) -> pd.DataFrame:
    """Run × run mean coverage at one stage and τ₁ (nan where the runs are not comparable)."""
    rows = coverage[(coverage.stage == str(stage)) & np.isclose(coverage.tau1, tau1)]
    if rows.empty:
        raise ValueError(f"no coverage rows at stage {stage!r} and tau1 {tau1}")
    names = sorted(set(rows.run_a) | set(rows.run_b))
    matrix = rows.pivot_table(index="run_a", columns="run_b", values="coverage")
    return matrix.reindex(index=names, columns=names)


# --------------------------------------------------------------------------- 4. theory


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
    the measured distribution) and both mean orders.
    """
    from harsanyi.theory import (
        MAX_THEORY_PLAYERS,
        fit_sigma2,
        predicted_distribution,
        spindle_distribution,
    )

    runs = _by_run(items)
    for run, epochs in runs.items():
        n = next(iter(epochs.values())).n
        if n > MAX_THEORY_PLAYERS:
            raise ValueError(f"run {run}: n = {n} players; the theory needs n <= 12")
    order_rows, fit_rows = [], []
    for run, epochs in runs.items():
        last = _split(epochs[max(epochs)], "train", f"run {run}")
        w_star = theory_w_star(last.I_and, last.I_or, ratio=ratio)
        theory_usable = bool(np.any(w_star != 0))
        for results in epochs.values():
            info, n = identity(results), results.n
            train = _split(results, "train", f"run {run}")
            measured = order_distribution(train.I_and, train.I_or, ratio=ratio)
            spindle = spindle_distribution(n)
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
    from harsanyi.theory import low_high_ratio, phase2_solution

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


# --------------------------------------------------------------------------- 5. Shapley


def shapley_matrix(n: int) -> np.ndarray:
    """(2^n, n) weights W with φ = v @ W the exact Shapley values of a game v on 2^n masks.

    φ_i = Σ_{S ⊆ N∖i} |S|!(n−|S|−1)!/n! · (v(S ∪ i) − v(S)), so v(T) enters φ_i with weight
    w(|T|−1) when i ∈ T and −w(|T|) when i ∉ T, w(s) = s!(n−s−1)!/n!.
    """
    member = coalition_matrix(n).numpy()
    size = orders(n)
    weight = np.array(
        [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
        + [0.0]
    )
    with_i = weight[np.clip(size - 1, 0, n)][:, None]
    without_i = weight[size][:, None]
    return np.where(member, with_i, -without_i)


def exact_shapley(v) -> np.ndarray:
    """Shapley values (samples, n) of games v (samples, 2^n) by the weighted subset formula."""
    values = np.atleast_2d(np.asarray(v, dtype=np.float64))
    n = int(round(math.log2(values.shape[1])))
    if 2**n != values.shape[1]:
        raise ValueError(f"v must have 2^n values per sample, got {values.shape[1]}")
    return values @ shapley_matrix(n)


def shapley_table(item: ResultsLike) -> pd.DataFrame:
    """Shapley values of every sample and player: from the interactions and exactly from v.

    phi_interactions = `stats.shapley_from_and(I_and, I_or)`; phi_exact = `exact_shapley` of
    v + q, the game the AND-OR decomposition reproduces exactly (v_and + v_or = v + q with
    the sparsifier's bounded noise q); phi_v = `exact_shapley(v)`, which differs from
    phi_exact by the Shapley values of q.
    """
    results = load(item)
    from_interactions = shapley_from_and(results.I_and, results.I_or)
    exact = exact_shapley(np.asarray(results.v) + np.asarray(results.q))
    of_v = exact_shapley(results.v)
    samples, n = from_interactions.shape
    return pd.DataFrame(
        {
            **identity(results),
            "split": np.repeat(np.asarray(results.split).astype(str), n),
            "sample_id": np.repeat(np.asarray(results.sample_ids), n),
            "player": np.tile(np.arange(n), samples),
            "phi_interactions": from_interactions.ravel(),
            "phi_exact": exact.ravel(),
            "phi_v": of_v.ravel(),
        }
    )


SHAPLEY_TOLERANCE = 1e-8


def shapley_check(table: pd.DataFrame, *, tolerance: float = SHAPLEY_TOLERANCE) -> dict:
    """Max |φ_interactions − φ_exact| (passes if ≤ tolerance·max(1, max|φ|)) and vs φ_v."""
    if table.empty:
        raise ValueError("empty Shapley table")
    scale = max(1.0, float(table.phi_exact.abs().max()))
    max_diff = float((table.phi_interactions - table.phi_exact).abs().max())
    return {
        "run": str(table.run.iloc[0]),
        "epoch": int(table.epoch.iloc[0]),
        "samples": int(table.sample_id.size // (table.player.max() + 1)),
        "max_abs_phi": float(table.phi_exact.abs().max()),
        "max_abs_diff": max_diff,
        "max_abs_diff_v": float((table.phi_interactions - table.phi_v).abs().max()),
        "tolerance": tolerance * scale,
        "passed": bool(max_diff <= tolerance * scale),
    }


# --------------------------------------------------------------------------- 6. scorecard

CLAIMS = {
    "spindle_at_init": "spindle at initialisation",
    "phase1_drop": "phase 1 removes middle and high orders",
    "phase2_rise": "phase 2 raises the order",
    "phase2_near_gap": "phase-2 start near loss-gap onset",
    "jaccard_falls": "Jaccard similarity falls with order",
    "ood_high_order": "OOD samples carry more high-order strength",
    "shared_interactions": "models share salient interactions",
}
MAX_CHECKPOINT_DISTANCE = 2
COVERAGE_FACTOR = 2.0


def _row(run: str, claim: str, measured: str, verdict: str) -> dict:
    return {
        "run": run,
        "claim": CLAIMS[claim],
        "key": claim,
        "measured": measured,
        "verdict": verdict,
    }


def _yes(condition: bool) -> str:
    return "yes" if condition else "no"


def scorecard(
    points: Mapping[str, dict],
    strength: pd.DataFrame,
    jaccard: pd.DataFrame,
    theory_fit: pd.DataFrame,
    ood: pd.DataFrame | None = None,
    coverage: pd.DataFrame | None = None,
    *,
    variant: str = "average_then_split",
    max_checkpoint_distance: int = MAX_CHECKPOINT_DISTANCE,
    coverage_factor: float = COVERAGE_FACTOR,
    tau1: float = 0.05,
) -> pd.DataFrame:
    """One row per run × claim: run, claim, key, measured (numbers as text), verdict.

    Claims and their tests (n/a where the data cannot say):
    - spindle at init: the measured distribution (training samples) at the first checkpoint
      peaks at a middle order (`middle_orders`); measured: the peak and the total variation
      distance to `theory.spindle_distribution`.
    - phase 1: mean order at the phase-2 start < mean order at the first checkpoint.
    - phase 2: mean order at the last checkpoint > at the phase-2 start.
    - near the gap onset: |checkpoints between phase-2 start and loss-gap onset| ≤
      `max_checkpoint_distance` (n/a without an onset).
    - Jaccard: Spearman ρ of similarity (`variant`) vs order at the last checkpoint < 0
      (orders with a defined similarity; n/a with fewer than 3).
    - OOD: the verdict of `ood_tables` at the last checkpoint (n/a for runs without noise).
    - shared: coverage / random expectation at τ₁ = `tau1`, stage "final", averaged over
      the run's comparable partners (as run a) ≥ `coverage_factor` (n/a without partners).
    `points`: run → its two_phase.json; `strength`: the order_strength tables (for the
    checkpoint list); `ood`: the per-run verdicts (`ood_verdict`) as a table.
    """
    from scipy.stats import spearmanr

    rows = []
    for run in sorted(points):
        point = points[run]
        fit = theory_fit[theory_fit.run == run].sort_values("epoch")
        if fit.empty:
            rows.append(_row(run, "spindle_at_init", "no theory table", "n/a"))
        else:
            first = fit.iloc[0]
            low, high = middle_orders(int(first.n))
            if np.isfinite(first.peak_order):
                rows.append(
                    _row(
                        run,
                        "spindle_at_init",
                        f"epoch {int(first.epoch)}: peak order {int(first.peak_order)} "
                        f"(middle {low}-{high}), TV distance to spindle {first.spindle_tv:.3f}",
                        _yes(low <= first.peak_order <= high),
                    )
                )
            else:
                rows.append(_row(run, "spindle_at_init", "no salient strength", "n/a"))
        init, low_point, final = (
            point[k] for k in ("mean_order_init", "mean_order_min", "mean_order_final")
        )
        start, onset = point.get("phase2_start"), point.get("gap_onset")
        rows.append(
            _row(
                run,
                "phase1_drop",
                f"mean order {init:.2f} at init → {low_point:.2f} at phase-2 start (epoch {start})",
                _yes(low_point < init),
            )
        )
        rows.append(
            _row(
                run,
                "phase2_rise",
                f"mean order {low_point:.2f} at phase-2 start → {final:.2f} at the end",
                _yes(final > low_point),
            )
        )
        epochs = sorted(strength[strength.run == run].epoch.unique().tolist())
        if onset is None or start not in epochs or onset not in epochs:
            rows.append(
                _row(
                    run,
                    "phase2_near_gap",
                    f"phase-2 start epoch {start}, no loss-gap onset found",
                    "n/a",
                )
            )
        else:
            distance = epochs.index(onset) - epochs.index(start)
            rows.append(
                _row(
                    run,
                    "phase2_near_gap",
                    f"phase-2 start epoch {start}, gap onset epoch {onset}: {distance:+d} "
                    f"checkpoints (allowed ±{max_checkpoint_distance})",
                    _yes(abs(distance) <= max_checkpoint_distance),
                )
            )
        rows.append(_jaccard_row(run, jaccard, variant, spearmanr))
        rows.append(_ood_row(run, ood))
        rows.append(_shared_row(run, coverage, tau1, coverage_factor))
    return pd.DataFrame(rows, columns=["run", "claim", "key", "measured", "verdict"])


def _jaccard_row(run: str, jaccard: pd.DataFrame, variant: str, spearmanr) -> dict:
    rows = jaccard[(jaccard.run == run) & (jaccard.variant == variant)]
    if rows.empty:
        return _row(run, "jaccard_falls", f"no Jaccard table ({variant})", "n/a")
    last = rows[rows.epoch == rows.epoch.max()].dropna(subset=["similarity"])
    if len(last) < 3:
        return _row(run, "jaccard_falls", f"{len(last)} orders with a similarity", "n/a")
    rho = float(spearmanr(last.order, last.similarity).statistic)
    first = last.sort_values("order").iloc[0]
    text = (
        f"epoch {int(last.epoch.iloc[0])}: Spearman ρ = {rho:.2f}; "
        f"order {int(first.order)}: {first.similarity:.2f}"
    )
    return _row(run, "jaccard_falls", text, _yes(rho < 0) if np.isfinite(rho) else "n/a")


def _ood_row(run: str, ood: pd.DataFrame | None) -> dict:
    rows = None if ood is None or ood.empty else ood[ood.run == run]
    if rows is None or rows.empty:
        return _row(run, "ood_high_order", "no flipped samples (clean run)", "n/a")
    last = rows.sort_values("epoch").iloc[-1]
    text = (
        f"mean order {last.mean_order_flipped:.2f} vs {last.mean_order_normal:.2f}; high-order "
        f"share difference {last.high_share_diff:.3f} "
        f"[{last.high_share_diff_low:.3f}, {last.high_share_diff_high:.3f}]"
    )
    return _row(run, "ood_high_order", text, str(last.verdict))


def _shared_row(run: str, coverage: pd.DataFrame | None, tau1: float, factor: float) -> dict:
    if coverage is None or coverage.empty:
        return _row(run, "shared_interactions", "no comparable run", "n/a")
    rows = coverage[
        (coverage.run_a == run)
        & (coverage.run_b != run)
        & (coverage.stage == "final")
        & np.isclose(coverage.tau1, tau1)
    ].dropna(subset=["ratio"])
    if rows.empty:
        return _row(run, "shared_interactions", "no comparable run", "n/a")
    mean_ratio = float(rows.ratio.mean())
    text = (
        f"coverage {rows.coverage.mean():.2f} vs random {rows.random_expected.mean():.2f}: "
        f"{mean_ratio:.1f}× (min {rows.ratio.min():.1f}×, comparable runs: {len(rows)})"
    )
    return _row(run, "shared_interactions", text, _yes(mean_ratio >= factor))


# --------------------------------------------------------------------------- steps


def read_tsv(path: str | Path) -> pd.DataFrame:
    """A table written by a step; only empty fields are missing values (a verdict "n/a" stays
    text, which pandas' defaults would turn into NaN)."""
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""])


def _read_tsvs(paths: Iterable[str | Path]) -> pd.DataFrame:
    frames = [read_tsv(path) for path in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _read_points(paths: Iterable[str | Path]) -> dict[str, dict]:
    points = {}
    for path in paths:
        point = json.loads(Path(path).read_text())
        if "run" not in point:
            raise ValueError(f"{path}: two-phase points without a 'run' entry")
        points[point["run"]] = point
    return points


def _check_files(paths: Iterable[str | Path], what: str) -> list[str]:
    paths = [os.fspath(p) for p in paths]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"{what}: missing {missing}")
    return paths


def jaccard_run_step(files: Sequence[str | Path], table_out: str | Path) -> None:
    """Jaccard per order (both variants) of every checkpoint of a run → TSV."""
    from harsanyi.pipeline import _write_tsv

    _write_tsv(jaccard_table(_check_files(files, "interaction files")), table_out)


def jaccard_study_step(
    tables: Sequence[str | Path],
    points_paths: Sequence[str | Path],
    table_out: str | Path,
    figure_out: str | Path,
    *,
    variant: str = "average_then_split",
) -> None:
    """All runs' Jaccard tables in one TSV; figure of `variant` at the checkpoint stages."""
    from harsanyi.pipeline import _write_tsv
    from harsanyi.plots import jaccard_figure

    if variant not in JACCARD_VARIANTS:
        raise ValueError(f"analysis.jaccard_variant must be one of {JACCARD_VARIANTS}")
    table = _read_tsvs(_check_files(tables, "Jaccard tables"))
    points = _read_points(_check_files(points_paths, "two-phase points"))
    stages = {
        run: checkpoint_stages(part.epoch, points.get(run, {}).get("phase2_start"))
        for run, part in table.groupby("run")
    }
    _write_tsv(table, table_out)
    jaccard_figure(table, stages, figure_out, variant=variant)


def ood_run_step(
    files: Sequence[str | Path],
    strength_out: str | Path,
    verdict_out: str | Path,
    *,
    ratio: float = DEFAULT_RATIO,
    n_boot: int = 1000,
) -> None:
    """Normal vs flipped strength per order of a noisy run → TSV, and its verdict → JSON."""
    from harsanyi.pipeline import _write_json, _write_tsv

    strength, summary = ood_tables(
        _check_files(files, "interaction files"), ratio=ratio, n_boot=n_boot
    )
    verdict = ood_verdict(summary)
    verdict["per_checkpoint"] = [
        {key: _plain(value) for key, value in row.items()}
        for row in summary.to_dict(orient="records")
    ]
    _write_tsv(strength, strength_out)
    _write_json(verdict, verdict_out)


def ood_study_step(
    strength_tables: Sequence[str | Path],
    verdict_paths: Sequence[str | Path],
    strength_out: str | Path,
    verdicts_out: str | Path,
    figure_out: str | Path,
) -> None:
    """Noisy runs together: strength TSV, one verdict row per run, figure at the last epoch."""
    from harsanyi.pipeline import _write_tsv
    from harsanyi.plots import ood_figure

    strength = _read_tsvs(_check_files(strength_tables, "OOD tables"))
    verdicts = []
    for path in _check_files(verdict_paths, "OOD verdicts"):
        verdict = json.loads(Path(path).read_text())
        verdict.pop("per_checkpoint", None)
        verdicts.append(verdict)
    verdicts_table = pd.DataFrame(verdicts)
    _write_tsv(strength, strength_out)
    _write_tsv(verdicts_table, verdicts_out)
    ood_figure(strength, verdicts_table, figure_out)


def similarity_step(
    files: Sequence[str | Path],
    coverage_out: str | Path,
    orders_out: str | Path,
    topk_out: str | Path,
    figure_out: str | Path,
    *,
    stages: Sequence[str | int] = ("init", "final"),
    label_noise: Mapping[str, float] | None = None,
    tau: float = 0.05,
) -> None:
    """Cross-model coverage and top-K overlap → three TSVs and the heatmap figure."""
    from harsanyi.pipeline import _write_tsv
    from harsanyi.plots import similarity_figure

    tables = similarity_tables(
        _check_files(files, "interaction files"),
        stages=stages,
        label_noise=label_noise,
        order_tau=tau,
    )
    _write_tsv(tables["coverage"], coverage_out)
    _write_tsv(tables["orders"], orders_out)
    _write_tsv(tables["topk"], topk_out)
    similarity_figure(tables["coverage"], tables["orders"], tables["topk"], figure_out, tau=tau)


def theory_run_step(
    files: Sequence[str | Path],
    orders_out: str | Path,
    fit_out: str | Path,
    *,
    ratio: float = DEFAULT_RATIO,
) -> None:
    """Spindle and σ² fit of one run → two TSVs."""
    from harsanyi.pipeline import _write_tsv

    orders_table, fit = theory_tables(_check_files(files, "interaction files"), ratio=ratio)
    _write_tsv(orders_table, orders_out)
    _write_tsv(fit, fit_out)


def theory_study_step(
    orders_tables: Sequence[str | Path],
    fit_tables: Sequence[str | Path],
    points_paths: Sequence[str | Path],
    orders_out: str | Path,
    fit_out: str | Path,
    figure_out: str | Path,
    ratio_out: str | Path,
    ratio_figure_out: str | Path,
    *,
    shown: int = 4,
) -> None:
    """All runs: theory tables, theory-vs-measurement figure, and the pure r(k) figure."""
    from harsanyi.analysis import shown_epochs
    from harsanyi.pipeline import _write_tsv
    from harsanyi.plots import theory_figure, theory_ratio_figure

    orders_table = _read_tsvs(_check_files(orders_tables, "theory tables"))
    fit = _read_tsvs(_check_files(fit_tables, "theory fits"))
    points = _read_points(_check_files(points_paths, "two-phase points"))
    epochs = {
        run: shown_epochs(part.epoch.unique(), shown, points.get(run, {}).get("phase2_start"))
        for run, part in orders_table.groupby("run")
    }
    ratio = theory_ratio_table()
    _write_tsv(orders_table, orders_out)
    _write_tsv(fit, fit_out)
    _write_tsv(ratio, ratio_out)
    theory_figure(orders_table, fit, epochs, figure_out)
    theory_ratio_figure(ratio, ratio_figure_out)


def shapley_run_step(
    file: str | Path, table_out: str | Path, check_out: str | Path, *, tolerance: float = 1e-8
) -> None:
    """Shapley values of a checkpoint from the interactions and exactly → TSV; check → JSON."""
    from harsanyi.pipeline import _write_json, _write_tsv

    (path,) = _check_files([file], "interaction file")
    table = shapley_table(path)
    _write_tsv(table, table_out)
    _write_json(shapley_check(table, tolerance=tolerance), check_out)


def shapley_study_step(
    tables: Sequence[str | Path],
    checks: Sequence[str | Path],
    table_out: str | Path,
    figure_out: str | Path,
) -> None:
    """One check row per run → TSV; figure φ from interactions vs exact φ of v."""
    from harsanyi.pipeline import _write_tsv
    from harsanyi.plots import shapley_figure

    values = _read_tsvs(_check_files(tables, "Shapley tables"))
    summary = pd.DataFrame(
        [json.loads(Path(p).read_text()) for p in _check_files(checks, "Shapley checks")]
    )
    _write_tsv(summary, table_out)
    shapley_figure(values, summary, figure_out)


def scorecard_step(
    points_paths: Sequence[str | Path],
    strength_tables: Sequence[str | Path],
    jaccard_tables: Sequence[str | Path],
    theory_fits: Sequence[str | Path],
    ood_verdicts: Sequence[str | Path],
    coverage_table: str | Path | None,
    table_out: str | Path,
    figure_out: str | Path,
    *,
    variant: str = "average_then_split",
    max_checkpoint_distance: int = MAX_CHECKPOINT_DISTANCE,
    coverage_factor: float = COVERAGE_FACTOR,
) -> None:
    """The scorecard of every run → TSV and a figure rendering it."""
    from harsanyi.pipeline import _write_tsv
    from harsanyi.plots import scorecard_figure

    points = _read_points(_check_files(points_paths, "two-phase points"))
    verdicts = [
        {k: v for k, v in json.loads(Path(p).read_text()).items() if k != "per_checkpoint"}
        for p in _check_files(ood_verdicts, "OOD verdicts")
    ]
    coverage = None
    if coverage_table is not None:
        coverage = read_tsv(_check_files([coverage_table], "coverage table")[0])
    table = scorecard(
        points,
        _read_tsvs(_check_files(strength_tables, "order strength tables")),
        _read_tsvs(_check_files(jaccard_tables, "Jaccard tables")),
        _read_tsvs(_check_files(theory_fits, "theory fits")),
        pd.DataFrame(verdicts) if verdicts else None,
        coverage,
        variant=variant,
        max_checkpoint_distance=max_checkpoint_distance,
        coverage_factor=coverage_factor,
    )
    _write_tsv(table, table_out)
    scorecard_figure(table, figure_out)
