"""A batched interior point on the dense normal equations, against `exact` (the GPU route).

Run: python benchmarks/bench_interior_point.py [--n 8 10] [--per-kind 3] [--device cuda]
     [--workers W] [--json FILE]

A lead for the GPU target of the sparsifier (≥ 1,000 samples/s at n = 10), not used by the
library.  The canonical LP of `sparsify(solver="exact")` in standard form: a⁺, a⁻, o⁺, o⁻ ≥ 0
with the tie-break costs 1 + δ·w, s = q + ε ∈ [0, 2ε], and Z_and(a⁺ − a⁻) + Z_or(o⁺ − o⁻) − s =
v − ε.  Mehrotra's predictor-corrector solves it for a batch of samples at once in torch.  Its
Newton systems are the dense 2^n × 2^n normal equations

    Z_and D_and Z_andᵀ + Z_or D_or Z_orᵀ + D_s,

whose (S, T) entry is (ζd)(S ∩ T) for the AND part (ζ: subset sums) and, for the OR part,
d(∅) + g(N) − g(N∖S) − g(N∖T) + g(N∖(S ∪ T)) with g the subset sums of d off ∅: one zeta
transform and a gather each, so the matrix forms in O(4^n) and is factored by one batched
Cholesky per iteration (one step of iterative refinement with the butterflies).  A sample stops
at relative gap and infeasibilities ≤ --tol; the best iterate is kept.

Its answer is made exactly feasible (`certificate.feasible_split`) and certified by the
library's certificate from its dual point, and compared with `exact` (HiGHS, on the CPU): L1,
gap, salient-set Jaccard and the largest |ΔI| relative to max|I|.  An interior point converges
to the canonical vertex only in the limit, so these last two say how far it is from canonical.
`--json FILE` also writes the table for the documentation (docs/numbers/, rendered by
scripts/docs_numbers.py), each row with the device it ran on.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from bench_certified import benchmark_games, jaccard, salient, salient_sets
from records import write_table

from harsanyi import certificate as ct
from harsanyi import sparsifier as sp

STEP = 0.995  # fraction of the step to the boundary


class NormalEquations:
    """Index maps that turn subset sums of a diagonal into the dense normal matrix."""

    def __init__(self, n: int, device: torch.device):
        size = 2**n
        masks = torch.arange(size, device=device)
        self.meet = (masks[:, None] & masks[None, :]).reshape(-1)  # S ∩ T
        self.outside_both = ((size - 1) ^ (masks[:, None] | masks[None, :])).reshape(-1)
        self.outside = (size - 1) ^ masks  # N ∖ S

    def matrix(self, d_and: torch.Tensor, d_or: torch.Tensor, d_s: torch.Tensor) -> torch.Tensor:
        batch, size = d_and.shape
        zeta = ct.and_part(d_and)  # subset sums
        m = zeta[:, self.meet].view(batch, size, size)
        off_empty = d_or.clone()
        off_empty[:, 0] = 0
        g = ct.and_part(off_empty)
        m += g[:, self.outside_both].view(batch, size, size)
        g_out = g[:, self.outside]
        m -= g_out[:, :, None]
        m -= g_out[:, None, :]
        m += (d_or[:, :1] + g[:, -1:])[:, :, None]
        m.diagonal(dim1=1, dim2=2).add_(d_s)
        return m


def rebuild(x: torch.Tensor, size: int) -> torch.Tensor:
    """K x for x = [a⁺, a⁻, o⁺, o⁻]."""
    a = x[:, :size] - x[:, size : 2 * size]
    o = x[:, 2 * size : 3 * size] - x[:, 3 * size :]
    return ct.rebuild(a, o)


def adjoint(y: torch.Tensor) -> torch.Tensor:
    """Kᵀ y for the four blocks."""
    and_price, or_price = ct.and_adjoint(y), ct.or_adjoint(y)
    return torch.cat([and_price, -and_price, or_price, -or_price], dim=1)


def step_to_boundary(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """(B,) the largest α ≤ 1 with every value + α·change ≥ 0."""
    alpha = torch.ones(pairs[0][0].shape[0], dtype=pairs[0][0].dtype, device=pairs[0][0].device)
    for value, change in pairs:
        ratio = torch.where(change < 0, -value / change, torch.full_like(value, torch.inf))
        alpha = torch.minimum(alpha, ratio.amin(dim=1))
    return alpha


@dataclass
class NewtonSystem:
    """One iteration's linearisation: the iterate, its residuals, scalings and the factor."""

    x: torch.Tensor
    s: torch.Tensor
    t: torch.Tensor
    z: torch.Tensor
    zs: torch.Tensor
    r: torch.Tensor
    r_primal: torch.Tensor
    r_dual: torch.Tensor
    r_dual_s: torch.Tensor
    r_upper: torch.Tensor
    theta: torch.Tensor
    theta_s: torch.Tensor
    factor: torch.Tensor  # Cholesky factor of the normal matrix

    def solve(self, rhs: torch.Tensor) -> torch.Tensor:
        return torch.cholesky_solve(rhs.unsqueeze(-1), self.factor).squeeze(-1)

    def direction(self, target_xz: torch.Tensor, target_s: torch.Tensor, target_t: torch.Tensor):
        """Newton step for x∘z, s∘zs and t∘r changed by the targets (dx, ds, dt, dy, dz, dzs,
        dr)."""
        x, s, t, z, zs, r = self.x, self.s, self.t, self.z, self.zs, self.r
        theta, theta_s, size = self.theta, self.theta_s, self.x.shape[1] // 4
        g = self.r_dual - target_xz / x
        g_s = self.r_dual_s - target_s / s + (target_t - r * self.r_upper) / t
        rhs = self.r_primal + rebuild(theta * g, size) - theta_s * g_s
        dy = self.solve(rhs)
        # One step of iterative refinement with the exact operator (butterflies).
        dy = dy + self.solve(rhs - (rebuild(theta * adjoint(dy), size) + theta_s * dy))
        dx = theta * (adjoint(dy) - g)
        ds = theta_s * (-dy - g_s)
        dz = (target_xz - z * dx) / x
        dzs = (target_s - zs * ds) / s
        dt = self.r_upper - ds
        dr = (target_t - r * dt) / t
        return dx, ds, dt, dy, dz, dzs, dr


