"""Sensitivity of interactions to input perturbations, by order, over training.

Inputs are the files of rule `sensitivity` (`harsanyi.extraction.extract_sensitivity`: per
checkpoint, the relative change r_k of each sample's interactions of order k under each
perturbation; `harsanyi.sensitivity` defines r_k and the trend statistic).

- `sensitivity_tables`: per run, checkpoint, perturbation and order the mean r_k with a
  bootstrap interval, and per run, checkpoint and perturbation the trend (mean per-sample
  Spearman ρ between order and r_k) with its permutation p-value.
- `sensitivity_change_claim`: the scorecard's "higher orders are more sensitive", as a
  change in training: per sample, ρ (averaged over the perturbations) at a run's last
  measured checkpoint minus ρ at its first; the effect is the mean over samples, with a
  bootstrap interval over samples, against the permutation null of the same statistic with
  each sample's two checkpoints shuffled (swapped with probability ½): yes if the interval
  lies above the null's 95th percentile and the effect beats it by at least `SMALLEST_RHO`.
  The trend at initialisation is there already in the networks measured
  (docs/interactions.md), so the level of ρ alone says nothing about training.
- `sensitivity_claim`: the same trend at one checkpoint (level, not change) against each
  sample's r_k shuffled over its orders.
- `study_step` (rule sensitivity_study): the tables and the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import check_files
from harsanyi.extraction import read_sensitivity
from harsanyi.io import write_tsv
from harsanyi.sensitivity import order_trend, shuffled_trend, summarise
from harsanyi.verdicts import GREATER, N_BOOT, bootstrap_weights, claim, not_applicable

SMALLEST_RHO = 0.1
MIN_SAMPLES = 5


def read_tables(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The rows of every sensitivity file, with columns run and epoch added."""
    frames = []
    for path in check_files(paths, "sensitivity files"):
        record, table = read_sensitivity(path)
        table.insert(0, "run", record["run"])
        table.insert(1, "epoch", int(record["epoch"]))
        frames.append(table)
    return pd.concat(frames, ignore_index=True)


