"""Benchmark of the sparsifier (run by hand: python benchmarks/bench_sparsify.py).

1. The batched O(n·2^n) reference SGD against a straightforward per-sample implementation of
   the same algorithm with the dense 2^n×2^n AND/OR matrices, at n = 10 and 12.  The dense
   side runs a reduced number of iterations on a few samples; its time is extrapolated per
   iteration and per sample (the cost of one dense iteration does not depend on the data).
   Final L1 agreement is checked on runs of equal length on the same samples.
2. Final L1 of every solver (default settings) relative to the LP optimum on n = 10 games.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from harsanyi import sparsifier as sp
from harsanyi.masks import coalition_matrix
from harsanyi.transforms import dense_and_matrix, dense_or_matrix


def dense_sgd_l1(v: np.ndarray, *, qthres: float, lr: float, iters: int) -> float:
    """Reference SGD for one sample with dense matrices, in the same normalised units."""
    n = v.size.bit_length() - 1
    a, b = dense_and_matrix(n), dense_or_matrix(n)
    a_t, b_t = a.T.contiguous(), b.T.contiguous()
    x = torch.from_numpy(v)
    scale = float(x.std(unbiased=False)) or 1.0
    u = x / scale
    bound = qthres * abs(float(u[-1] - u[0]))
    p, q = torch.zeros_like(u), torch.zeros_like(u)
    velocity_p, velocity_q = torch.zeros_like(u), torch.zeros_like(u)
    lrs = lr * sp.SGD_LR_DECAY ** (-np.arange(iters) / max(iters - 1, 1))
    for t in range(iters):
        q.clamp_(-bound, bound)
        half = 0.5 * (u + q)
        g_and = a_t @ torch.sign(a @ (half + p))
        g_or = b_t @ torch.sign(b @ (half - p))
        velocity_p.mul_(sp.MOMENTUM).add_(g_and - g_or)
        velocity_q.mul_(sp.MOMENTUM).add_(0.5 * (g_and + g_or))
        p.sub_(velocity_p, alpha=float(lrs[t]))
        q.sub_(velocity_q, alpha=float(lrs[t]))
    q.clamp_(-bound, bound)
    half = 0.5 * (u + q)
    l1 = (a @ (half + p)).abs().sum() + (b @ (half - p)).abs().sum()
    return float(l1) * scale


def planted_games(n: int, samples: int, terms: int, rng: np.random.Generator) -> np.ndarray:
    members = coalition_matrix(n).numpy()
    games = np.zeros((samples, 2**n))
    for game in games:
        for k, t in enumerate(rng.choice(np.arange(1, 2**n), size=2 * terms, replace=False)):
            inside = members[:, members[t]]
            game += rng.normal() * (inside.all(1) if k < terms else inside.any(1))
    return games


def speed(n: int, samples: int, iters: int, dense_iters: int, dense_samples: int) -> None:
    rng = np.random.default_rng(n)
    games = rng.normal(size=(samples, 2**n))
    lr = sp.default_lr("sgd", n)
    start = time.perf_counter()
    batched = sp.sparsify(games, solver="sgd", iters=iters)
    batched_s = time.perf_counter() - start

    short = sp.sparsify(games[:dense_samples], solver="sgd", iters=dense_iters)
    start = time.perf_counter()
    dense_l1 = [
        dense_sgd_l1(g, qthres=0.02, lr=lr, iters=dense_iters) for g in games[:dense_samples]
    ]
    dense_measured = time.perf_counter() - start
    dense_s = dense_measured / (dense_samples * dense_iters) * samples * iters
    gap = np.max(np.abs(np.array(dense_l1) / short.l1_final - 1))
    print(
        f"n={n:2d} B={samples:3d} iters={iters:5d} | batched {batched_s:8.2f} s | dense "
        f"{dense_s:9.1f} s (extrapolated from {dense_samples}×{dense_iters} iterations, "
        f"{dense_measured:.1f} s) | ratio {dense_s / batched_s:7.0f}× | "
        f"mean final L1 {batched.l1_final.mean():.2f} | dense vs batched L1 at "
        f"{dense_iters} iters: max rel diff {gap:.1e}"
    )


def full_length_agreement(n: int, iters: int) -> None:
    game = np.random.default_rng(99).normal(size=2**n)
    batched = sp.sparsify(game, solver="sgd", iters=iters).l1_final[0]
    dense = dense_sgd_l1(game, qthres=0.02, lr=sp.default_lr("sgd", n), iters=iters)
    print(
        f"n={n} full run of {iters} iterations: batched L1 {batched:.6f}, dense L1 {dense:.6f}, "
        f"rel diff {abs(dense / batched - 1):.1e}"
    )


def quality(n: int, random_samples: int, planted_samples: int) -> None:
    rng = np.random.default_rng(1)
    games = np.concatenate(
        [rng.normal(size=(random_samples, 2**n)), planted_games(n, planted_samples, 30, rng)]
    )
    kinds = ["random"] * random_samples + ["planted"] * planted_samples
    start = time.perf_counter()
    lp = sp.sparsify(games, solver="lp").l1_final
    print(f"LP on {len(games)} samples at n={n}: {time.perf_counter() - start:.1f} s")
    header = "solver (defaults)      seconds  " + "  ".join(f"{k:>8s}" for k in kinds)
    print(header)
    for solver in ("sgd", "adam", "lp"):
        start = time.perf_counter()
        l1 = lp if solver == "lp" else sp.sparsify(games, solver=solver).l1_final
        seconds = 0.0 if solver == "lp" else time.perf_counter() - start
        gaps = "  ".join(f"{100 * (x / y - 1):+7.2f}%" for x, y in zip(l1, lp, strict=True))
        print(f"{solver:20s} {seconds:9.1f}  {gaps}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}, float64, CPU\n")
    print("Batched vs per-sample dense reference SGD (same settings, default lr):")
    speed(10, samples=64, iters=2000, dense_iters=200, dense_samples=2)
    speed(12, samples=32, iters=2000, dense_iters=20, dense_samples=2)
    full_length_agreement(10, iters=2000)
    print("\nFinal L1 relative to the LP optimum (defaults; planted: 30 AND + 30 OR terms):")
    quality(10, random_samples=4, planted_samples=2)


if __name__ == "__main__":
    main()
