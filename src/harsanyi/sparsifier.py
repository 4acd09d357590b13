"""Sparse AND-OR decomposition of games (the "sparsifier"), batched over samples.

For every sample, v is split into an AND part and an OR part,

    v_and = ½(v + q) + p,    v_or = ½(v + q) − p,    |q_T| ≤ qthres·|v(N) − v(∅)|,

and p, q minimise L = Σ_S |I_and(S)| + Σ_S |I_or(S)| over all 2^n masks (docs/interactions.md).
Samples are independent problems solved side by side in one (B, 2^n) tensor.

Solvers (``SOLVERS``; the result records which one ran):

- ``"sgd"``: the reference. p = q = 0 at the start, SGD with momentum 0.9, learning rate
  decaying log-uniformly from lr to lr/10, q clamped to its bound before each step (and once
  more at the end, so the returned q is feasible). The subgradient is computed explicitly:
  the adjoints of the Möbius and OR transforms are again O(n·2^n) butterflies.
- ``"adam"``: the same loss and clamping with Adam and a learning rate decaying
  log-uniformly over three decades; it reaches a lower L1 than "sgd" in fewer iterations.
- ``"exact"`` (the default): the canonical exact optimum with a certificate.  One
  ``scipy.optimize.linprog`` (HiGHS interior point with crossover) per sample on the LP below,
  with every |I(S)| weighted 1 + δ·w_S, w_S = (|S| + ξ_S)/(n + 1) ∈ [0, 1), ξ_S ∈ [0, 1) a
  fixed pseudo-random number per coalition and part (``canonical_weights``) and
  δ = ``CANONICAL_DELTA``.  Among the L1-optimal decompositions this picks the one of least
  Σ w_S|I(S)| (lower orders first, then a fixed order of coalitions), which is unique for
  generic ξ, so two LP methods, machines or devices return the same salient sets.  Its L1 is
  within δ·OPT of the optimum (and the certificate proves it).
- ``"lp"``: the exact optimum without the tie-break (whichever optimal vertex HiGHS returns).
  In both, p is eliminated (v_and and v_or are free once their sum is pinned to v + q), and
  the zeta transforms are written as n layers of sparse equalities, so the LP has O(n·2^n)
  nonzeros.

Certificates (``harsanyi.certificate``): every result carries, per sample, its L1
(``l1_final``), a lower bound on the optimal L1 and the relative gap (L1 − bound)/L1.  For
"exact" and "lp" the bound comes from the LP's dual solution (the multipliers of the rows
v_and + v_or − q = v), scaled into dual feasibility, so it is a proof, not an estimate;
``certified`` says gap ≤ ``gap_tol``.  "sgd" and "adam" have no dual: their bound and gap are
NaN and no sample is certified.  Nothing is replaced after solving: an iterative solve that
ends at or above its start is returned as it is, flagged per sample (``above_start``) and
counted in ``settings["above_start"]``.

Normalisation (``normalize=True``, the default): each sample is solved in units of
s = std of v over its 2^n masks (s = 1 where v is constant), and p, q, I and the loss are
multiplied by s afterwards. Because L is positively homogeneous this is the same problem,
so one default learning rate works across models and checkpoints.  v(∅) is *not* dropped
from the objective: u = (v − v(∅))/s would change I_and(∅) and I_or(∅) by −v(∅)/2 each
(only those two entries) at fixed p, q, but the terms |I_and(∅)| + |I_or(∅)| of L are not
shift invariant, so the optimum would move.  Solving on v/s is the same as solving on
(v − v(∅))/s while keeping v(∅)/(2s) as an offset inside the two ∅ terms.

After solving, single-player OR terms are merged into AND (I_and(S) += I_or(S), I_or(S) = 0
for |S| = 1); ∅ stays separate.  ``l1_final`` is the L1 before that merge.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse
import torch

from harsanyi.certificate import lower_bound, relative_gap
from harsanyi.masks import n_players_of, orders
from harsanyi.transforms import and_transform, or_transform

MOMENTUM = 0.9
SGD_LR_DECAY = 10.0
ADAM_LR_DECAY = 1000.0
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-12
RECORDED_STEPS = 100
LP_METHOD = "highs-ipm"  # measured 3× faster than dual simplex at n = 10
# Weight of the canonical tie-break: the L1 it may cost is at most δ·OPT (measured ~1e-12),
# and δ/(n + 1) between orders stays far above the LP tolerances (LP_OPTIONS).
CANONICAL_DELTA = 1e-4
# Version of the canonical tie-break (part of an exact extraction's x-<hash>): 1 drew ξ_S from
# a golden-ratio sequence linear in the mask index, 2 from a hash of it (canonical_weights).
CANONICAL_VERSION = 2
DEFAULT_GAP_TOL = 5e-3
LP_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
# Default learning rates in normalised units (see module docstring).  SGD: measured on planted
# games and games of untrained and trained networks at n = 6, 8, 10 (benchmarks/bench_sgd.py),
# the largest rate that ends below its start on all of them shrinks like 4^-n (not 2^-n: at
# lr·2^n = 0.1, 5000 iterations, the old default, most network games ended above their start),
# and 20,000 iterations (the published 10,000–50,000) end closer to the LP optimum than 5000.
DEFAULT_SGD_LR_TIMES_4N = 0.5
DEFAULT_ADAM_LR = 1.0
DEFAULT_ITERS = {"sgd": 20000, "adam": 2000}
# Version of the `sgd` defaults (part of an sgd extraction's x-<hash> where lr or iters is left
# to them): 1 was lr = 0.1/2^n with 5000 iterations; 2 is the above.
SGD_VERSION = 2


@dataclass
class SparsifyResult:
    """Sparse AND-OR decomposition of B games; arrays in the units of v."""

    I_and: np.ndarray  # (B, 2^n), single-player OR terms merged in
    I_or: np.ndarray  # (B, 2^n), zero on single players
    p: np.ndarray  # (B, 2^n)
    q: np.ndarray  # (B, 2^n)
    loss: np.ndarray  # (B, recorded steps) L1 during optimisation
    l1_start: np.ndarray  # (B,) L1 with p = q = 0
    l1_final: np.ndarray  # (B,) L1 of (p, q) before the singleton merge
    solver: str
    settings: dict[str, Any] = field(default_factory=dict)
    lower_bound: np.ndarray | None = None  # (B,) proven lower bound on the optimal L1 (NaN: none)
    gap: np.ndarray | None = None  # (B,) (l1_final − lower_bound) / l1_final (NaN: none)

    @property
    def above_start(self) -> np.ndarray:
        """(B,) bool: an iterative solve ("sgd", "adam") that ended at or above its starting L1
        (p = q = 0), i.e. made no progress; always false for the LP solvers, whose optimum is
        at most the start (and equals it only where the start is optimal)."""
        if self.solver in CERTIFIED_SOLVERS:
            return np.zeros(len(self.l1_final), dtype=bool)
        return np.asarray(self.l1_final) >= np.asarray(self.l1_start)

    @property
    def certified(self) -> np.ndarray:
        """(B,) bool: the sample's gap is proven to be at most the solve's gap_tol."""
        tol = self.settings.get("gap_tol", DEFAULT_GAP_TOL)
        gap = np.full(len(self.l1_final), np.nan) if self.gap is None else self.gap
        return np.nan_to_num(gap, nan=np.inf) <= tol


@dataclass(frozen=True)
class _Options:
    lr: float | None
    iters: int | None
    record_every: int
    progress: bool
    lp_method: str = LP_METHOD
    retries: list[int] = field(default_factory=list)  # samples an LP solved at loose tolerances
    workers: int = 1  # LP solvers: samples solved side by side in threads (HiGHS frees the GIL)


# A solver maps (v, bound, options) in working units to (p, q, loss curve, dual point or None).
Solver = Callable[
    [torch.Tensor, torch.Tensor, _Options],
    tuple[torch.Tensor, torch.Tensor, Any, torch.Tensor | None],
]


# --- transforms in place, on (B, 2^n) contiguous tensors ---------------------------------


def _mobius_(x: torch.Tensor, n: int) -> torch.Tensor:
    for j in range(n):
        y = x.view(x.shape[0], 2**j, 2, 2 ** (n - 1 - j))
        y[:, :, 1] -= y[:, :, 0]
    return x


def _mobius_adjoint_(x: torch.Tensor, n: int) -> torch.Tensor:
    """Superset Möbius: (Mᵀg)(T) = Σ_{S⊇T} (−1)^{|S|−|T|} g(S)."""
    for j in range(n):
        y = x.view(x.shape[0], 2**j, 2, 2 ** (n - 1 - j))
        y[:, :, 0] -= y[:, :, 1]
    return x


def _or(w: torch.Tensor, n: int) -> torch.Tensor:
    out = _mobius_(torch.flip(w, dims=(-1,)), n).neg_()
    out[:, 0] = w[:, 0]
    return out


def _or_adjoint(g: torch.Tensor, n: int) -> torch.Tensor:
    h = g.clone()
    h[:, 0] = 0
    out = torch.flip(_mobius_adjoint_(h, n), dims=(-1,)).neg_()
    out[:, 0] += g[:, 0]
    return out


def _loss_and_grad(
    v: torch.Tensor, p: torch.Tensor, q: torch.Tensor, n: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample L1 and its subgradient with respect to p and q."""
    half = 0.5 * (v + q)
    i_and = _mobius_(half + p, n)
    i_or = _or(half - p, n)
    loss = i_and.abs().sum(-1) + i_or.abs().sum(-1)
    g_and = _mobius_adjoint_(torch.sign(i_and), n)
    g_or = _or_adjoint(torch.sign(i_or), n)
    return loss, g_and - g_or, 0.5 * (g_and + g_or)


