"""Row-and-column generation for the canonical LP against `exact`, and its best case.

Run: python benchmarks/bench_generation.py [--n 8 10] [--per-kind 3] [--add 32] [--json FILE]

A lead for a faster exact solver, not used by the library.  The canonical problem of
`sparsify(solver="exact")` (every |I(S)| weighted 1 + δ·w_S) is written densely: one range row
v(S) − ε ≤ Σ_{T⊆S} I_and(T) + β − Σ_{∅≠T⊆N∖S} I_or(T) ≤ v(S) + ε per coalition, one row
β = Σ_T I_or(T), and one column per coalition, part and sign.  Only some rows and columns are
kept in a HiGHS model; after each simplex solve the butterflies find the rows the answer
violates (Kx for all 2^n coalitions) and the columns of negative reduced cost (Kᵀy), and the
worst `--add` of each are added (the simplex restarts from the kept basis; new rows come
with elastic columns of cost 1000 so that the model stays feasible).  When nothing is
violated the answer is optimal for the full problem, hence the unique canonical optimum.

"best case": the same LP restricted to the optimum's own active rows and support columns,
solved cold: the time any method that found them cheaply would need.  "columns kept: all"
generates rows only (every column is in the model from the start).  `--json FILE` also writes
the table for the documentation (docs/numbers/, rendered by scripts/docs_numbers.py).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import highspy
import numpy as np
import torch
from bench_certified import benchmark_games, jaccard, salient, salient_sets
from records import write_table

from harsanyi import sparsifier as sp
from harsanyi.certificate import and_adjoint, lower_bound, or_adjoint, rebuild
from harsanyi.masks import orders

INF = highspy.kHighsInf
ELASTIC_COST = 1e3
TOL = 1e-9


def coefficients(rows: np.ndarray, keys: np.ndarray, size: int) -> np.ndarray:
    """(rows, keys) entries of the range rows; key = block·2^n + T, blocks a⁺ a⁻ o⁺ o⁻."""
    block, t = keys // size, keys % size
    s, tt = rows[:, None], t[None, :]
    sign = np.where(block % 2 == 0, 1.0, -1.0)[None, :]
    and_entry = ((tt & ~s) == 0).astype(float)
    or_entry = -(((tt & s) == 0) & (tt != 0)).astype(float)
    return sign * np.where((block < 2)[None, :], and_entry, or_entry)


def star_entries(keys: np.ndarray, size: int) -> np.ndarray:
    """Entries of the row β − Σ_T I_or(T) = 0."""
    block = keys // size
    return np.where(block >= 2, np.where(block % 2 == 0, -1.0, 1.0), 0.0)


def highs_model() -> highspy.Highs:
    model = highspy.Highs()
    model.setOptionValue("output_flag", False)
    for option, value in sp.LP_OPTIONS.items():
        model.setOptionValue(option, value)
    return model


class Generation:
    """One sample's restricted model: kept rows and columns, grown until nothing is violated."""

    def __init__(self, v: np.ndarray, eps: float, n: int):
        self.v, self.eps, self.n, self.size = v, eps, n, 2**n
        self.cost = 1.0 + sp.CANONICAL_DELTA * sp.canonical_weights(n)
        self.model = highs_model()
        self.model.addRows(1, np.zeros(1), np.zeros(1), 0, np.zeros(1, np.int32), [], [])
        self.model.addCols(1, np.zeros(1), [-INF], [INF], 1, [0], [0], [1.0])  # β
        self.row_of = [-1]  # model row → coalition (−1: the β row)
        self.col_of = [-1]  # model column → key (−1: β, −2: elastic)
        self.has_row = np.zeros(self.size, bool)
        self.has_col = np.zeros(4 * self.size, bool)

    def add_rows(self, rows: np.ndarray) -> None:
        rows = rows[~self.has_row[rows]]
        self.has_row[rows] = True
        keys = np.array(self.col_of)
        matrix = np.zeros((len(rows), len(keys)))
        matrix[:, keys >= 0] = coefficients(rows, keys[keys >= 0], self.size)
        matrix[:, keys == -1] = 1.0
        r, c = np.nonzero(matrix)
        starts = np.searchsorted(r, np.arange(len(rows))).astype(np.int32)
        lo, hi = self.v[rows] - self.eps, self.v[rows] + self.eps
        self.model.addRows(len(rows), lo, hi, len(c), starts, c.astype(np.int32), matrix[r, c])
        at = np.arange(len(self.row_of), len(self.row_of) + len(rows), dtype=np.int32)
        self.row_of.extend(rows.tolist())
        count = 2 * len(rows)
        self.model.addCols(
            count,
            np.full(count, ELASTIC_COST),
            np.zeros(count),
            np.full(count, INF),
            count,
            np.arange(count, dtype=np.int32),
            np.concatenate([at, at]),
            np.concatenate([np.ones(len(rows)), -np.ones(len(rows))]),
        )
        self.col_of.extend([-2] * count)

    def add_columns(self, keys: np.ndarray) -> None:
        keys = keys[~self.has_col[keys]]
        self.has_col[keys] = True
        matrix = np.zeros((len(keys), len(self.row_of)))
        matrix[:, 1:] = coefficients(np.array(self.row_of[1:]), keys, self.size).T
        matrix[:, 0] = star_entries(keys, self.size)
        k, r = np.nonzero(matrix)
        starts = np.searchsorted(k, np.arange(len(keys))).astype(np.int32)
        self.model.addCols(
            len(keys),
            self.cost[keys],
            np.zeros(len(keys)),
            np.full(len(keys), INF),
            len(r),
            starts,
            r.astype(np.int32),
            matrix[k, r],
        )
        self.col_of.extend(keys.tolist())

    def answer(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(I_and, I_or, dual y over all coalitions, 0 on rows not kept) of the last solve."""
        solution = self.model.getSolution()
        x, keys = np.array(solution.col_value), np.array(self.col_of)
        kept = keys >= 0
        block, t = keys[kept] // self.size, keys[kept] % self.size
        signed = np.where(block % 2 == 0, 1.0, -1.0) * x[kept]
        i_and = np.bincount(t[block < 2], signed[block < 2], minlength=self.size)
        i_or = np.bincount(t[block >= 2], signed[block >= 2], minlength=self.size)
        row_dual = np.array(solution.row_dual)
        y = np.zeros(self.size)
        y[np.array(self.row_of[1:], dtype=np.int64)] = row_dual[1:]
        return i_and, i_or, y

    def violations(self, add: int) -> tuple[np.ndarray, np.ndarray]:
        """The worst `add` violated rows (K x outside v ± ε) and columns (negative reduced
        cost c − |Kᵀy|; β is free, so its row's multiplier is −Σ y and the OR prices are
        exactly Z_orᵀ y), both found for all 2^n coalitions by the library's butterflies."""
        i_and, i_or, y = self.answer()
        rebuilt = rebuild(torch.from_numpy(i_and[None]), torch.from_numpy(i_or[None]))[0].numpy()
        excess = np.maximum(rebuilt - self.v - self.eps, self.v - self.eps - rebuilt)
        excess[self.has_row] = -np.inf
        dual = torch.from_numpy(y[None])
        and_price, or_price = and_adjoint(dual)[0].numpy(), or_adjoint(dual)[0].numpy()
        reduced = self.cost - np.concatenate([and_price, -and_price, or_price, -or_price])
        reduced[self.has_col] = np.inf
        rows = np.nonzero(excess > TOL)[0]
        cols = np.nonzero(reduced < -TOL)[0]
        return rows[np.argsort(-excess[rows])[:add]], cols[np.argsort(reduced[cols])[:add]]


def solve_by_generation(
    v: np.ndarray, eps: float, n: int, add: int, all_columns: bool, max_rounds: int = 500
):
    """(I_and, I_or, y, rounds, kept rows, kept columns) of the canonical LP; with
    `all_columns` every column is kept from the start (rows are still generated)."""
    generation = Generation(v, eps, n)
    order = orders(n)
    generation.add_rows(np.nonzero((order <= 1) | (order >= n - 1))[0])
    low = np.nonzero(order <= 1)[0]
    first = np.arange(4 * 2**n) if all_columns else np.concatenate([low, low + 2**n])
    generation.add_columns(first)
    rounds = 0
    while True:
        rounds += 1
        generation.model.run()
        rows, cols = generation.violations(add)
        if not len(rows) and not len(cols):
            break
        if rounds == max_rounds:
            raise RuntimeError(f"no convergence in {max_rounds} rounds")
        if len(rows):
            generation.add_rows(rows)
        if len(cols):
            generation.add_columns(cols)
    i_and, i_or, y = generation.answer()
    return i_and, i_or, y, rounds, int(generation.has_row.sum()), int(generation.has_col.sum())


def best_case_seconds(v: np.ndarray, eps: float, n: int, i_and, i_or) -> float:
    """Seconds of a cold solve restricted to the optimum's active rows and support columns."""
    rebuilt = rebuild(torch.from_numpy(i_and[None]), torch.from_numpy(i_or[None]))[0].numpy()
    rows = np.nonzero(np.abs(np.abs(rebuilt - v) - eps) <= 1e-7)[0]
    signed = np.concatenate([i_and, -i_and, i_or, -i_or])
    generation = Generation(v, eps, n)
    generation.add_rows(rows)
    generation.add_columns(np.nonzero(signed > 1e-9)[0])
    start = time.perf_counter()
    generation.model.run()
    return time.perf_counter() - start


def compare(n: int, per_kind: int, add: int) -> list[dict]:
    """Prints the table of games of `n` players and returns its rows (one per kind of game
    and way of keeping columns)."""
    kinds = benchmark_games(n, per_kind)
    print(f"\nn = {n}: {per_kind} games per kind, up to {add} rows and columns added per round")
    print(
        f"{'games':14s} {'columns kept':>12s} {'exact s/sample':>14s} "
        f"{'generation s (each)':>28s} {'rounds':>8s} "
        f"{'rows':>10s} {'columns':>10s} {'L1/OPT-1 worst':>14s} {'max gap':>8s} "
        f"{'Jaccard min':>11s} {'best case s':>11s}"
    )
    exact, exact_seconds = {}, {}
    for kind, games in kinds.items():
        start = time.perf_counter()
        exact[kind] = sp.sparsify(games, solver="exact", workers=1)
        exact_seconds[kind] = (time.perf_counter() - start) / len(games)
    table = []
    for (kind, games), all_columns in itertools.product(kinds.items(), (False, True)):
        seconds, rounds, rows, cols, excess, gaps, best, i_and, i_or = ([] for _ in range(9))
        for k, game in enumerate(games):
            scale = game.std()
            v = game / scale
            eps = 0.02 * abs(v[-1] - v[0])
            start = time.perf_counter()
            a, o, y, r, kept_rows, kept_cols = solve_by_generation(v, eps, n, add, all_columns)
            seconds.append(time.perf_counter() - start)
            rounds.append(r)
            rows.append(kept_rows)
            cols.append(kept_cols)
            l1 = np.abs(a).sum() + np.abs(o).sum()
            bound = lower_bound(
                torch.from_numpy(y[None]), torch.from_numpy(v[None]), torch.tensor([eps])
            ).item()
            excess.append(l1 * scale / exact[kind].l1_final[k] - 1)
            gaps.append((l1 - bound) / l1)
            best.append(best_case_seconds(v, eps, n, a, o))
            i_and.append(a * scale)
            i_or.append(o * scale)
        merged = sp._merge_singletons(np.array(i_and), np.array(i_or))
        overlap = jaccard(salient_sets(*merged), salient(exact[kind]))
        each = " ".join(f"{s:.2f}" for s in seconds)
        print(
            f"{kind:14s} {'all' if all_columns else 'generated':>12s} {exact_seconds[kind]:14.3f} "
            f"{each:>28s} {max(rounds):8d} "
            f"{min(rows):4d}-{max(rows):<5d} {min(cols):4d}-{max(cols):<5d} "
            f"{max(excess):+14.1e} {max(gaps):8.1e} {overlap.min():11.3f} {max(best):11.3f}"
        )
        table.append(
            {
                "n": n,
                "games": kind,
                "columns": "all" if all_columns else "generated",
                "exact_s": exact_seconds[kind],
                "generation_s": seconds,
                "rounds_max": max(rounds),
                "rows_kept": [min(rows), max(rows)],
                "columns_kept": [min(cols), max(cols)],
                "excess_worst": float(max(excess)),
                "max_gap": float(max(gaps)),
                "jaccard_min": float(overlap.min()),
                "best_case_s": max(best),
            }
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[8, 10])
    parser.add_argument("--per-kind", type=int, default=3)
    parser.add_argument("--add", type=int, default=32, help="rows and columns added per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}; HiGHS simplex; float64")
    rows = [row for n in args.n for row in compare(n, args.per_kind, args.add)]
    if args.json:
        write_table(args.json, rows, add=args.add)


if __name__ == "__main__":
    main()
