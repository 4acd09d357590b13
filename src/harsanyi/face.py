"""Both ends of the optimal face: the least and the most high-order equally sparse optima.

The sparse AND-OR decomposition (``harsanyi.sparsify``) often has many optima of equal L1.
Statistics about orders are then not identified by the data: the canonical optimum prefers
low orders by construction.  The optimal face

    F = {(a, o, q) feasible : ‖a‖₁ + ‖o‖₁ ≤ C},   C = L1(canonical optimum)·(1 + tol),

holds every decomposition within ``tol`` of the optimal L1 (the canonical L1 is within
~1e-11 of the optimum, measured in benchmarks/bench_certified.py, and its certificate proves
the gap).  The strength-weighted order W(a, o) = Σ_S |S|·(|a_S| + |o_S|) is linear in the
absolute values, so two LPs give its range over F: with the L1 problem's split
a = a⁺ − a⁻, o = o⁺ − o⁻ (every part ≥ 0) and one extra row Σ(a⁺ + a⁻ + o⁺ + o⁻) ≤ C,

    low end:  minimise  Σ_S |S|·(a⁺_S + a⁻_S + o⁺_S + o⁻_S)   over F,
    high end: maximise  the same.

The minimum is exact.  The maximum may split a coalition into a⁺ and a⁻ both positive, which
costs L1 slack; F allows at most C − OPT of it, so the LP's maximum exceeds the true one by at
most n·(C − OPT).  Each end is reported with W of the returned split (a⁺ − a⁻, o⁺ − o⁻) and
with a proven bound from the LP's dual point y (the multipliers of the rows v_and + v_or −
q = v, as in ``harsanyi.certificate``): for the LP min cᵀx over that feasible set, any y and

    λ(y) = max(0, max_S (|Kᵀy|_S − c_S))    (K: the AND and OR rebuilds, split into ±)

make (y, λ) dual feasible, so ⟨y, v⟩ − ε‖y‖₁ − λ(y)·C ≤ the LP's minimum.  With c = w this
bounds the low end from below; with c = −w it bounds the high end from above.  The end's
``gap`` is the distance between its W and its bound divided by the canonical L1: an error in
units of mean order (W / L1), and the end is ``certified`` when it is at most
``DEFAULT_ORDER_GAP_TOL``.

Everything is solved in the same working units as ``sparsify`` (v divided by its spread over
the masks when the reference result was normalised) and scaled back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import scipy.sparse
import torch

from harsanyi.certificate import and_adjoint, or_adjoint
from harsanyi.masks import n_players_of, orders
from harsanyi.sparsifier import (
    CERTIFIED_SOLVERS,
    LP_METHOD,
    LP_OPTIONS,
    SparsifyResult,
    _lp_matrix,
    _merge_singletons,
    check_lp_options,
    decompose,
    solve_each,
)

# Relative L1 slack that defines the face (docs/interactions.md, "The optimal face").
FACE_TOL = 1e-6
# An end counts as certified when its bound is within this many orders of its mean order.
DEFAULT_ORDER_GAP_TOL = 1e-3
ENDS = ("low", "high")
PRIMAL_SIMPLEX = 4  # HiGHS simplex_strategy: the reference optimum stays primal feasible
# Up to this n the ends are reached fastest by primal simplex from the canonical optimum
# (0.6–1.3× the canonical LP at n = 8); beyond it that path pivots too long (7–15× at n = 10
# on network games) and a cold interior point with crossover is faster (about 2×):
# benchmarks/bench_face.py.
WARM_START_MAX_N = 8
LP_DEFAULT_TOLERANCES = {"primal_feasibility_tolerance": 1e-7, "dual_feasibility_tolerance": 1e-7}


@dataclass
class FaceEnd:
    """One end of the optimal face for B samples; arrays in the units of v.

    I_and, I_or have single-player OR terms merged into AND like ``SparsifyResult``;
    ``weighted_order`` W = Σ|S|·(|I_and| + |I_or|) and ``l1`` are of the LP's split before
    that merge; ``bound`` is a proven bound on the end (≤ W for "low", ≥ W for "high").
    """

    I_and: np.ndarray
    I_or: np.ndarray
    p: np.ndarray
    q: np.ndarray
    l1: np.ndarray
    weighted_order: np.ndarray
    bound: np.ndarray
    gap: np.ndarray  # |W − bound| / canonical L1, in units of mean order

    @property
    def mean_order(self) -> np.ndarray:
        """(B,) W / (L1 without ∅): the end's strength-weighted mean order, ∅ left out."""
        return _ratio(
            self.weighted_order, self.l1 - np.abs(self.I_and[:, 0]) - np.abs(self.I_or[:, 0])
        )