def decompose(
    v: torch.Tensor, p: torch.Tensor, q: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(I_and, I_or) of v split by p and q (no singleton merge), batched over leading axes."""
    half = 0.5 * (v + q)
    return and_transform(half + p), or_transform(half - p)


def l1(v: torch.Tensor, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Σ|I_and| + Σ|I_or| per sample."""
    i_and, i_or = decompose(v, p, q)
    return i_and.abs().sum(-1) + i_or.abs().sum(-1)


# --- iterative solvers ---------------------------------------------------------------------


def _log_schedule(lr: float, decay: float, iters: int) -> np.ndarray:
    return lr * decay ** (-np.arange(iters) / max(iters - 1, 1))


def _iterate(
    v: torch.Tensor,
    bound: torch.Tensor,
    opts: _Options,
    update: Callable[[int, torch.Tensor, torch.Tensor], None],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shared loop: clamp q, record the loss, let `update(t, params, grads)` step."""
    n = n_players_of(v.shape[-1])
    params = torch.zeros((2, *v.shape), dtype=v.dtype, device=v.device)  # p, q
    p, q = params[0], params[1]
    lo, hi = -bound[:, None], bound[:, None]
    curve = []
    steps = range(opts.iters or 0)
    if opts.progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="sparsify", leave=False)
    for t in steps:
        torch.clamp(q, lo, hi, out=q)
        loss, grad_p, grad_q = _loss_and_grad(v, p, q, n)
        if t % opts.record_every == 0:
            curve.append(loss)
        update(t, params, torch.stack((grad_p, grad_q)))
    torch.clamp(q, lo, hi, out=q)
    curve.append(_loss_and_grad(v, p, q, n)[0])
    return p, q, torch.stack(curve, dim=-1), None


def _solve_sgd(v: torch.Tensor, bound: torch.Tensor, opts: _Options):
    lrs = _log_schedule(float(opts.lr), SGD_LR_DECAY, int(opts.iters))
    velocity = torch.zeros((2, *v.shape), dtype=v.dtype, device=v.device)

    def update(t: int, params: torch.Tensor, grads: torch.Tensor) -> None:
        velocity.mul_(MOMENTUM).add_(grads)
        params.sub_(velocity, alpha=float(lrs[t]))

    return _iterate(v, bound, opts, update)


def _solve_adam(v: torch.Tensor, bound: torch.Tensor, opts: _Options):
    lrs = _log_schedule(float(opts.lr), ADAM_LR_DECAY, int(opts.iters))
    first = torch.zeros((2, *v.shape), dtype=v.dtype, device=v.device)
    second = torch.zeros_like(first)
    b1, b2 = ADAM_BETAS

    def update(t: int, params: torch.Tensor, grads: torch.Tensor) -> None:
        first.mul_(b1).add_(grads, alpha=1 - b1)
        second.mul_(b2).addcmul_(grads, grads, value=1 - b2)
        step = float(lrs[t]) / (1 - b1 ** (t + 1))
        denom = (second / (1 - b2 ** (t + 1))).sqrt_().add_(ADAM_EPS)
        params.addcdiv_(first, denom, value=-step)

    return _iterate(v, bound, opts, update)


# --- exact LP --------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _lp_matrix(n: int) -> scipy.sparse.csr_matrix:
    """Equality constraints of the LP; variables [a⁺, a⁻, b⁺, b⁻, q, y¹..yⁿ, z¹..zⁿ].

    I_and = a⁺ − a⁻ and I_or = b⁺ − b⁻.  y^{j+1} = zeta layer j of y^j with y⁰ = I_and, so
    yⁿ = v_and; likewise zⁿ = zeta(I_or with ∅ zeroed), and v_or(S) = I_or(∅) + zⁿ(N) −
    zⁿ(N∖S).  The last 2^n rows say v_and + v_or − q = v.
    """
    size = 2**n
    idx = np.arange(size)
    a_pos, a_neg, b_pos, b_neg, q_at = (k * size for k in range(5))
    y_at = [None] + [(5 + j) * size for j in range(n)]
    z_at = [None] + [(5 + n + j) * size for j in range(n)]
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []

    def put(r: np.ndarray, c: np.ndarray, value: float) -> None:
        rows.append(r)
        cols.append(c)
        vals.append(np.full(len(r), value))

    def chain(first_row: int, layer_at: list, pos: int, neg: int, skip_empty: bool) -> None:
        for j in range(n):
            r = first_row + j * size + idx
            put(r, layer_at[j + 1] + idx, 1.0)
            bit = 1 << (n - 1 - j)
            present = idx[(idx & bit) != 0]
            sources = [(r, idx), (first_row + j * size + present, present - bit)]
            for target_rows, source in sources:
                if j == 0:
                    keep = source != 0 if skip_empty else np.ones(len(source), bool)
                    put(target_rows[keep], pos + source[keep], -1.0)
                    put(target_rows[keep], neg + source[keep], 1.0)
                else:
                    put(target_rows, layer_at[j] + source, -1.0)

    chain(0, y_at, a_pos, a_neg, skip_empty=False)
    chain(n * size, z_at, b_pos, b_neg, skip_empty=True)
    last = 2 * n * size + idx
    put(last, y_at[n] + idx, 1.0)
    put(last, np.full(size, b_pos), 1.0)
    put(last, np.full(size, b_neg), -1.0)
    put(last, np.full(size, z_at[n] + size - 1), 1.0)
    put(last, z_at[n] + size - 1 - idx, -1.0)
    put(last, q_at + idx, -1.0)
    shape = ((2 * n + 1) * size, (5 + 2 * n) * size)
    r, c, x = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    return scipy.sparse.coo_matrix((x, (r, c)), shape=shape).tocsr()  # sums duplicates


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: a fixed 64-bit hash, the same on every machine and version."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def canonical_weights(n: int) -> np.ndarray:
    """(4·2^n,) tie-break weights of [a⁺, a⁻, b⁺, b⁻]: w_S = (|S| + ξ_S)/(n + 1) ∈ [0, 1).

    ξ_S ∈ [0, 1) is a hash of (block k, mask S): lower orders win first and every coalition of
    the AND and OR parts has its own weight.  ξ must not be (close to) linear in the bits of S:
    the AND and OR bases are related by alternating sums over subsets (OR_S = Σ_{∅≠T⊆S}
    (−1)^{|T|+1} AND_T), which cancel any weight affine in the bits, so such weights (|S| alone,
    or version 1's golden-ratio sequence in the mask index) leave optimal faces tied and two LP
    methods then returned different salient sets (Jaccard down to 0.82 at n = 8).
    """
    size = 2**n
    order = orders(n).astype(np.float64)
    keys = np.arange(4 * size, dtype=np.uint64)  # block k, mask S → k·2^n + S
    xi = (_splitmix64(keys) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (np.tile(order, 4) + xi) / (n + 1)


def _linprog(cost, matrix, b_eq, bounds, opts: _Options, sample: int, retries: list[int]):
    """HiGHS at tight tolerances (needed by the tie-break); once more at its defaults if that
    fails numerically (counted in `retries`: the certificate still proves the answer)."""
    for options in (LP_OPTIONS, {}):
        res = scipy.optimize.linprog(
            cost,
            A_eq=matrix,
            b_eq=b_eq,
            bounds=bounds,
            method=opts.lp_method,
            options=options,
        )
        if res.status == 0:
            return res
        retries.append(sample)
    raise RuntimeError(f"LP for sample {sample} failed ({opts.lp_method}): {res.message}")


def solve_each(
    solve: Callable[[int], None], count: int, workers: int, progress: str | None = None
) -> None:
    """`solve(k)` for k = 0..count−1, `workers` at a time in threads (HiGHS frees the GIL).

    Each call must be independent of the others (one LP per sample), so the answer does not
    depend on `workers`; `progress`: the description of a progress bar, or None for none.
    """
    bar = None
    if progress is not None:
        from tqdm.auto import tqdm

        bar = tqdm(total=count, desc=progress, leave=False)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, count))) as pool:
        for _ in pool.map(solve, range(count)):
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()


def check_lp_options(qthres, gap_tol: float, lp_method: str, workers: int | None) -> int:
    """ValueError naming a bad qthres, gap_tol, lp_method or workers (the options the exact
    LP solvers share); the number of workers, torch's thread count when None."""
    if not (isinstance(qthres, (int, float)) and math.isfinite(qthres) and qthres >= 0):
        raise ValueError(f"qthres must be a finite number >= 0, got {qthres!r}")
    if not (isinstance(gap_tol, (int, float)) and 0 <= gap_tol < 1):
        raise ValueError(f"gap_tol must be a number in [0, 1), got {gap_tol!r}")
    if lp_method not in ("highs-ipm", "highs-ds", "highs"):
        raise ValueError(f"lp_method must be highs-ipm, highs-ds or highs, got {lp_method!r}")
    if workers is None:
        workers = torch.get_num_threads()
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return workers


def _solve_lp_with(
    v: torch.Tensor, bound: torch.Tensor, opts: _Options, *, canonical: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    n = n_players_of(v.shape[-1])
    size = 2**n
    matrix = _lp_matrix(n)
    cost = np.zeros(matrix.shape[1])
    cost[: 4 * size] = 1.0 + (CANONICAL_DELTA * canonical_weights(n) if canonical else 0.0)
    bounds = np.empty((matrix.shape[1], 2))
    bounds[:, 0], bounds[:, 1] = -np.inf, np.inf
    bounds[: 4 * size, 0] = 0.0
    values = v.detach().cpu().numpy()
    limits = bound.detach().cpu().numpy()
    p_out = np.empty_like(values)
    q_out = np.empty_like(values)
    dual = np.empty_like(values)

    def solve(k: int) -> None:
        b_eq = np.zeros(matrix.shape[0])
        b_eq[-size:] = values[k]
        sample_bounds = bounds.copy()
        sample_bounds[4 * size : 5 * size] = [-limits[k], limits[k]]
        res = _linprog(cost, matrix, b_eq, sample_bounds, opts, k, opts.retries)
        # Multipliers of the rows v_and + v_or − q = v: the dual point y of the certificate.
        dual[k] = res.eqlin.marginals[-size:]
        x = res.x
        v_and = x[(4 + n) * size : (5 + n) * size]
        q = np.clip(x[4 * size : 5 * size], -limits[k], limits[k])
        v_or = values[k] + q - v_and
        p_out[k] = 0.5 * (v_and - v_or)
        q_out[k] = q

    name = "sparsify exact" if canonical else "sparsify lp"
    solve_each(solve, len(values), opts.workers, name if opts.progress else None)
    p = torch.from_numpy(p_out).to(v)
    q = torch.from_numpy(q_out).to(v)
    start = l1(v, torch.zeros_like(v), torch.zeros_like(v))
    return p, q, torch.stack((start, l1(v, p, q)), dim=-1), torch.from_numpy(dual).to(v)


def _solve_lp(v: torch.Tensor, bound: torch.Tensor, opts: _Options):
    return _solve_lp_with(v, bound, opts, canonical=False)


def _solve_exact(v: torch.Tensor, bound: torch.Tensor, opts: _Options):
    return _solve_lp_with(v, bound, opts, canonical=True)


SOLVERS: dict[str, Solver] = {
    "exact": _solve_exact,
    "lp": _solve_lp,
    "sgd": _solve_sgd,
    "adam": _solve_adam,
}
CERTIFIED_SOLVERS = ("exact", "lp")


def default_lr(solver: str, n: int) -> float | None:
    """Default learning rate in normalised units for `solver` on n players."""
    if solver == "sgd":
        return DEFAULT_SGD_LR_TIMES_4N / 4**n
    if solver == "adam":
        return DEFAULT_ADAM_LR
    return None


# --- public entry point ----------------------------------------------------------------------


def _as_batch(v: torch.Tensor | np.ndarray, device, dtype: torch.dtype) -> torch.Tensor:
    t = v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
    if device is None:
        device = t.device
    t = t.detach().to(device=device, dtype=dtype)
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2:
        raise ValueError(f"v must have shape (samples, 2^n) or (2^n,), got {tuple(t.shape)}")
    n_players_of(t.shape[-1])
    if not torch.isfinite(t).all():
        bad = torch.nonzero(~torch.isfinite(t))[0].tolist()
        raise ValueError(f"v holds a non-finite value at (sample, mask) = {tuple(bad)}")
    return t.contiguous()


def _merge_singletons(i_and: np.ndarray, i_or: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    single = orders(n_players_of(i_and.shape[-1])) == 1
    i_and, i_or = i_and.copy(), i_or.copy()
    i_and[:, single] += i_or[:, single]
    i_or[:, single] = 0.0
    return i_and, i_or


def sparsify(
    v: torch.Tensor | np.ndarray,
    *,
    qthres: float = 0.02,
    lr: float | None = None,
    iters: int | None = None,
    solver: str = "exact",
    normalize: bool = True,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    dtype: torch.dtype = torch.float64,
    gap_tol: float = DEFAULT_GAP_TOL,
    lp_method: str = LP_METHOD,
    workers: int | None = None,
) -> SparsifyResult:
    """Sparse AND-OR decomposition of each row of v (shape (samples, 2^n) or (2^n,)).

    The default solver, "exact", returns the canonical optimum with a certificate per sample
    (`lower_bound`, `gap`, `certified`: gap ≤ `gap_tol`).  lr and iters (iterative solvers
    only) default to `default_lr(solver, n)` and `DEFAULT_ITERS[solver]`, in normalised units
    when `normalize` is true (see module docstring).  `lp_method` is the HiGHS method of the
    LP solvers ("highs-ipm" or "highs-ds").  `batch_size` bounds how many samples are solved
    at once (memory only; results do not depend on it).  `workers`: samples the LP solvers
    solve side by side in threads (default: torch's thread count, which a workflow job sets
    to the threads it was given; results do not depend on it).
    """
    if solver not in SOLVERS:
        raise ValueError(f"unknown solver {solver!r}; known solvers: {sorted(SOLVERS)}")
    workers = check_lp_options(qthres, gap_tol, lp_method, workers)
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if iters is not None and (not isinstance(iters, int) or iters < 1):
        raise ValueError(f"iters must be a positive integer, got {iters!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    values = _as_batch(v, device, dtype)
    n = n_players_of(values.shape[-1])
    iterative = solver not in CERTIFIED_SOLVERS
    lr = (lr if lr is not None else default_lr(solver, n)) if iterative else None
    iters = (iters if iters is not None else DEFAULT_ITERS[solver]) if iterative else None
    record_every = max(1, (iters or 1) // RECORDED_STEPS)
    opts = _Options(
        lr=lr,
        iters=iters,
        record_every=record_every,
        progress=progress,
        lp_method=lp_method,
        workers=workers,
    )

    if normalize:
        scale = values.std(dim=-1, unbiased=False)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    else:
        scale = torch.ones(values.shape[0], dtype=values.dtype, device=values.device)
    work = values / scale[:, None]
    bound = qthres * (work[:, -1] - work[:, 0]).abs()

    chunk = batch_size or len(work)
    parts = [
        SOLVERS[solver](work[k : k + chunk], bound[k : k + chunk], opts)
        for k in range(0, len(work), chunk)
    ]
    p = torch.cat([part[0] for part in parts]) * scale[:, None]
    # Rescaling may push q past its bound by a rounding error; the bound is a hard one.
    limit = qthres * (values[:, -1] - values[:, 0]).abs()
    q = torch.clamp(
        torch.cat([part[1] for part in parts]) * scale[:, None], -limit[:, None], limit[:, None]
    )
    curve = torch.cat([part[2] for part in parts]) * scale[:, None]

    i_and, i_or = decompose(values, p, q)
    l1_final_t = i_and.abs().sum(-1) + i_or.abs().sum(-1)
    l1_start_t = l1(values, torch.zeros_like(values), torch.zeros_like(values))
    if iterative:
        bound_t = torch.full_like(l1_final_t, float("nan"))
        gap_t = torch.full_like(l1_final_t, float("nan"))
    else:
        # The dual point is in working units; the bound scales with v like the L1 does.
        dual = torch.cat([part[3] for part in parts])
        bound_t = lower_bound(dual, work, bound) * scale
        gap_t = relative_gap(l1_final_t, bound_t)
    merged_and, merged_or = _merge_singletons(i_and.cpu().numpy(), i_or.cpu().numpy())
    settings: dict[str, Any] = {
        "solver": solver,
        "qthres": float(qthres),
        "lr": lr,
        "iters": iters,
        "normalize": bool(normalize),
        "dtype": str(dtype).removeprefix("torch."),
        "record_every": record_every if iterative else None,
        "n_players": n,
        "merge_singleton_or": True,
        "certified": not iterative,
        "gap_tol": float(gap_tol),
    }
    if solver == "sgd":
        settings.update(momentum=MOMENTUM, lr_decay=SGD_LR_DECAY)
    elif solver == "adam":
        settings.update(betas=list(ADAM_BETAS), eps=ADAM_EPS, lr_decay=ADAM_LR_DECAY)
    else:
        settings.update(method=lp_method, loose_tolerance_samples=len(opts.retries))
        if solver == "exact":
            settings.update(
                canonical="least order-weighted L1",
                canonical_delta=CANONICAL_DELTA,
                canonical_version=CANONICAL_VERSION,
            )
    result = SparsifyResult(
        I_and=merged_and,
        I_or=merged_or,
        p=p.cpu().numpy(),
        q=q.cpu().numpy(),
        loss=curve.cpu().numpy(),
        l1_start=l1_start_t.cpu().numpy(),
        l1_final=l1_final_t.cpu().numpy(),
        solver=solver,
        settings=settings,
        lower_bound=bound_t.cpu().numpy(),
        gap=gap_t.cpu().numpy(),
    )
    result.settings["above_start"] = int(result.above_start.sum())
    if not iterative:
        result.settings["uncertified"] = int((~result.certified).sum())
    return result
