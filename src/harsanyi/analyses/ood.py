"""Label noise: salient strength per order of flipped-label (out-of-distribution) samples
against the correctly labelled training samples, with bootstrap intervals and a verdict."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import (
    ResultsLike,
    check_files,
    identity,
    load,
    plain,
    read_tsvs,
    results_split,
    uncertified,
)
from harsanyi.io import write_json, write_tsv
from harsanyi.metrics import bootstrap_ci
from harsanyi.stats import (
    DEFAULT_RATIO,
    mean_order,
    order_distribution,
    order_strength_per_sample,
)
from harsanyi.store import InteractionResults


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
        groups = {name: results_split(results, split, where) for name, split in OOD_GROUPS.items()}
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
                        "uncertified": uncertified(part),
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
    return {key: plain(value) for key, value in last.items()}


def run_step(
    *,
    interactions: Sequence[str | Path],
    table: str | Path,
    verdict: str | Path,
    ratio: float = DEFAULT_RATIO,
    n_boot: int = 1000,
) -> None:
    """Normal vs flipped strength per order of a noisy run → TSV, and its verdict → JSON."""
    strength, summary = ood_tables(
        check_files(interactions, "interaction files"), ratio=ratio, n_boot=n_boot
    )
    result = ood_verdict(summary)
    result["per_checkpoint"] = [
        {key: plain(value) for key, value in row.items()}
        for row in summary.to_dict(orient="records")
    ]
    write_tsv(strength, table)
    write_json(result, verdict)


CLAIM_KEY = "ood_high_order"
CLAIM_FIELDS = ("verdict", "effect", "low", "high", "null", "bound", "reason")


def scorecard_claims(claims: Sequence[str | Path]) -> pd.DataFrame:
    """The scorecard's OOD claim of each run, from the runs' claims.json (rule
    scorecard_run): one row per run with `CLAIM_FIELDS` and the mean-order change of each
    group (`change_flipped`, `change_normal`), the very numbers and verdict of scorecard.tsv."""
    rows = []
    for path in check_files(claims, "run claims"):
        record = json.loads(Path(path).read_text())
        entry = next((e for e in record["claims"] if e["key"] == CLAIM_KEY), None)
        if entry is None:
            raise ValueError(f"{path}: no claim {CLAIM_KEY!r}")
        rows.append(
            {
                "run": record["run"],
                **{name: entry.get(name) for name in CLAIM_FIELDS},
                "change_flipped": entry.get("change_flipped"),
                "change_normal": entry.get("change_normal"),
            }
        )
    columns = ["run", *CLAIM_FIELDS, "change_flipped", "change_normal"]
    return pd.DataFrame(rows, columns=columns)


def study_step(
    *,
    tables: Sequence[str | Path],
    verdicts: Sequence[str | Path],
    table: str | Path,
    verdict_table: str | Path,
    figure: str | Path,
    claims: Sequence[str | Path] = (),
) -> None:
    """Noisy runs together: strength TSV, one row per run with the descriptive high-order
    share comparison (column `verdict`) and, from the runs' claims.json (`claims`), the
    scorecard's verdict (`scorecard_verdict`, …); the figure, titled with the scorecard's."""
    from harsanyi.plots import ood_figure

    strength = read_tsvs(check_files(tables, "OOD tables"))
    rows = []
    for path in check_files(verdicts, "OOD verdicts"):
        row = json.loads(Path(path).read_text())
        row.pop("per_checkpoint", None)
        rows.append(row)
    verdicts_table = pd.DataFrame(rows)
    card = scorecard_claims(claims) if len(claims) else None
    if card is not None and len(verdicts_table):
        renamed = card.rename(columns={c: f"scorecard_{c}" for c in card if c != "run"})
        verdicts_table = verdicts_table.merge(renamed, on="run", how="left")
    write_tsv(strength, table)
    write_tsv(verdicts_table, verdict_table)
    ood_figure(strength, verdicts_table, figure, claims=card)


# --------------------------------------------------------------------------- claim

MIN_FLIPPED = 5
SMALLEST_ORDER_DIFFERENCE = 0.1
# The OOD effect an early digits experiment of this project saw (a small CNN, 64 epochs, 15 %
# flipped labels): mean order 2.64 on flipped against 2.04 on normal samples; the power
# statement asks how many flipped samples detect a difference of this size.
REFERENCE_ORDER_DIFFERENCE = 0.6


def _group_mean_orders(
    results: InteractionResults, ratio: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per group (sample ids, per-sample mean order), samples without salient strength out."""
    out = {}
    for group, split in OOD_GROUPS.items():
        part = results_split(results, split, "OOD claim")
        positive, negative = order_strength_per_sample(part.I_and, part.I_or, ratio=ratio)
        strength = positive - negative
        usable = strength.sum(axis=1) > 0
        out[group] = (np.asarray(part.sample_ids)[usable], _per_sample_orders(strength)[1])
    return out