@dataclass
class FaceEnds:
    """The low and high ends of the optimal face of B games, with what defines the face."""

    low: FaceEnd
    high: FaceEnd
    cap: np.ndarray  # (B,) C: the L1 every decomposition on the face stays within
    settings: dict[str, Any]

    @property
    def certified(self) -> np.ndarray:
        """(B,) bool: both ends within ``order_gap_tol`` of their proven bounds."""
        tol = self.settings["order_gap_tol"]
        return (np.nan_to_num(self.low.gap, nan=np.inf) <= tol) & (
            np.nan_to_num(self.high.gap, nan=np.inf) <= tol
        )

    def end(self, which: str) -> FaceEnd:
        if which not in ENDS:
            raise ValueError(f"end must be one of {ENDS}, got {which!r}")
        return self.low if which == "low" else self.high


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    safe = np.where(bottom > 0, bottom, 1.0)
    return np.where(bottom > 0, top / safe, 0.0)


def order_weights(n: int) -> np.ndarray:
    """(4·2^n,) |S| for every part [a⁺, a⁻, o⁺, o⁻] of the LP's split."""
    return np.tile(orders(n).astype(np.float64), 4)


def weighted_order(i_and: np.ndarray, i_or: np.ndarray) -> np.ndarray:
    """(B,) Σ_S |S|·(|I_and(S)| + |I_or(S)|)."""
    order = orders(n_players_of(i_and.shape[-1])).astype(np.float64)
    return (np.abs(i_and) * order).sum(-1) + (np.abs(i_or) * order).sum(-1)


def mean_order(i_and: np.ndarray, i_or: np.ndarray) -> np.ndarray:
    """(B,) Σ_S |S|·(|I_and(S)| + |I_or(S)|) / Σ_{S≠∅} (|I_and(S)| + |I_or(S)|)."""
    strength = np.abs(i_and[:, 1:]).sum(-1) + np.abs(i_or[:, 1:]).sum(-1)
    return _ratio(weighted_order(i_and, i_or), strength)


def end_bound(
    y: np.ndarray, v: np.ndarray, eps: np.ndarray, cap: np.ndarray, cost: np.ndarray
) -> np.ndarray:
    """(B,) a proven lower bound on min cᵀx over the face, from any dual points y (B, 2^n).

    ``cost`` (2^n,) is c_S of one part; the four parts [a⁺, a⁻, o⁺, o⁻] share it (c = ±w).
    """
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float64))
    adjoint = torch.cat((and_adjoint(yt).abs(), or_adjoint(yt).abs()), dim=-1).numpy()
    excess = adjoint - np.tile(cost, 2)[None, :]
    lam = np.maximum(excess.max(-1), 0.0)
    return (y * v).sum(-1) - eps * np.abs(y).sum(-1) - lam * cap