def interior_point(
    v: torch.Tensor, eps: torch.Tensor, cost: torch.Tensor, tol: float, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(a, o, dual y, iterations per sample) of the canonical LP, batched over the rows of v."""
    batch, size = v.shape
    equations = NormalEquations(size.bit_length() - 1, v.device)
    like = {"dtype": v.dtype, "device": v.device}
    c = cost.to(**like)[None, :].expand(batch, -1)
    b = v - eps[:, None]
    u = 2 * eps[:, None].expand(batch, size)
    x, z = torch.ones(batch, 4 * size, **like), torch.ones(batch, 4 * size, **like)
    s, t = u / 2, u / 2  # s + t = u
    zs, r = torch.ones(batch, size, **like), torch.ones(batch, size, **like)
    y = torch.zeros(batch, size, **like)
    scale_b = 1 + b.abs().amax(dim=1)
    scale_c = 1 + c.abs().amax(dim=1)
    best = [x.clone(), y.clone()]
    best_merit = torch.full((batch,), torch.inf, **like)
    iterations = torch.full((batch,), max_iter, device=v.device)
    active = torch.ones(batch, dtype=torch.bool, device=v.device)
    for it in range(max_iter):
        r_primal = b - (rebuild(x, size) - s)
        r_dual = c - adjoint(y) - z
        r_dual_s = y - zs + r
        r_upper = u - s - t
        primal_obj = (c * x).sum(1)
        dual_obj = (b * y).sum(1) - (u * r).sum(1)
        merit = torch.stack(
            [
                (primal_obj - dual_obj).abs() / (1 + primal_obj.abs()),
                torch.maximum(r_primal.abs().amax(1), r_upper.abs().amax(1)) / scale_b,
                torch.maximum(r_dual.abs().amax(1), r_dual_s.abs().amax(1)) / scale_c,
            ]
        ).amax(dim=0)
        better = active & (merit < best_merit)
        best_merit = torch.where(better, merit, best_merit)
        best[0] = torch.where(better[:, None], x, best[0])
        best[1] = torch.where(better[:, None], y, best[1])
        finished = active & (merit <= tol)
        iterations = torch.where(finished, torch.full_like(iterations, it), iterations)
        active &= ~finished
        if not bool(active.any()):
            break
        keep = active.to(v.dtype)[:, None]
        theta = x / z
        theta_s = 1.0 / (zs / s + r / t)
        normal = equations.matrix(
            theta[:, :size] + theta[:, size : 2 * size],
            theta[:, 2 * size : 3 * size] + theta[:, 3 * size :],
            theta_s,
        )
        normal.diagonal(dim1=1, dim2=2).mul_(1 + 1e-14)
        factor = torch.linalg.cholesky_ex(normal)[0]

        newton = NewtonSystem(
            x, s, t, z, zs, r, r_primal, r_dual, r_dual_s, r_upper, theta, theta_s, factor
        )
        direction = newton.direction

        mu = ((x * z).sum(1) + (s * zs).sum(1) + (t * r).sum(1)) / (6 * size)
        dx, ds, dt, dy, dz, dzs, dr = direction(-x * z, -s * zs, -t * r)
        a_p = step_to_boundary([(x, dx), (s, ds), (t, dt)])[:, None]
        a_d = step_to_boundary([(z, dz), (zs, dzs), (r, dr)])[:, None]
        mu_affine = (
            ((x + a_p * dx) * (z + a_d * dz)).sum(1)
            + ((s + a_p * ds) * (zs + a_d * dzs)).sum(1)
            + ((t + a_p * dt) * (r + a_d * dr)).sum(1)
        ) / (6 * size)
        sigma_mu = ((mu_affine / mu) ** 3 * mu)[:, None]
        dx, ds, dt, dy, dz, dzs, dr = direction(
            sigma_mu - x * z - dx * dz, sigma_mu - s * zs - ds * dzs, sigma_mu - t * r - dt * dr
        )
        a_p = torch.clamp(STEP * step_to_boundary([(x, dx), (s, ds), (t, dt)]), max=1.0)[:, None]
        a_d = torch.clamp(STEP * step_to_boundary([(z, dz), (zs, dzs), (r, dr)]), max=1.0)[:, None]
        a_p, a_d = a_p * keep, a_d * keep
        x, s, t = x + a_p * dx, s + a_p * ds, t + a_p * dt
        y, z, zs, r = y + a_d * dy, z + a_d * dz, zs + a_d * dzs, r + a_d * dr
    x, y = best
    a = x[:, :size] - x[:, size : 2 * size]
    o = x[:, 2 * size : 3 * size] - x[:, 3 * size :]
    return a, o, y, iterations


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"


def compare(
    n: int, per_kind: int, device: torch.device, tol: float, max_iter: int, workers: int
) -> list[dict]:
    """Prints the table of games of `n` players and returns its rows."""
    kinds = benchmark_games(n, per_kind)
    cost = torch.from_numpy(1.0 + sp.CANONICAL_DELTA * sp.canonical_weights(n))
    threads = f"{workers} worker thread" + ("s" if workers != 1 else "")
    print(f"\nn = {n}: {per_kind} games per kind; exact on the CPU with {threads}")
    print(
        f"{'games':14s} {'exact s/sample':>14s} {'ipm samples/s':>13s} {'iterations':>10s} "
        f"{'reached tol':>11s} {'L1/OPT-1 worst':>14s} {'max gap':>8s} {'Jaccard min':>11s} "
        f"{'mean':>6s} {'max|dI|/max|I|':>14s}"
    )
    rows = []
    for kind, games in kinds.items():
        start = time.perf_counter()
        exact = sp.sparsify(games, solver="exact", workers=workers)
        exact_seconds = (time.perf_counter() - start) / len(games)
        values = torch.from_numpy(games.astype(np.float64)).to(device)
        scale = values.std(dim=1, unbiased=False)
        work = values / scale[:, None]
        eps = 0.02 * (work[:, -1] - work[:, 0]).abs()
        interior_point(work[:1], eps[:1], cost, tol, 2)  # warm-up (kernels, allocator)
        synchronize(device)
        start = time.perf_counter()
        a, o, y, iterations = interior_point(work, eps, cost, tol, max_iter)
        synchronize(device)
        rate = len(games) / (time.perf_counter() - start)
        a, o, q = ct.feasible_split(a, o, work, eps)
        l1 = (ct.l1_of(a, o) * scale).cpu().numpy()
        bound = (ct.lower_bound(y, work, eps) * scale).cpu().numpy()
        i_and, i_or = sp._merge_singletons(
            (a * scale[:, None]).cpu().numpy(), (o * scale[:, None]).cpu().numpy()
        )
        overlap = jaccard(salient_sets(i_and, i_or), salient(exact))
        largest = np.maximum(np.abs(exact.I_and).max(1), np.abs(exact.I_or).max(1))
        change = np.maximum(np.abs(i_and - exact.I_and).max(1), np.abs(i_or - exact.I_or).max(1))
        reached = int((iterations < max_iter).sum())
        iters = iterations.cpu().numpy()
        row = {
            "device": device_name(device),
            "n": n,
            "games": kind,
            "samples": len(games),
            "workers": workers,
            "exact_s": exact_seconds,
            "ipm_per_s": rate,
            "iterations_median": int(np.median(iters)),
            "iterations_max": int(iters.max()),
            "reached": reached,
            "excess_worst": float((l1 / exact.l1_final - 1).max()),
            "max_gap": float(((l1 - bound) / l1).max()),
            "jaccard_min": float(overlap.min()),
            "jaccard_mean": float(overlap.mean()),
            "change": float((change / largest).max()),
        }
        print(
            f"{kind:14s} {exact_seconds:14.3f} {rate:13.1f} {row['iterations_median']:4d}-"
            f"{row['iterations_max']:<5d} {reached:5d}/{len(games):<5d} "
            f"{row['excess_worst']:+14.1e} {row['max_gap']:8.1e} "
            f"{overlap.min():11.3f} {overlap.mean():6.3f} {row['change']:14.1e}"
        )
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[8, 10])
    parser.add_argument("--per-kind", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tol", type=float, default=1e-8)
    parser.add_argument("--max-iter", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="exact: samples side by side"
    )
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = device_name(device)
    print(f"device: {name}; torch {torch.__version__}; threads {torch.get_num_threads()}; float64")
    print(f"interior point to {args.tol:g} (at most {args.max_iter} iterations); the batch of each")
    print("kind is solved at once; iterations: median-max; 'reached tol': samples that did")
    rows = [
        row
        for n in args.n
        for row in compare(n, args.per_kind, device, args.tol, args.max_iter, args.workers)
    ]
    if args.json:
        write_table(args.json, rows, torch=torch.__version__, tol=args.tol, max_iter=args.max_iter)


if __name__ == "__main__":
    main()
