"""The scorecard: which published claims every run reproduces, one row per run × claim,
from the tables of the other analyses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import check_files, read_points, read_tsv, read_tsvs
from harsanyi.analyses.theory import middle_orders
from harsanyi.io import write_tsv

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


def study_step(
    *,
    points: Sequence[str | Path],
    strength: Sequence[str | Path],
    jaccard: Sequence[str | Path],
    theory: Sequence[str | Path],
    ood: Sequence[str | Path],
    coverage: str | Path | None,
    table: str | Path,
    figure: str | Path,
    variant: str = "average_then_split",
    max_checkpoint_distance: int = MAX_CHECKPOINT_DISTANCE,
    coverage_factor: float = COVERAGE_FACTOR,
) -> None:
    """The scorecard of every run → TSV and a figure rendering it.

    Inputs: the runs' two_phase.json, order_strength.tsv, jaccard.tsv, theory_fit.tsv,
    ood_verdict.json (noisy runs only) and the study's similarity_coverage.tsv.
    """
    from harsanyi.plots import scorecard_figure

    verdicts = [
        {k: v for k, v in json.loads(Path(p).read_text()).items() if k != "per_checkpoint"}
        for p in check_files(ood, "OOD verdicts")
    ]
    coverage_table = None
    if coverage is not None:
        coverage_table = read_tsv(check_files([coverage], "coverage table")[0])
    card = scorecard(
        read_points(check_files(points, "two-phase points")),
        read_tsvs(check_files(strength, "order strength tables")),
        read_tsvs(check_files(jaccard, "Jaccard tables")),
        read_tsvs(check_files(theory, "theory fits")),
        pd.DataFrame(verdicts) if verdicts else None,
        coverage_table,
        variant=variant,
        max_checkpoint_distance=max_checkpoint_distance,
        coverage_factor=coverage_factor,
    )
    write_tsv(card, table)
    scorecard_figure(card, figure)