def face_ends(
    v: torch.Tensor | np.ndarray,
    reference: SparsifyResult,
    *,
    tol: float = FACE_TOL,
    order_gap_tol: float = DEFAULT_ORDER_GAP_TOL,
    workers: int | None = None,
    progress: bool = False,
) -> FaceEnds:
    """The two ends of the optimal face of each row of v, around a certified `reference`.

    `reference` is ``sparsify(v, ...)`` with a certified solver ("exact" or "lp"): its qthres
    and normalisation define the problem and its L1 the face (cap = L1·(1 + tol)).  Two LPs
    per sample: up to n = ``WARM_START_MAX_N`` each a primal simplex started from the
    reference optimum (the high end from the low end's basis), beyond it a cold interior
    point with crossover; `workers` samples side by side in threads as in ``sparsify``.
    """
    if reference.solver not in CERTIFIED_SOLVERS:
        raise ValueError(
            f"the optimal face needs a certified optimum (solver in {CERTIFIED_SOLVERS}), "
            f"got solver {reference.solver!r}"
        )
    if not (isinstance(tol, float | int) and 0 <= tol < 1):
        raise ValueError(f"tol must be a number in [0, 1), got {tol!r}")
    qthres = reference.settings["qthres"]
    workers = check_lp_options(qthres, 0.0, LP_METHOD, workers)
    values = np.asarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v, float)
    if values.ndim == 1:
        values = values[None]
    if values.shape != reference.p.shape:
        raise ValueError(
            f"v has shape {values.shape}, the reference decomposition {reference.p.shape}"
        )
    n = n_players_of(values.shape[-1])
    size = 2**n
    if reference.settings.get("normalize", True):
        scale = values.std(axis=-1)
        scale = np.where(scale > 0, scale, 1.0)
    else:
        scale = np.ones(len(values))
    work = values / scale[:, None]
    eps = qthres * np.abs(work[:, -1] - work[:, 0])
    cap = reference.l1_final / scale * (1.0 + tol)

    template = _face_model(n)
    weights = order_weights(n)
    p_work, q_work = reference.p / scale[:, None], reference.q / scale[:, None]
    found = {which: {"p": np.zeros_like(work), "q": np.zeros_like(work)} for which in ENDS}
    duals = {which: np.zeros_like(work) for which in ENDS}
    retries: list[int] = []

    warm = n <= WARM_START_MAX_N

    def solve(k: int) -> None:
        model = _sample_model(template, work[k], eps[k], cap[k])
        start = None
        if warm:
            start = _lp_point(work[k], p_work[k], np.clip(q_work[k], -eps[k], eps[k]), n)
        for which, sign in (("low", 1.0), ("high", -1.0)):
            model.changeColsCost(4 * size, np.arange(4 * size, dtype=np.int32), sign * weights)
            x, y = _run(model, start, warm, k, which, retries)
            start = None  # warm: the high end starts from the low end's basis
            duals[which][k] = y[-size - 1 : -1]
            v_and = x[(4 + n) * size : (5 + n) * size]
            q = np.clip(x[4 * size : 5 * size], -eps[k], eps[k])
            v_or = work[k] + q - v_and
            found[which]["p"][k] = 0.5 * (v_and - v_or) * scale[k]
            found[which]["q"][k] = q * scale[k]

    solve_each(solve, len(work), workers, "optimal face" if progress else None)

    limit = qthres * np.abs(values[:, -1] - values[:, 0])
    ends = {}
    for which, sign in (("low", 1.0), ("high", -1.0)):
        part = found[which]
        q = np.clip(part["q"], -limit[:, None], limit[:, None])
        i_and, i_or = (
            t.numpy()
            for t in decompose(
                torch.from_numpy(values), torch.from_numpy(part["p"]), torch.from_numpy(q)
            )
        )
        l1 = np.abs(i_and).sum(-1) + np.abs(i_or).sum(-1)
        weighted = weighted_order(i_and, i_or)
        bound = sign * end_bound(duals[which], work, eps, cap, sign * orders(n)) * scale
        merged_and, merged_or = _merge_singletons(i_and, i_or)
        ends[which] = FaceEnd(
            I_and=merged_and,
            I_or=merged_or,
            p=part["p"],
            q=q,
            l1=l1,
            weighted_order=weighted,
            bound=bound,
            gap=_ratio(sign * (weighted - bound), reference.l1_final),
        )
    settings = {
        "tol": float(tol),
        "order_gap_tol": float(order_gap_tol),
        "statistic": "sum |S|·(|I_and(S)| + |I_or(S)|)",
        "method": "HiGHS primal simplex from the reference optimum"
        if warm
        else "HiGHS interior point with crossover",
        "loose_tolerance_samples": len(set(retries)),
    }
    return FaceEnds(low=ends["low"], high=ends["high"], cap=cap * scale, settings=settings)


