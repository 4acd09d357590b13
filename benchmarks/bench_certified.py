"""Certified sparsifier against the exact LP and the iterative solvers, side by side.

Run: python benchmarks/bench_certified.py [--quick] [--n 8 10] [--threads 1] [--workers W]

For each n, on the same games (random, planted with 30 AND + 30 OR terms, and v of an MLP
trained here on scikit-learn's digits, at initialisation and trained; players = pixel
columns), every solver with its defaults: seconds per sample, final L1 relative to the LP
optimum, the certified relative gap, and the salient-set Jaccard (|I| ≥ 0.05·max|I|, ∅ left
out) against the canonical answer of "exact" (HiGHS interior point).  "exact (simplex)" is the
same canonical problem solved by HiGHS's dual simplex: the second, independent method.
"exact (W workers)" solves the samples in W threads side by side (`sparsify(workers=W)`).
`--json FILE` also writes the table for the documentation (docs/numbers/, rendered by
scripts/docs_numbers.py).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from bench_sparsify import planted_games  # same planted games as the solver comparison there
from records import write_table
from sklearn.datasets import load_digits

from harsanyi import sparsifier as sp
from harsanyi.games import TabularMasker, game_values

PIXELS = [18, 19, 20, 21, 26, 27, 28, 29, 34, 35, 42, 43]


def network_games(n: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(untrained, trained) games of an MLP on digits, `samples` each."""
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    masker = TabularMasker(PIXELS[:n])
    untrained = game_values(model, masker, x[:samples], y[:samples]).numpy()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x[200:]), y[200:]).backward()
        optimiser.step()
    return untrained, game_values(model, masker, x[:samples], y[:samples]).numpy()


def benchmark_games(n: int, per_kind: int) -> dict[str, np.ndarray]:
    """The games every sparsifier benchmark compares on, `per_kind` of each kind."""
    rng = np.random.default_rng(n)
    untrained, trained = network_games(n, per_kind)
    return {
        "random": rng.normal(size=(per_kind, 2**n)),
        "planted": planted_games(n, per_kind, 30, rng),
        "untrained net": untrained,
        "trained net": trained,
    }


def salient_sets(i_and: np.ndarray, i_or: np.ndarray, ratio: float = 0.05) -> np.ndarray:
    """(B, 2·2^n − 2) bool: |I| ≥ ratio·max|I| over AND and OR together, ∅ left out."""
    values = np.abs(np.concatenate([i_and[:, 1:], i_or[:, 1:]], axis=1))
    return values >= ratio * values.max(axis=1, keepdims=True)


def salient(result: sp.SparsifyResult) -> np.ndarray:
    return salient_sets(result.I_and, result.I_or)


def jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([(x & y).sum() / max((x | y).sum(), 1) for x, y in zip(a, b, strict=True)])


SOLVERS = {
    "exact": {"solver": "exact"},
    "exact (simplex)": {"solver": "exact", "lp_method": "highs-ds"},
    "lp": {"solver": "lp"},
    "adam (2000 it.)": {"solver": "adam", "iters": 2000},
    "sgd (defaults)": {"solver": "sgd"},
}


def compare(n: int, per_kind: int, workers: int) -> list[dict]:
    kinds = benchmark_games(n, per_kind)
    games = np.concatenate(list(kinds.values()))
    labels = [kind for kind, block in kinds.items() for _ in block]
    results, seconds = {}, {}
    solvers = {**SOLVERS, f"exact ({workers} workers)": {"solver": "exact", "workers": workers}}
    for name, options in solvers.items():
        start = time.perf_counter()
        results[name] = sp.sparsify(games, **options)
        seconds[name] = (time.perf_counter() - start) / len(games)
    optimum = results["lp"].l1_final
    reference = salient(results["exact"])
    print(f"\nn = {n}: {per_kind} games each of {', '.join(kinds)}")
    print(
        f"{'solver':17s} {'s/sample':>9s} {'L1/OPT-1 median':>16s} {'worst':>9s} "
        f"{'max gap':>9s} {'certified':>9s} {'Jaccard mean':>12s} {'min':>6s}"
    )
    table = []
    for name, result in results.items():
        excess = result.l1_final / optimum - 1
        gap = np.nanmax(result.gap) if np.isfinite(result.gap).any() else float("nan")
        overlap = jaccard(salient(result), reference)
        table.append(
            {
                "n": n,
                "solver": name,
                "seconds_per_sample": seconds[name],
                "excess_median": float(np.median(excess)),
                "excess_worst": float(excess.max()),
                "max_gap": None if np.isnan(gap) else float(gap),
                "certified": int(result.certified.sum()),
                "games": len(games),
                "jaccard_mean": float(overlap.mean()),
                "jaccard_min": float(overlap.min()),
            }
        )
        print(
            f"{name:17s} {seconds[name]:9.3f} {np.median(excess):+16.2e} {excess.max():+9.2e} "
            f"{gap:9.1e} {int(result.certified.sum()):4d}/{len(games):<4d} "
            f"{overlap.mean():12.3f} {overlap.min():6.3f}"
        )
    parallel = seconds["exact"] / seconds[f"exact ({workers} workers)"]
    same = all(
        np.array_equal(
            getattr(results["exact"], a), getattr(results[f"exact ({workers} workers)"], a)
        )
        for a in ("I_and", "I_or", "gap")
    )
    print(
        f"  exact with {workers} worker threads: {parallel:.2f}x the samples/s of one thread; "
        f"same answers: {same}"
    )
    for kind in kinds:
        rows = np.array([label == kind for label in labels])
        overlap = jaccard(salient(results["exact (simplex)"])[rows], reference[rows])
        plain = jaccard(salient(results["lp"])[rows], reference[rows])
        adam = results["adam (2000 it.)"].l1_final[rows] / optimum[rows]
        print(
            f"  {kind:14s} canonical Jaccard (ipm vs simplex) min {overlap.min():.3f}; "
            f"plain LP vs canonical min {plain.min():.3f}; adam L1/OPT {adam.min():.2f}-"
            f"{adam.max():.2f}"
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="n = 6 and 8 only (CI)")
    parser.add_argument("--n", type=int, nargs="+", help="only these n (of 8, 10, 12)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="threads of the parallel row"
    )
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}; HiGHS via scipy {sp.LP_METHOD}; float64")
    plan = [(6, 2), (8, 2)] if args.quick else [(8, 4), (10, 3), (12, 1)]
    if args.n:
        plan = [(n, per_kind) for n, per_kind in plan if n in args.n]
    rows = [row for n, per_kind in plan for row in compare(n, per_kind, args.workers)]
    if args.json:
        write_table(args.json, rows)


if __name__ == "__main__":
    main()