def relative_array(table: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """(perturbations, r of shape (perturbations, samples, n)) of one run's checkpoint."""
    keys = ["perturbation", "split", "sample_id"]
    wide = table.set_index([*keys, "order"]).relative.unstack()
    wide = wide.reindex(pd.MultiIndex.from_frame(table[keys].drop_duplicates()))  # file order
    perturbations = list(dict.fromkeys(table.perturbation))
    blocks = [wide.loc[name].to_numpy(dtype=np.float64) for name in perturbations]
    return perturbations, np.stack(blocks)


def sensitivity_tables(
    table: pd.DataFrame, *, n_boot: int = N_BOOT, n_perm: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, trend) of every run and checkpoint in `table` (`read_tables`)."""
    summaries, trends = [], []
    for (run, epoch), part in table.groupby(["run", "epoch"], sort=True):
        names, rel = relative_array(part)
        summary, trend = summarise(rel, names, n_boot=n_boot, seed=seed, n_perm=n_perm)
        for frame, out in ((summary, summaries), (trend, trends)):
            frame.insert(0, "run", run)
            frame.insert(1, "epoch", int(epoch))
            out.append(frame)
    return pd.concat(summaries, ignore_index=True), pd.concat(trends, ignore_index=True)


def _sample_rho(rel: np.ndarray) -> np.ndarray:
    """(samples,) Spearman ρ of order vs r_k, averaged over the perturbations."""
    with np.errstate(invalid="ignore"):
        rhos = np.stack([order_trend(r) for r in rel])
        counts = np.isfinite(rhos).sum(axis=0)
        return np.where(counts > 0, np.nansum(rhos, axis=0) / np.maximum(counts, 1), np.nan)


def mean_sample_rho(table: pd.DataFrame) -> float:
    """The effect of `sensitivity_claim` on one checkpoint's rows (NaN without samples)."""
    rho = _sample_rho(relative_array(table)[1])
    return float(np.nanmean(rho)) if np.isfinite(rho).any() else float("nan")


def _null_rho(rel: np.ndarray, keep: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """(draws,) the statistic of `sensitivity_claim` with each sample's r_k shuffled over its
    defined orders, independently per perturbation and draw."""
    rng = np.random.default_rng(seed)
    shuffled = np.stack([shuffled_trend(r, draws, rng) for r in rel])  # (P, draws, samples)
    with np.errstate(invalid="ignore"):
        per_sample = np.nanmean(shuffled[:, :, keep], axis=0)  # averaged over perturbations
    return per_sample.mean(axis=1)


def sensitivity_claim(table: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0) -> tuple:
    """(Claim, extra) of "higher orders are more sensitive" on one checkpoint's rows."""
    names, rel = relative_array(table)
    rho = _sample_rho(rel)
    keep = np.isfinite(rho)
    n = int(keep.sum())
    if n == 0:
        return not_applicable("no sample with three orders of defined change"), {}
    values = rho[keep]
    effect = float(values.mean())
    weights = bootstrap_weights(n, n_boot, seed)
    replicates = weights @ values / n
    null = _null_rho(rel, keep, n_boot, seed + 1)
    result = claim(
        effect,
        replicates,
        null=float(null.mean()),
        null_replicates=null,
        direction=GREATER,
        n=n,
        min_n=MIN_SAMPLES,
        smallest_effect=SMALLEST_RHO,
        null_kind="distribution",
        units=n,
    )
    extra = {
        "replicates": replicates,
        "null_replicates": null,
        "perturbations": names,
    }
    return result, extra


def sample_rhos(table: pd.DataFrame) -> pd.Series:
    """Per sample (index split, sample_id) Spearman ρ of order vs r_k averaged over the
    perturbations (`_sample_rho`) of one checkpoint's rows; NaN where no perturbation has
    three orders of defined change."""
    names, rel = relative_array(table)
    keys = ["split", "sample_id"]
    orders_of = [
        table[table.perturbation == name][keys].drop_duplicates().to_numpy().tolist()
        for name in names
    ]
    if any(o != orders_of[0] for o in orders_of):
        raise ValueError("the perturbations of a checkpoint explain other samples")
    index = pd.MultiIndex.from_tuples([tuple(o) for o in orders_of[0]], names=keys)
    return pd.Series(_sample_rho(rel), index=index)


def sensitivity_change_claim(
    first: pd.DataFrame, last: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0
) -> tuple:
    """(Claim, extra) of "training makes higher orders more sensitive": per sample
    Δρ = ρ(last) − ρ(first) (`sample_rhos`, the same samples at both checkpoints), effect the
    mean Δρ over the samples defined at both; interval: bootstrap over samples (expanded);
    null: the same mean with each sample's two checkpoints swapped with probability ½ (a
    sign flip of its Δρ, `n_boot` draws), bound its 95th percentile."""
    before, after = sample_rhos(first), sample_rhos(last)
    if set(before.index) != set(after.index):
        raise ValueError("the first and the last measured checkpoint explain other samples")
    names = list(dict.fromkeys(last.perturbation))
    if set(names) != set(first.perturbation):
        raise ValueError("the first and the last measured checkpoint have other perturbations")
    paired = pd.concat([before.rename("first"), after.rename("last")], axis=1).dropna()
    n = len(paired)
    if n == 0:
        return not_applicable("no sample with three orders of defined change at both"), {}
    delta = (paired["last"] - paired["first"]).to_numpy()
    effect = float(delta.mean())
    replicates = bootstrap_weights(n, n_boot, seed) @ delta / n
    signs = np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=(n_boot, n))
    null = signs @ delta / n
    result = claim(
        effect,
        replicates,
        null=float(np.median(null)),
        null_replicates=null,
        direction=GREATER,
        n=n,
        min_n=MIN_SAMPLES,
        smallest_effect=SMALLEST_RHO,
        null_kind="distribution",
        units=n,
    )
    extra = {
        "replicates": replicates,
        "null_replicates": null,
        "perturbations": names,
        "rho_first": float(paired["first"].mean()),
        "rho_last": float(paired["last"].mean()),
    }
    return result, extra


def study_step(
    *,
    sensitivity: Sequence[str | Path],
    table: str | Path,
    trend: str | Path,
    figure: str | Path,
    n_boot: int = N_BOOT,
) -> None:
    """Every run's sensitivity files → summary and trend tables and the figure."""
    from harsanyi.plots import sensitivity_figure

    rows = read_tables(sensitivity)
    summary, trends = sensitivity_tables(rows, n_boot=n_boot)
    write_tsv(summary, table)
    write_tsv(trends, trend)
    sensitivity_figure(summary, trends, figure)
