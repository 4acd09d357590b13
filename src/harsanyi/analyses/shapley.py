"""Shapley values from the interactions, checked against an exact computation from v."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses.common import ResultsLike, check_files, identity, load, read_tsvs
from harsanyi.io import write_json, write_tsv
from harsanyi.masks import coalition_matrix, orders
from harsanyi.stats import shapley_from_and


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


def run_step(
    *,
    interactions: str | Path,
    table: str | Path,
    check: str | Path,
    tolerance: float = SHAPLEY_TOLERANCE,
) -> None:
    """Shapley values of a checkpoint from the interactions and exactly → TSV; check → JSON."""
    (path,) = check_files([interactions], "interaction file")
    values = shapley_table(path)
    write_tsv(values, table)
    write_json(shapley_check(values, tolerance=tolerance), check)


def study_step(
    *,
    tables: Sequence[str | Path],
    checks: Sequence[str | Path],
    table: str | Path,
    figure: str | Path,
) -> None:
    """One check row per run → TSV; figure φ from interactions vs exact φ of v."""
    from harsanyi.plots import shapley_figure

    values = read_tsvs(check_files(tables, "Shapley tables"))
    summary = pd.DataFrame(
        [json.loads(Path(p).read_text()) for p in check_files(checks, "Shapley checks")]
    )
    write_tsv(summary, table)
    shapley_figure(values, summary, figure)
