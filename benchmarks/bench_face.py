"""Cost and width of the optimal face's two ends, beside the canonical optimum they start from.

Run: python benchmarks/bench_face.py [--n 8 10] [--per-kind 4]

On the sparsifier benchmarks' games (random, planted, an MLP on digits untrained and
trained; bench_certified.benchmark_games), one thread: seconds per sample of the canonical
`exact` solve and of `face_ends` (both ends), their ratio, the mean order (W / L1, ∅ left
out) of the
canonical optimum and of the two ends, how many samples' ends are certified, and the largest
gap of an end in orders. `--json FILE` also writes the table for the documentation
(docs/numbers/, rendered by scripts/docs_numbers.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from bench_certified import benchmark_games
from records import write_table

from harsanyi import sparsify
from harsanyi.face import face_ends, mean_order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[8, 10])
    parser.add_argument("--per-kind", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"{'n':>2} {'games':14s} {'exact s/sample':>14s} {'face s/sample':>13s} {'ratio':>6s} "
        f"{'mean order: low end / canonical / high end (median)':>52s} {'certified':>9s} "
        f"{'max gap':>8s}"
    )
    rows = []
    for n in args.n:
        for kind, v in benchmark_games(n, args.per_kind).items():
            start = time.perf_counter()
            reference = sparsify(v, workers=1)
            exact = (time.perf_counter() - start) / len(v)
            start = time.perf_counter()
            face = face_ends(v, reference, workers=1)
            cost = (time.perf_counter() - start) / len(v)
            canonical = mean_order(reference.I_and, reference.I_or)
            orders = [np.median(m) for m in (face.low.mean_order, canonical, face.high.mean_order)]
            worst = max(np.nanmax(face.low.gap), np.nanmax(face.high.gap))
            print(
                f"{n:>2} {kind:14s} {exact:>14.3f} {cost:>13.3f} {cost / exact:>5.2f}× "
                f"{orders[0]:>22.2f} / {orders[1]:.2f} / {orders[2]:.2f}{'':>16s} "
                f"{int(face.certified.sum()):>4d}/{len(v):<4d} {worst:>8.1e}"
            )
            rows.append(
                {
                    "n": n,
                    "games": kind,
                    "exact_s": exact,
                    "face_s": cost,
                    "mean_order": [float(o) for o in orders],
                    "certified": int(face.certified.sum()),
                    "samples": len(v),
                    "max_gap": float(worst),
                }
            )
    if args.json:
        write_table(args.json, rows)


if __name__ == "__main__":
    main()