def _face_model(n: int) -> highspy.HighsLp:
    """The face LP without a sample's data: the L1 problem's rows (``_lp_matrix``) and one
    more, Σ(a⁺ + a⁻ + o⁺ + o⁻) ≤ C, in HiGHS's column-wise form."""
    size = 2**n
    equalities = _lp_matrix(n)
    cap_row = scipy.sparse.csr_matrix(
        (np.ones(4 * size), (np.zeros(4 * size, int), np.arange(4 * size))),
        shape=(1, equalities.shape[1]),
    )
    matrix = scipy.sparse.vstack([equalities, cap_row]).tocsc()
    lp = highspy.HighsLp()
    lp.num_row_, lp.num_col_ = matrix.shape
    lp.col_cost_ = np.zeros(matrix.shape[1])
    lower = np.full(matrix.shape[1], -highspy.kHighsInf)
    lower[: 4 * size] = 0.0
    lp.col_lower_ = lower
    lp.col_upper_ = np.full(matrix.shape[1], highspy.kHighsInf)
    lp.row_lower_ = np.zeros(matrix.shape[0])
    lp.row_upper_ = np.zeros(matrix.shape[0])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr
    lp.a_matrix_.index_ = matrix.indices
    lp.a_matrix_.value_ = matrix.data
    return lp


def _sample_model(
    template: highspy.HighsLp, v: np.ndarray, eps: float, cap: float
) -> highspy.Highs:
    size = len(v)
    model = highspy.Highs()
    model.setOptionValue("output_flag", False)
    model.passModel(template)
    rows = template.num_row_
    at = np.arange(rows - 1 - size, rows - 1, dtype=np.int32)
    model.changeRowsBounds(size, at, v, v)
    model.changeRowsBounds(1, np.array([rows - 1], np.int32), [-highspy.kHighsInf], [cap])
    cols = np.arange(4 * size, 5 * size, dtype=np.int32)
    model.changeColsBounds(size, cols, np.full(size, -eps), np.full(size, eps))
    return model


def _run(
    model: highspy.Highs,
    start: np.ndarray | None,
    warm: bool,
    k: int,
    which: str,
    retries: list[int],
) -> tuple[np.ndarray, np.ndarray]:
    """(x, row duals) of the model's optimum: `warm`, primal simplex from `start` (a
    feasible point: the reference optimum) or from the last basis; else a cold interior
    point with crossover (a vertex); once more at HiGHS's default tolerances if the tight
    ones fail numerically (counted in `retries`)."""
    for options in (LP_OPTIONS, {}):
        for option, value in {**LP_DEFAULT_TOLERANCES, **options}.items():
            model.setOptionValue(option, value)
        if warm:
            model.setOptionValue("solver", "simplex")
            model.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX)
        else:
            model.setOptionValue("solver", "ipm")
            model.setOptionValue("run_crossover", "on")
        if start is not None:
            solution = highspy.HighsSolution()
            solution.col_value = start
            solution.value_valid = True
            model.setSolution(solution)
        model.run()
        if model.getModelStatus() == highspy.HighsModelStatus.kOptimal:
            solution = model.getSolution()
            return np.array(solution.col_value), np.array(solution.row_dual)
        retries.append(k)
    status = model.modelStatusToString(model.getModelStatus())
    raise RuntimeError(f"face LP ({which} end) of sample {k} failed: {status}")


def _lp_point(v: np.ndarray, p: np.ndarray, q: np.ndarray, n: int) -> np.ndarray:
    """All variables of ``_lp_matrix``'s layout for the split (p, q) of one game v:
    [a⁺, a⁻, o⁺, o⁻, q, the n zeta layers of I_and, the n zeta layers of I_or without ∅]."""
    size = 2**n
    i_and, i_or = (
        t[0].numpy()
        for t in decompose(
            torch.from_numpy(v[None]), torch.from_numpy(p[None]), torch.from_numpy(q[None])
        )
    )
    parts = [np.maximum(i_and, 0), np.maximum(-i_and, 0), np.maximum(i_or, 0)]
    parts += [np.maximum(-i_or, 0), q]
    for start in (i_and, np.where(np.arange(size) == 0, 0.0, i_or)):
        layer = start.copy()
        for j in range(n):
            bit = 1 << (n - 1 - j)
            view = layer.reshape(2**j, 2, bit)
            view[:, 1] += view[:, 0]
            parts.append(layer.copy())
    return np.concatenate(parts)


def face_datasets(face: FaceEnds) -> dict[str, dict[str, np.ndarray]]:
    """The ends as ``InteractionResults.face`` stores them: {end: {dataset: array}}."""
    return {
        which: {
            "I_and": end.I_and,
            "I_or": end.I_or,
            "p": end.p,
            "q": end.q,
            "l1": end.l1,
            "weighted_order": end.weighted_order,
            "bound": end.bound,
            "gap": end.gap,
        }
        for which, end in (("low", face.low), ("high", face.high))
    }
