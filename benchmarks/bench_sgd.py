"""The published reference solver ("sgd") on real games: does it end below its start, and how
far above the exact optimum, over learning rates and iteration counts?

Run: python benchmarks/bench_sgd.py [--quick] [--n 6 8 10] [--lrs-4n 1 0.5] [--iters 20000]

On the games every sparsifier benchmark uses (`bench_certified.benchmark_games`: planted, and
v of a digits MLP at initialisation and trained), "sgd" at learning rates lr·2^n ∈ LRS, or
lr·4^n ∈ `--lrs-4n` (normalised units; the default is `sparsifier.DEFAULT_SGD_LR_TIMES_4N`),
and iteration counts ITERS: per kind of game the samples that end at or above their starting
L1 (p = q = 0), the largest final L1 relative to the start, the final L1 relative to the LP
optimum (median and worst), and the seconds per sample.  The defaults must end below the
start on every game and as close to the optimum as that allows.  `--json FILE` writes the
rows for the documentation (scripts/docs_numbers.py renders them).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from bench_certified import benchmark_games
from records import write_table

from harsanyi import sparsifier as sp

LRS = (0.1, 0.03, 0.01, 0.005, 0.003, 0.001)
ITERS = (5000, 20000)
KINDS = ("planted", "untrained net", "trained net")


def compare(n: int, per_kind: int, lrs: tuple[float, ...], iters: tuple[int, ...]) -> list[dict]:
    """The table at `n` (learning rates as lr·2^n), printed; its rows returned."""
    games = benchmark_games(n, per_kind)
    kinds = [kind for kind in KINDS if kind in games]
    values = np.concatenate([games[kind] for kind in kinds])
    labels = np.array([kind for kind in kinds for _ in games[kind]])
    optimum = sp.sparsify(values, solver="lp").l1_final
    start = sp.sparsify(values, solver="sgd", iters=1, lr=1e-12).l1_start
    print(f"\nn = {n}: {per_kind} games each of {', '.join(kinds)}")
    print(f"  start L1 / OPT: median {np.median(start / optimum):.2f}")
    header = f"{'lr·2^n':>7s} {'iters':>6s} {'s/sample':>9s}"
    for kind in kinds:
        header += f" | {kind + ': ≥start, L1/start max, L1/OPT med, max':>44s}"
    print(header)
    rows_out = []
    for count in iters:
        for lr in lrs:
            began = time.perf_counter()
            result = sp.sparsify(values, solver="sgd", lr=lr / 2**n, iters=count)
            seconds = (time.perf_counter() - began) / len(values)
            line = f"{lr:7.2g} {count:6d} {seconds:9.3f}"
            row = {
                "n": n,
                "lr_times_4n": lr * 2**n,
                "iters": count,
                "seconds_per_sample": seconds,
                "start_over_opt_median": float(np.median(start / optimum)),
                "kinds": {},
            }
            for kind in kinds:
                rows = labels == kind
                above = int(result.above_start[rows].sum())
                ratio = result.l1_final[rows] / optimum[rows]
                progress = result.l1_final[rows] / result.l1_start[rows]
                line += (
                    f" | {above:>2d}/{rows.sum():<2d} {progress.max():>12.3f} "
                    f"{np.median(ratio):>11.3f} {ratio.max():>11.3f}"
                )
                row["kinds"][kind] = {
                    "games": int(rows.sum()),
                    "above_start": above,
                    "final_over_start_max": float(progress.max()),
                    "final_over_opt_median": float(np.median(ratio)),
                    "final_over_opt_max": float(ratio.max()),
                }
            rows_out.append(row)
            print(line, flush=True)
    return rows_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="n = 6, two games per kind (CI)")
    parser.add_argument("--n", type=int, nargs="+", help="only these n (of 6, 8, 10)")
    parser.add_argument("--lrs", type=float, nargs="+", help=f"lr·2^n values (default {LRS})")
    parser.add_argument(
        "--lrs-4n", type=float, nargs="+", help="lr·4^n values instead (lr·2^n = value / 2^n)"
    )
    parser.add_argument("--iters", type=int, nargs="+", help=f"iterations (default {ITERS})")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}; float64; qthres 0.02")
    plan = [(6, 2)] if args.quick else [(6, 8), (8, 8), (10, 4)]
    if args.n:
        plan = [(n, per_kind) for n, per_kind in plan if n in args.n]
    lrs, iters = (LRS[::2], ITERS[:1]) if args.quick else (LRS, ITERS)
    lrs, iters = tuple(args.lrs or lrs), tuple(args.iters or iters)
    rows = []
    for n, per_kind in plan:
        at_n = tuple(value / 2**n for value in args.lrs_4n) if args.lrs_4n else lrs
        rows += compare(n, per_kind, at_n, iters)
    if args.json:
        write_table(
            args.json,
            rows,
            default_lr_times_4n=sp.DEFAULT_SGD_LR_TIMES_4N,
            default_iters=sp.DEFAULT_ITERS["sgd"],
        )


if __name__ == "__main__":
    main()
