"""Cross-model similarity: coverage and top-K overlap of the salient interactions of
comparable runs (same dataset and label noise) at named checkpoints."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import ResultsLike, by_run, check_files, identity
from harsanyi.io import write_tsv
from harsanyi.masks import orders
from harsanyi.metrics import (
    DEFAULT_COVERAGE_TAUS,
    DEFAULT_TOPK_RATIOS,
    coverage_sweep,
    topk_overlap_sweep,
)
from harsanyi.stats import salient_masks
from harsanyi.store import InteractionResults


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
    runs = by_run(items)
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


def study_step(
    *,
    interactions: Sequence[str | Path],
    coverage: str | Path,
    orders: str | Path,
    topk: str | Path,
    samples: str | Path,
    figure: str | Path,
    stages: Sequence[str | int] = ("init", "final"),
    label_noise: Mapping[str, float] | None = None,
    tau: float = 0.05,
) -> None:
    """Cross-model coverage and top-K overlap → three TSVs and the figure (with the
    order-matched random coverage of `shared_samples_table`, the scorecard's baseline), and
    that per-sample table."""
    from harsanyi.plots import similarity_figure

    tables = similarity_tables(
        check_files(interactions, "interaction files"),
        stages=stages,
        label_noise=label_noise,
        order_tau=tau,
    )
    write_tsv(tables["coverage"], coverage)
    write_tsv(tables["orders"], orders)
    write_tsv(tables["topk"], topk)
    per_sample = shared_samples_table(
        check_files(interactions, "interaction files"),
        stages=stages,
        label_noise=label_noise,
        tau1=tau,
        tau2=tau,
    )
    write_tsv(per_sample, samples)
    similarity_figure(
        tables["coverage"], tables["orders"], tables["topk"], figure, tau=tau, samples=per_sample
    )


# --------------------------------------------------------------------------- claim

MIN_SAMPLES = 5
SMALLEST_EXCESS = 0.02


def matched_random_coverage(omega1: np.ndarray, omega2: np.ndarray, n: int) -> np.ndarray:
    """(samples,) expected coverage |Ω₁ ∩ R| / |Ω₁| of Ω₁ by a random set R with the same
    number of salient terms as Ω₂ at every order and operator (AND, OR): the baseline with
    the same order profile.  Bool masks (samples, 2·2^n), AND then OR; nan where Ω₁ = ∅."""
    of_order = np.tile(orders(n), 2)
    operator = np.repeat([0, 1], 2**n)
    expected = np.zeros(omega1.shape[0])
    for op in (0, 1):
        for k in range(1, n + 1):
            column = (of_order == k) & (operator == op)
            expected += omega1[:, column].sum(axis=1) * omega2[:, column].sum(axis=1) / column.sum()
    size1 = omega1.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size1 > 0, expected / np.where(size1 > 0, size1, 1), np.nan)


def shared_samples_table(
    items: Iterable[ResultsLike],
    *,
    stages: Sequence[str | int] = ("init", "final"),
    label_noise: Mapping[str, float] | None = None,
    tau1: float = 0.05,
    tau2: float = 0.05,
) -> pd.DataFrame:
    """Per comparable pair (a ≠ b), stage and sample: coverage of a's salient set (τ₁) by b's
    (τ₂), and the coverage expected of a random set with b's order profile
    (`matched_random_coverage`) and of a uniform random set of b's size."""
    runs = by_run(items)
    rows = []
    for stage in stages:
        at = {run: epochs[_stage_epoch(list(epochs), stage, run)] for run, epochs in runs.items()}
        for a, b in comparable_pairs(at, label_noise):
            if a == b:
                continue
            rows_a, rows_b = shared_rows(at[a], at[b])
            first, second = at[a], at[b]
            n = first.n
            omega1 = np.concatenate(
                salient_masks(first.I_and[rows_a], first.I_or[rows_a], ratio=tau1), axis=1
            )
            omega2 = np.concatenate(
                salient_masks(second.I_and[rows_b], second.I_or[rows_b], ratio=tau2), axis=1
            )
            size1, size2 = omega1.sum(axis=1), omega2.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                covered = np.where(size1 > 0, (omega1 & omega2).sum(axis=1) / size1, np.nan)
            matched = matched_random_coverage(omega1, omega2, n)
            uniform = size2 / (2 * (2**n - 1))
            for i, row in enumerate(rows_a):
                rows.append(
                    {
                        "stage": str(stage),
                        "run_a": a,
                        "run_b": b,
                        "epoch_a": identity(first)["epoch"],
                        "split": str(np.asarray(first.split).astype(str)[row]),
                        "sample_id": int(first.sample_ids[row]),
                        "size1": int(size1[i]),
                        "size2": int(size2[i]),
                        "coverage": covered[i],
                        "random_matched": matched[i],
                        "random_uniform": uniform[i],
                    }
                )
    columns = ["stage", "run_a", "run_b", "epoch_a", "split", "sample_id", "size1", "size2"]
    columns += ["coverage", "random_matched", "random_uniform"]
    return pd.DataFrame(rows, columns=columns)


def shared_claims(samples: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """Per run a: excess coverage (coverage − order-matched random) at the last checkpoint,
    averaged over a's comparable partners per sample, against the same excess between the
    untrained networks (first checkpoints) of the same pairs.  Run → (Claim, extra)."""
    from harsanyi.verdicts import GREATER, bootstrap_weights, claim, not_applicable

    out = {}
    if samples.empty:
        return out
    table = samples.assign(excess=samples.coverage - samples.random_matched)
    for run, part in table.groupby("run_a"):
        per_sample = part.pivot_table(
            index=["split", "sample_id"], columns="stage", values="excess", aggfunc="mean"
        )
        if not {"init", "final"} <= set(per_sample.columns):
            out[run] = (not_applicable("needs the first and the last checkpoint"), {})
            continue
        per_sample = per_sample[["init", "final"]].dropna()
        x = len(per_sample)
        if x == 0:
            out[run] = (not_applicable("no sample with salient interactions"), {})
            continue
        weights = bootstrap_weights(x, n_boot, seed) / x
        final, init = per_sample["final"].to_numpy(), per_sample["init"].to_numpy()
        final_part = part[part.stage == "final"]
        replicates, null = weights @ final, weights @ init
        result = claim(
            float(final.mean()),
            replicates,
            null=float(init.mean()),
            null_replicates=null,
            direction=GREATER,
            n=x,
            min_n=MIN_SAMPLES,
            smallest_effect=SMALLEST_EXCESS,
            null_kind="interval",
            floor=0.0,
        )
        extra = {
            "replicates": replicates,
            "null_replicates": null,
            "coverage": float(final_part.coverage.mean()),
            "random_matched": float(final_part.random_matched.mean()),
            "random_uniform": float(final_part.random_uniform.mean()),
            "partners": int(final_part.run_b.nunique()),
        }
        out[run] = (result, extra)
    return out