def order_changes(
    first: InteractionResults, last: InteractionResults, ratio: float = DEFAULT_RATIO
) -> dict[str, np.ndarray]:
    """Per group, per sample: mean order at `last` minus mean order at `first` (the sample's
    own change in training), for the samples with salient strength at both checkpoints.

    Both checkpoints must explain the same samples of each group (matched by sample id)."""
    at_first, at_last = _group_mean_orders(first, ratio), _group_mean_orders(last, ratio)
    out = {}
    for group, split in OOD_GROUPS.items():
        ids_first = np.asarray(results_split(first, split, "OOD claim").sample_ids)
        ids_last = np.asarray(results_split(last, split, "OOD claim").sample_ids)
        if not np.array_equal(np.sort(ids_first), np.sort(ids_last)):
            raise ValueError(f"the first and the last checkpoint explain other {group} samples")
        (a_ids, a), (b_ids, b) = at_first[group], at_last[group]
        _, in_a, in_b = np.intersect1d(a_ids, b_ids, return_indices=True)
        out[group] = b[in_b] - a[in_a]
    return out


def difference_in_differences(changes: dict[str, np.ndarray]) -> float:
    """Mean change of the flipped samples minus mean change of the normal samples."""
    return float(changes["flipped"].mean() - changes["normal"].mean())


def _difference_replicates(groups: dict[str, np.ndarray], n_boot: int, seed: int) -> np.ndarray:
    """Two-group bootstrap of mean(flipped) − mean(normal), each group resampled on its own."""
    rng = np.random.default_rng(seed)
    means = []
    for name in ("flipped", "normal"):
        x = groups[name]
        means.append(x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1))
    return means[0] - means[1]


def _label_permutations(groups: dict[str, np.ndarray], draws: int, seed: int) -> np.ndarray:
    """(draws,) mean(flipped) − mean(normal) with the group labels shuffled over the pooled
    values (group sizes kept): the same statistic where being flipped makes no difference."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([groups["flipped"], groups["normal"]])
    size = groups["flipped"].size
    order = np.argsort(rng.random((draws, pooled.size)), axis=1)
    shuffled = pooled[order]
    return shuffled[:, :size].mean(axis=1) - shuffled[:, size:].mean(axis=1)


def ood_claim(
    first: InteractionResults,
    last: InteractionResults,
    *,
    ratio: float = DEFAULT_RATIO,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple:
    """OOD samples gain higher-order interactions in training: a difference in differences,
    paired by sample against initialisation.  Per sample, Δ = mean order at the last
    checkpoint − mean order at the first (`order_changes`); the effect is mean Δ of the
    flipped samples minus mean Δ of the correctly labelled training samples.

    Interval: two-group bootstrap over samples (expanded for the flipped samples' count).
    Null: the same statistic with the flipped / normal labels shuffled over the samples'
    Δ (`n_boot` permutations); the bound is its 95th percentile, and at least 0.

    Also a power statement: the difference detectable with 80 % power at the group sizes and
    spreads of Δ measured, and the flipped samples needed for `REFERENCE_ORDER_DIFFERENCE`.
    """
    from harsanyi.verdicts import (
        GREATER,
        claim,
        detectable_difference,
        not_applicable,
        samples_needed,
    )

    changes = order_changes(first, last, ratio)
    sizes = {name: values.size for name, values in changes.items()}
    if min(sizes.values()) == 0:
        reason = "a group without a sample with salient strength at both checkpoints"
        return not_applicable(reason, n=min(sizes.values())), {}
    effect = difference_in_differences(changes)
    replicates = _difference_replicates(changes, n_boot, seed)
    null = _label_permutations(changes, n_boot, seed + 1)
    sd = {
        name: float(values.std(ddof=1)) if values.size > 1 else np.nan
        for name, values in changes.items()
    }
    detectable = detectable_difference(
        sd["flipped"], sizes["flipped"], sd["normal"], sizes["normal"]
    )
    needed = (
        samples_needed(REFERENCE_ORDER_DIFFERENCE, sd["flipped"], sd["normal"])
        if all(np.isfinite(list(sd.values())))
        else None
    )
    result = claim(
        effect,
        replicates,
        null=float(np.median(null)),
        null_replicates=null,
        direction=GREATER,
        n=sizes["flipped"],
        min_n=MIN_FLIPPED,
        smallest_effect=SMALLEST_ORDER_DIFFERENCE,
        floor=0.0,
        units=min(sizes.values()),
    )
    power = f"detectable with 80 % power: {detectable:.2f}; flipped samples for a difference "
    power += f"of {REFERENCE_ORDER_DIFFERENCE}: {needed if needed is not None else 'unknown'}"
    extra = {
        "replicates": replicates,
        "null_replicates": null,
        "power": power,
        "detectable": detectable,
        "samples_needed": needed,
        "change_flipped": float(changes["flipped"].mean()),
        "change_normal": float(changes["normal"].mean()),
    }
    return result, extra
