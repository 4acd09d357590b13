"""A batched first-order solver (ADMM) against the exact canonical LP, side by side.

Run: python benchmarks/bench_first_order.py [--n 8 10] [--per-kind 4] [--rho 10] [--ratio 10]
     [--json FILE]

Why `exact` (one HiGHS LP per sample) stays the default: this is the best batched
first-order method we found for the certified decomposition, measured on the games of
bench_certified.py (random, planted, an MLP on digits untrained and trained), in float64 on
the CPU.  ADMM splits min ‖x‖₁ s.t. |Kx − v| ≤ ε (x = (I_and, I_or), K = Z_and ⊕ Z_or, the
problem of harsanyi.certificate) into x = w (soft threshold) and Kx = z (clip to the box);
the x-update (r·I + KᵀK)x = … is solved exactly with Woodbury through one dense
(r·I + KKᵀ)⁻¹ of size 2^n per n, so the ill-conditioning of K (condition ~φ^{2n}) that stalls
PDHG does not enter.  Every 50 iterations each sample is certified with the library's own
certificate (an upper bound from `feasible_split`, a lower bound from the dual point
y = −ρμ); a sample stops at gap ≤ 0.5 %.  The table reports seconds per sample, iterations to
the certificate, and the salient-set Jaccard of the certified answer against `exact`'s.
`--json FILE` also writes the table for the documentation (docs/numbers/, rendered by
scripts/docs_numbers.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from bench_certified import benchmark_games, jaccard, salient, salient_sets
from records import write_table

from harsanyi import certificate as ct
from harsanyi import sparsifier as sp

DTYPE = torch.float64
CHECK_EVERY = 50


def rebuild(x: torch.Tensor, size: int) -> torch.Tensor:
    return ct.rebuild(x[:, :size].contiguous(), x[:, size:].contiguous())


def adjoint(y: torch.Tensor) -> torch.Tensor:
    return torch.cat([ct.and_adjoint(y), ct.or_adjoint(y)], dim=1)


def woodbury_inverse(n: int, ratio: float) -> torch.Tensor:
    """(r·I + KKᵀ)⁻¹, (2^n, 2^n)."""
    size = 2**n
    k = rebuild(torch.eye(2 * size, dtype=DTYPE), size).T  # column j = K e_j
    gram = k @ k.T + ratio * torch.eye(size, dtype=DTYPE)
    return torch.cholesky_inverse(torch.linalg.cholesky(gram))


def admm(
    v: torch.Tensor, eps: torch.Tensor, rho: float, ratio: float, iters: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(I_and, I_or, iterations to the certificate or −1) of B games in normalised units."""
    count, size = v.shape
    inverse = woodbury_inverse(size.bit_length() - 1, ratio)
    x_out = torch.zeros(count, 2 * size, dtype=DTYPE)
    used = np.full(count, -1)
    live = torch.arange(count)
    w = torch.zeros(count, 2 * size, dtype=DTYPE)
    u = torch.zeros_like(w)
    z, mu = v.clone(), torch.zeros_like(v)
    lo, hi = v - eps[:, None], v + eps[:, None]
    for it in range(1, iters + 1):
        g = ratio * rho * (w - u) + rho * adjoint(z - mu)
        x = (g - adjoint(rebuild(g, size) @ inverse)) / (ratio * rho)
        w_new = torch.sign(x + u) * torch.clamp((x + u).abs() - 1.0 / (ratio * rho), min=0.0)
        kx = rebuild(x, size)
        z = torch.minimum(torch.maximum(kx + mu, lo), hi)
        u = u + x - w_new
        mu = mu + kx - z
        w = w_new
        if it % CHECK_EVERY and it != iters:
            continue
        a, o, _ = ct.feasible_split(w[:, :size], w[:, size:], v[live], eps[live])
        upper = ct.l1_of(a, o)
        lower = ct.lower_bound(-rho * mu, v[live], eps[live])
        done = (ct.relative_gap(upper, lower) <= tol) | (it == iters)
        finished = live[done]
        x_out[finished] = torch.cat([a, o], dim=1)[done]
        used[finished.numpy()] = it if it < iters else -1
        keep = ~done
        live, w, u, z, mu, lo, hi = (t[keep] for t in (live, w, u, z, mu, lo, hi))
        if len(live) == 0:
            break
    return x_out[:, :size], x_out[:, size:], used


def compare(n: int, per_kind: int, rho: float, ratio: float, iters: int) -> list[dict]:
    """Prints the table of games of `n` players and returns its rows."""
    kinds = benchmark_games(n, per_kind)
    print(f"\nn = {n}: {per_kind} games per kind; ADMM rho = {rho}, r = {ratio}, ≤ {iters} it.")
    print(
        f"{'games':14s} {'exact s/sample':>14s} {'ADMM s/sample':>13s} {'iterations':>16s} "
        f"{'certified':>9s} {'L1/OPT-1 worst':>14s} {'Jaccard mean':>12s} {'min':>6s}"
    )
    rows = []
    for kind, games in kinds.items():
        start = time.perf_counter()
        exact = sp.sparsify(games, solver="exact", workers=1)
        exact_seconds = (time.perf_counter() - start) / len(games)
        values = torch.from_numpy(games).to(DTYPE)
        scale = values.std(dim=1, keepdim=True)
        v = values / scale
        eps = 0.02 * (v[:, -1] - v[:, 0]).abs()
        start = time.perf_counter()
        i_and, i_or, used = admm(v, eps, rho, ratio, iters, sp.DEFAULT_GAP_TOL)
        admm_seconds = (time.perf_counter() - start) / len(games)
        excess = ct.l1_of(i_and, i_or).numpy() * scale[:, 0].numpy() / exact.l1_final - 1
        merged = sp._merge_singletons((i_and * scale).numpy(), (i_or * scale).numpy())
        overlap = jaccard(salient_sets(*merged), salient(exact))
        reached = used[used > 0]
        steps = f"{int(np.median(reached))} / {reached.max()}" if len(reached) else "—"
        print(
            f"{kind:14s} {exact_seconds:14.3f} {admm_seconds:13.3f} {steps:>16s} "
            f"{len(reached):4d}/{len(games):<4d} {excess.max():+14.2e} "
            f"{overlap.mean():12.3f} {overlap.min():6.3f}"
        )
        rows.append(
            {
                "n": n,
                "games": kind,
                "exact_s": exact_seconds,
                "admm_s": admm_seconds,
                "iterations_median": int(np.median(reached)) if len(reached) else None,
                "iterations_max": int(reached.max()) if len(reached) else None,
                "certified": len(reached),
                "samples": len(games),
                "jaccard_mean": float(overlap.mean()),
                "jaccard_min": float(overlap.min()),
                "excess_worst": float(excess.max()),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[8, 10])
    parser.add_argument("--per-kind", type=int, default=4)
    parser.add_argument("--rho", type=float, default=10.0)
    parser.add_argument("--ratio", type=float, default=10.0)
    parser.add_argument("--iters", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}; float64; certificate gap ≤ 0.5 %")
    print("iterations: median / max over the samples that reached the certificate")
    rows = [
        row for n in args.n for row in compare(n, args.per_kind, args.rho, args.ratio, args.iters)
    ]
    if args.json:
        write_table(args.json, rows, rho=args.rho, ratio=args.ratio, iters=args.iters)


if __name__ == "__main__":
    main()
