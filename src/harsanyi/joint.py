"""Joint AND-OR extraction for K models on the same samples and players, with a certificate.

Chen et al. (ICLR 2024) extract the interactions several models share by decomposing their
games on one sample *jointly*.  For models m = 1..K with games v_m (same sample, same
players, same baseline and output) and per-model decompositions a_m = I_and,m, o_m = I_or,m,

    minimise  Σ_{op∈{and,or}} Σ_S [(1 − α)·max_m |I_op,m(S)| + α·Σ_m |I_op,m(S)|]
    s.t.      K(a_m, o_m) − q_m = v_m,   |q_m| ≤ ε_m = qthres·|v_m(N) − v_m(∅)|   (each m),

with K(a, o) = Z_and a + Z_or o as in `harsanyi.certificate`.  The max over models is a
group sparsity: a coalition one model uses is free (up to α) for the others, so the models
are pulled onto a common set.  α = 1 decouples the models (the objective is the sum of their
single-model L1s); α → 0 is the pure group-ℓ∞ penalty.  α must be in (0, 1]: at α = 0 the
non-maximal models' terms cost nothing and the decomposition is not determined.

LP (solved exactly by HiGHS, one problem per sample): one copy of the layered formulation of
`harsanyi.sparsifier._lp_matrix(n)` per model (variables a±, b±, q and 2n zeta layers), plus
shared variables t_and(S), t_or(S) ≥ 0 with rows a⁺_m(S) + a⁻_m(S) ≤ t_and(S) and
b⁺_m(S) + b⁻_m(S) ≤ t_or(S).  Cost: (1 − α)·Σ t + α·Σ_m (a⁺ + a⁻ + b⁺ + b⁻), every weight
multiplied by 1 + δ·w (the canonical tie-break of `sparsify(solver="exact")`, same δ and w),
so the returned optimum is unique; at α = 1 it is exactly the per-model canonical optimum.

Dual and certificate.  With multipliers y_m of the rows K(a_m, o_m) − q_m = v_m and
g_op,m = Z_opᵀ y_m, minimising the Lagrangian over q, a, o, t gives the dual

    maximise  Σ_m [⟨y_m, v_m⟩ − ε_m‖y_m‖₁]
    s.t.      Σ_m (|g_op,m(S)| − α)₊ ≤ 1 − α   for every op and S.

(For fixed t, min over |a_m| ≤ t of α|a_m| − g a_m is −t·(|g| − α)₊; the t-term is bounded
below iff the constraint holds.)  Σ_m (c·|g_m| − α)₊ ≤ 1 − α holds iff c·G_j ≤ 1 + (j − 1)α
for every j, G_j the sum of the j largest |g_m|, so the largest c ≥ 0 that makes c·y
feasible is c* = min_{op,S,j} (1 + (j − 1)α)/G_j, computed in closed form.  Any y, scaled by
c*, proves the lower bound max(0, c*·D(y)) on the optimal joint objective; we take the LP's
own equality multipliers (`res.eqlin.marginals`) as y.  The objective of the returned split
(exactly feasible: q clipped to its bound, v_or = v + q − v_and) is an upper bound, so the
relative gap (objective − bound)/objective is proven, not estimated.  α = 1 reduces this to
the single-model certificate (c* = 1/max|g|).

Units: each sample is solved in units of s = mean over models of std(v_m) (one scale for all
models of a sample, so the problem is the same as on raw v: the max compares the models'
raw magnitudes; a model with larger outputs dominates it).  Results are in the units of v.

After solving, single-player OR terms are merged into AND per model (as `sparsify` does);
`objective` and `l1` are computed before the merge.

Shared and specific (`shared_specific`): a coalition (op, S) is salient in model m if
|I_op,m(S)| ≥ ratio·max|I_m| (AND and OR together, ∅ excluded, ratio 0.05), sign ignored;
it is *shared* by a group of models if salient in every model of the group, and *specific*
to m if salient in m but not shared.

File entry points: `extract_joint(v, ...)` (games → `JointResults`), `extract_joint_models(
models, masker, x, y, ...)` (models → games → joint), `write_joint(path, results)` and
`read_joint(path)` (HDF5, layout in docs/hdf5-layout.md), `shared_specific(results)` (one
table per checkpoint) and `shared_over_training(files)` (the tables of a run's checkpoints).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.optimize  # noqa: E402
import scipy.sparse  # noqa: E402
import torch  # noqa: E402

from harsanyi import __version__  # noqa: E402
from harsanyi.certificate import and_adjoint, or_adjoint, relative_gap  # noqa: E402
from harsanyi.io import atomic_write, jsonable  # noqa: E402
from harsanyi.masks import n_players_of, orders  # noqa: E402
from harsanyi.sparsifier import (  # noqa: E402
    CANONICAL_DELTA,
    DEFAULT_GAP_TOL,
    LP_METHOD,
    LP_OPTIONS,
    _lp_matrix,
    canonical_weights,
    check_lp_options,
    decompose,
    solve_each,
)
from harsanyi.stats import DEFAULT_RATIO, order_indicator, salient_masks  # noqa: E402

DEFAULT_ALPHA = 0.1
JOINT_LAYOUT = "joint"
JOINT_LAYOUT_VERSION = 1
MODEL_DATASETS = ("v", "I_and", "I_or", "p", "q")  # (K, samples, 2^n)
JOINT_JSON_ATTRS = ("models", "solver", "players", "baseline", "output", "extra")
_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}


@dataclass
class JointResults:
    """Joint decomposition of K models' games on B samples; arrays in the units of v.

    Per-model arrays are (K, B, 2^n); `objective`, `lower_bound`, `gap` are (B,) for the
    joint objective (before the singleton merge); `l1` (K, B) is each model's own L1 in the
    joint solution.  `models` holds one identity dict per model (what was joined).
    """

    v: np.ndarray
    I_and: np.ndarray  # single-player OR merged in
    I_or: np.ndarray
    p: np.ndarray
    q: np.ndarray
    objective: np.ndarray
    lower_bound: np.ndarray
    gap: np.ndarray
    l1: np.ndarray
    alpha: float
    settings: dict[str, Any] = field(default_factory=dict)
    models: list[dict] = field(default_factory=list)
    sample_ids: np.ndarray | None = None
    labels: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # players, baseline, output, extra

    @property
    def n_models(self) -> int:
        return int(self.I_and.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.I_and.shape[1])

    @property
    def n(self) -> int:
        return n_players_of(self.I_and.shape[-1])

    @property
    def certified(self) -> np.ndarray:
        """(B,) bool: the sample's gap is proven to be at most the solve's gap_tol."""
        tol = self.settings.get("gap_tol", DEFAULT_GAP_TOL)
        return np.nan_to_num(self.gap, nan=np.inf) <= tol


# --------------------------------------------------------------------------- objective, dual


def joint_objective(I_and, I_or, alpha: float) -> np.ndarray:
    """(B,) Σ_op Σ_S [(1 − α)·max_m |I_m(S)| + α·Σ_m |I_m(S)|] for (K, B, 2^n) arrays."""
    total = 0.0
    for values in (np.abs(np.asarray(I_and)), np.abs(np.asarray(I_or))):
        total = total + ((1 - alpha) * values.max(axis=0) + alpha * values.sum(axis=0)).sum(-1)
    return np.asarray(total, dtype=np.float64)


def dual_feasible_scale(y: torch.Tensor, alpha: float) -> torch.Tensor:
    """(B,) the largest c ≥ 0 with c·y dual feasible for the joint LP (inf where y = 0).

    y is (K, B, 2^n).  Feasible: Σ_m (|g_op,m(S)| − α)₊ ≤ 1 − α for g_op,m = Z_opᵀ y_m, which
    holds for c·y iff c·G_j ≤ 1 + (j − 1)α for all j, G_j the sum of the j largest |g|.
    """
    k = y.shape[0]
    scale = torch.full(y.shape[1:2], math.inf, dtype=y.dtype, device=y.device)
    allowed = 1.0 + alpha * torch.arange(k, dtype=y.dtype, device=y.device)  # 1 + (j−1)α
    for adjoint in (and_adjoint, or_adjoint):
        g = torch.stack([adjoint(y[m]) for m in range(k)]).abs()  # (K, B, 2^n)
        top = torch.sort(g, dim=0, descending=True).values.cumsum(0)  # G_j
        ratio = torch.where(
            top > 0, allowed[:, None, None] / torch.where(top > 0, top, 1.0), math.inf
        )
        scale = torch.minimum(scale, ratio.amin(dim=(0, 2)))
    return scale


def joint_lower_bound(
    y: torch.Tensor, v: torch.Tensor, eps: torch.Tensor, alpha: float
) -> torch.Tensor:
    """(B,) a proven lower bound on the optimal joint objective from any dual point y.

    y, v: (K, B, 2^n); eps: (K, B).  Bound = max(0, c*·Σ_m [⟨y_m, v_m⟩ − ε_m‖y_m‖₁]).
    """
    value = ((y * v).sum(-1) - eps * y.abs().sum(-1)).sum(0)
    c = dual_feasible_scale(y, alpha)
    scaled = torch.where(torch.isfinite(c), c * value, torch.zeros_like(value))
    return torch.clamp(scaled, min=0.0)


# --------------------------------------------------------------------------- the LP


@lru_cache(maxsize=4)
def _joint_matrices(n: int, k: int) -> tuple[scipy.sparse.csr_matrix, scipy.sparse.csr_matrix]:
    """(A_eq, A_ub) of the joint LP; variables [model 0 block, …, model K−1 block, t_and,
    t_or], each model block laid out as in `_lp_matrix(n)`."""
    size = 2**n
    single = _lp_matrix(n)
    width = single.shape[1]
    eq = scipy.sparse.block_diag([single] * k, format="csr")
    eq = scipy.sparse.hstack([eq, scipy.sparse.csr_matrix((eq.shape[0], 2 * size))], format="csr")
    idx = np.arange(size)
    rows, cols, vals = [], [], []
    t_at = k * width
    for m in range(k):
        for op, (pos, neg) in enumerate(((0, size), (2 * size, 3 * size))):
            r = (2 * m + op) * size + idx
            for start, value in ((m * width + pos, 1.0), (m * width + neg, 1.0)):
                rows.append(r)
                cols.append(start + idx)
                vals.append(np.full(size, value))
            rows.append(r)
            cols.append(t_at + op * size + idx)
            vals.append(np.full(size, -1.0))
    ub = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(2 * k * size, eq.shape[1]),
    ).tocsr()
    return eq, ub


def _linprog(cost, a_ub, a_eq, b_eq, bounds, method: str, sample: int, retries: list[int]):
    """HiGHS at the sparsifier's tight tolerances; once more at its defaults if that fails
    numerically (counted in `retries`; the certificate still proves the answer)."""
    for options in (LP_OPTIONS, {}):
        res = scipy.optimize.linprog(
            cost,
            A_ub=a_ub,
            b_ub=np.zeros(a_ub.shape[0]),
            A_eq=a_eq,
            b_eq=b_eq,
            bounds=bounds,
            method=method,
            options=options,
        )
        if res.status == 0:
            return res
        retries.append(sample)
    raise RuntimeError(f"joint LP for sample {sample} failed ({method}): {res.message}")


def _as_games(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    if isinstance(v, (list, tuple)):
        v = np.stack(
            [x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in v]
        )
    games = np.asarray(v, dtype=np.float64)
    if games.ndim == 2:
        games = games[:, None, :]
    if games.ndim != 3:
        raise ValueError(
            f"v must have shape (models, samples, 2^n) or (models, 2^n), got {games.shape}"
        )
    if games.shape[0] < 1:
        raise ValueError("joint extraction needs at least one model")
    n_players_of(games.shape[-1])
    if not np.isfinite(games).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(games))[0])
        raise ValueError(f"v holds a non-finite value at (model, sample, mask) = {bad}")
    return games


def _merge_singletons(i_and: np.ndarray, i_or: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    single = orders(n_players_of(i_and.shape[-1])) == 1
    i_and, i_or = i_and.copy(), i_or.copy()
    i_and[..., single] += i_or[..., single]
    i_or[..., single] = 0.0
    return i_and, i_or


def extract_joint(
    v,
    *,
    alpha: float = DEFAULT_ALPHA,
    qthres: float = 0.02,
    canonical: bool = True,
    gap_tol: float = DEFAULT_GAP_TOL,
    lp_method: str = LP_METHOD,
    models: Sequence[dict] | None = None,
    sample_ids=None,
    labels=None,
    meta: dict | None = None,
    progress: bool = False,
    workers: int | None = None,
) -> JointResults:
    """Joint AND-OR decomposition of K models' games v (shape (K, B, 2^n), or (K, 2^n)).

    Returns the exact optimum of the joint LP (module docstring), canonical unless
    `canonical=False`, with a proven lower bound and gap per sample (`certified`: gap ≤
    `gap_tol`).  `models` (K identity dicts, e.g. `store.checkpoint_identity`), `sample_ids`,
    `labels` and `meta` (players, baseline, output, extra) are carried into the result and
    its file.  `workers`: samples solved side by side in threads (default torch's thread
    count; the answer does not depend on it).
    """
    if not (isinstance(alpha, (int, float)) and 0 < alpha <= 1):
        raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
    workers = check_lp_options(qthres, gap_tol, lp_method, workers)
    games = _as_games(v)
    k, b, size = games.shape
    n = n_players_of(size)
    models = [dict(m) for m in models] if models is not None else [{"index": m} for m in range(k)]
    if len(models) != k:
        raise ValueError(f"models names {len(models)} models, v holds {k}")
    sample_ids = np.arange(b) if sample_ids is None else np.asarray(sample_ids, dtype=np.int64)
    labels = np.full(b, -1) if labels is None else np.asarray(labels, dtype=np.int64)
    for name, arr in (("sample_ids", sample_ids), ("labels", labels)):
        if arr.shape != (b,):
            raise ValueError(f"{name} must have shape ({b},), got {arr.shape}")

    # One scale per sample for all models: the same problem as on raw v (homogeneous).
    scale = games.std(axis=-1).mean(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    work = games / scale[None, :, None]
    eps = qthres * np.abs(work[..., -1] - work[..., 0])  # (K, B)

    a_eq, a_ub = _joint_matrices(n, k)
    width = _lp_matrix(n).shape[1]
    rows = _lp_matrix(n).shape[0]
    weights = canonical_weights(n)  # [a⁺, a⁻, b⁺, b⁻]
    tie = 1.0 + (CANONICAL_DELTA * weights if canonical else np.zeros_like(weights))
    cost = np.zeros(a_eq.shape[1])
    for m in range(k):
        cost[m * width : m * width + 4 * size] = alpha * tie
    cost[k * width : k * width + size] = (1 - alpha) * tie[:size]
    cost[k * width + size :] = (1 - alpha) * tie[2 * size : 3 * size]
    bounds = np.empty((a_eq.shape[1], 2))
    bounds[:, 0], bounds[:, 1] = -np.inf, np.inf
    for m in range(k):
        bounds[m * width : m * width + 4 * size, 0] = 0.0
    bounds[k * width :, 0] = 0.0
    v_and = np.empty_like(work)
    q = np.empty_like(work)
    dual = np.empty_like(work)
    retries: list[int] = []

    def solve(s: int) -> None:
        b_eq = np.zeros(a_eq.shape[0])
        sample_bounds = bounds.copy()
        for m in range(k):
            b_eq[m * rows + rows - size : (m + 1) * rows] = work[m, s]
            q_at = m * width + 4 * size
            sample_bounds[q_at : q_at + size] = [-eps[m, s], eps[m, s]]
        res = _linprog(cost, a_ub, a_eq, b_eq, sample_bounds, lp_method, s, retries)
        for m in range(k):
            dual[m, s] = res.eqlin.marginals[m * rows + rows - size : (m + 1) * rows]
            v_and[m, s] = res.x[m * width + (4 + n) * size : m * width + (5 + n) * size]
            q[m, s] = np.clip(
                res.x[m * width + 4 * size : m * width + 5 * size], -eps[m, s], eps[m, s]
            )

    solve_each(solve, b, workers, "joint extraction" if progress else None)

    # Back to the units of v; the split is exactly feasible by construction.
    v_and *= scale[None, :, None]
    limit = qthres * np.abs(games[..., -1] - games[..., 0])[..., None]
    q = np.clip(q * scale[None, :, None], -limit, limit)
    v_or = games + q - v_and
    p = 0.5 * (v_and - v_or)
    i_and, i_or = (
        t.numpy()
        for t in decompose(torch.from_numpy(games), torch.from_numpy(p), torch.from_numpy(q))
    )
    objective = joint_objective(i_and, i_or, alpha)
    l1 = np.abs(i_and).sum(-1) + np.abs(i_or).sum(-1)
    bound = (
        joint_lower_bound(
            torch.from_numpy(dual), torch.from_numpy(work), torch.from_numpy(eps), alpha
        ).numpy()
        * scale
    )
    gap = relative_gap(torch.from_numpy(objective), torch.from_numpy(bound)).numpy()
    merged_and, merged_or = _merge_singletons(i_and, i_or)
    settings: dict[str, Any] = {
        "solver": "joint-exact" if canonical else "joint-lp",
        "alpha": float(alpha),
        "qthres": float(qthres),
        "n_players": n,
        "n_models": k,
        "method": lp_method,
        "normalize": "one scale per sample: mean over models of std(v_m)",
        "merge_singleton_or": True,
        "certified": True,
        "gap_tol": float(gap_tol),
        "loose_tolerance_samples": len(retries),
    }
    if canonical:
        settings.update(canonical="least order-weighted objective", canonical_delta=CANONICAL_DELTA)
    result = JointResults(
        v=games,
        I_and=merged_and,
        I_or=merged_or,
        p=p,
        q=q,
        objective=objective,
        lower_bound=bound,
        gap=gap,
        l1=l1,
        alpha=float(alpha),
        settings=settings,
        models=models,
        sample_ids=sample_ids,
        labels=labels,
        meta=dict(meta or {}),
    )
    result.settings["uncertified"] = int((~result.certified).sum())
    return result


def extract_joint_models(
    models: Sequence[torch.nn.Module],
    masker,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    identities: Sequence[dict] | None = None,
    output: str = "log_odds",
    memory_budget: int = 2**30,
    **joint_kwargs,
) -> JointResults:
    """`game_values` of every model on the same x, y and masker, then `extract_joint`."""
    from harsanyi.games import game_values

    games = np.stack(
        [
            game_values(model, masker, x, y, output=output, memory_budget=memory_budget).numpy()
            for model in models
        ]
    )
    meta = dict(joint_kwargs.pop("meta", None) or {})
    meta.setdefault("players", masker.to_dict())
    meta.setdefault("output", output)
    return extract_joint(
        games, models=identities, labels=y.cpu().numpy(), meta=meta, **joint_kwargs
    )


# --------------------------------------------------------------------------- shared vs specific


def salient_per_model(I_and, I_or, ratio: float = DEFAULT_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """(K, B, 2^n) bool AND and OR masks: salient in model m at τ = ratio·max|I_m| (∅ out)."""
    a, o = np.asarray(I_and), np.asarray(I_or)
    masks = [salient_masks(a[m], o[m], ratio=ratio) for m in range(a.shape[0])]
    return np.stack([x[0] for x in masks]), np.stack([x[1] for x in masks])


def shared_masks(I_and, I_or, ratio: float = DEFAULT_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """(B, 2^n) bool AND and OR masks of coalitions salient in every model (sign ignored)."""
    sal_and, sal_or = salient_per_model(I_and, I_or, ratio)
    return sal_and.all(axis=0), sal_or.all(axis=0)


def shared_specific_per_sample(I_and, I_or, ratio: float = DEFAULT_RATIO) -> dict[str, np.ndarray]:
    """Per model, sample and order: strength and count of shared and specific salient terms.

    Returns arrays of shape (K, B, n): `shared`, `specific` (Σ|I_m(S)| over AND and OR terms of
    order k salient in m and shared by all models / not shared), `n_shared`, `n_specific`.
    """
    a, o = np.asarray(I_and, dtype=np.float64), np.asarray(I_or, dtype=np.float64)
    n = n_players_of(a.shape[-1])
    sal_and, sal_or = salient_per_model(a, o, ratio)
    sh_and, sh_or = sal_and.all(axis=0), sal_or.all(axis=0)
    by_order = order_indicator(n)
    out = {}
    for name, keep in (("shared", (sh_and, sh_or)), ("specific", (~sh_and, ~sh_or))):
        in_and = sal_and & keep[0][None]
        in_or = sal_or & keep[1][None]
        out[name] = (np.where(in_and, np.abs(a), 0.0) + np.where(in_or, np.abs(o), 0.0)) @ by_order
        out["n_" + name] = (in_and.astype(np.float64) + in_or) @ by_order
    return out


def shared_specific(
    results: JointResults | tuple,
    *,
    group: Sequence[int] | None = None,
    ratio: float = DEFAULT_RATIO,
) -> pd.DataFrame:
    """Shared vs model-specific salient strength per order, averaged over samples.

    `results`: a `JointResults` or an (I_and, I_or) pair of (K, B, 2^n) arrays; `group`: the
    models compared (indices, default all; for a pair out of a K-model joint solution pass
    two).  One row per model of the group and order k = 1..n: `model` (index), `order`,
    `shared`, `specific` (mean over samples of the strength defined in
    `shared_specific_per_sample`), `n_shared`, `n_specific` (mean counts) and
    `shared_fraction` = shared / (shared + specific) (NaN without salient terms).
    """
    if isinstance(results, JointResults):
        a, o = results.I_and, results.I_or
    else:
        a, o = (np.asarray(x) for x in results)
    group = list(range(a.shape[0])) if group is None else [int(g) for g in group]
    if not group or len(set(group)) != len(group) or not all(0 <= g < a.shape[0] for g in group):
        raise ValueError(f"group must name distinct models among 0..{a.shape[0] - 1}: {group}")
    parts = shared_specific_per_sample(a[group], o[group], ratio)
    n = parts["shared"].shape[-1]
    rows = []
    for pos, m in enumerate(group):
        mean = {key: value[pos].mean(axis=0) for key, value in parts.items()}
        for k in range(n):
            total = mean["shared"][k] + mean["specific"][k]
            rows.append(
                {
                    "model": m,
                    "order": k + 1,
                    "shared": mean["shared"][k],
                    "specific": mean["specific"][k],
                    "n_shared": mean["n_shared"][k],
                    "n_specific": mean["n_specific"][k],
                    "shared_fraction": mean["shared"][k] / total if total > 0 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def shared_over_training(
    files: Sequence[str | os.PathLike[str]],
    *,
    group: Sequence[int] | None = None,
    ratio: float = DEFAULT_RATIO,
) -> pd.DataFrame:
    """`shared_specific` of each joint file (one per checkpoint), stacked with a `checkpoint`
    column: the `epoch` of the file's first model identity if every model has the same one,
    else the file's position in `files`; `file` names the file."""
    tables = []
    for position, path in enumerate(files):
        results = read_joint(path)
        epochs = {m.get("epoch") for m in results.models if isinstance(m, dict)}
        epoch = epochs.pop() if len(epochs) == 1 else None
        table = shared_specific(results, group=group, ratio=ratio)
        table.insert(0, "checkpoint", position if epoch is None else epoch)
        table.insert(1, "file", str(path))
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


# --------------------------------------------------------------------------- HDF5


def _open_h5(path, mode: str) -> h5py.File:
    try:
        return h5py.File(path, mode, locking=False)
    except (TypeError, ValueError):
        return h5py.File(path, mode)


def _check(results: JointResults, *, meta: bool = True) -> None:
    shape = np.shape(results.I_and)
    if len(shape) != 3:
        raise ValueError(f"I_and must be (models, samples, 2^n), got {shape}")
    n_players_of(shape[-1])
    for name in MODEL_DATASETS:
        if np.shape(getattr(results, name)) != shape:
            raise ValueError(f"{name} has shape {np.shape(getattr(results, name))}, want {shape}")
    for name in ("objective", "lower_bound", "gap", "sample_ids", "labels"):
        if np.shape(getattr(results, name)) != shape[1:2]:
            raise ValueError(f"{name} must have shape ({shape[1]},)")
    if np.shape(results.l1) != shape[:2]:
        raise ValueError(f"l1 must have shape {shape[:2]}")
    if len(results.models) != shape[0]:
        raise ValueError(f"models names {len(results.models)} models, arrays hold {shape[0]}")
    if not np.isfinite(np.asarray(results.v)).all():
        raise ValueError("v holds non-finite values")
    unknown = sorted(set(results.meta) - {"players", "baseline", "output", "extra"})
    if meta and unknown:
        raise ValueError(f"meta has unknown keys {unknown}; put them in extra")


def write_joint(path: str | os.PathLike[str], results: JointResults) -> Path:
    """Write a joint extraction to `path` (joint layout version 1, docs/hdf5-layout.md),
    atomically; everything is validated before the file is created."""
    _check(results)
    attrs = {
        "models": results.models,
        "solver": results.settings,
        **{key: results.meta.get(key) for key in ("players", "baseline", "output", "extra")},
    }
    texts = {key: json.dumps(jsonable(value, key)) for key, value in attrs.items()}

    def write(temp: Path) -> None:
        with _open_h5(temp, "w") as h5:
            size = results.I_and.shape[-1]
            for name in MODEL_DATASETS:
                h5.create_dataset(
                    name,
                    data=np.asarray(getattr(results, name), dtype=np.float64),
                    chunks=(1, 1, size),
                    **_COMPRESSION,
                )
            h5.create_dataset("l1", data=np.asarray(results.l1, dtype=np.float64))
            for name in ("objective", "lower_bound", "gap"):
                h5.create_dataset(name, data=np.asarray(getattr(results, name), dtype=np.float64))
            h5.create_dataset("certified", data=results.certified)
            h5.create_dataset("sample_ids", data=np.asarray(results.sample_ids, dtype=np.int64))
            h5.create_dataset("labels", data=np.asarray(results.labels, dtype=np.int64))
            h5.attrs["layout"] = JOINT_LAYOUT
            h5.attrs["joint_layout_version"] = JOINT_LAYOUT_VERSION
            h5.attrs["n"] = int(results.n)
            h5.attrs["n_models"] = int(results.n_models)
            h5.attrs["alpha"] = float(results.alpha)
            h5.attrs["library_version"] = __version__
            h5.attrs["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            for key, text in texts.items():
                h5.attrs[key] = text

    return atomic_write(path, write)


def read_joint(path: str | os.PathLike[str]) -> JointResults:
    """Read a file written by `write_joint`; ValueError naming the file if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        h5 = _open_h5(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not an HDF5 file ({err})") from err
    with h5:
        if h5.attrs.get("layout") != JOINT_LAYOUT:
            raise ValueError(f"{path}: not a joint extraction (no layout='joint' attribute)")
        version = int(h5.attrs.get("joint_layout_version", -1))
        if version != JOINT_LAYOUT_VERSION:
            raise ValueError(
                f"{path}: joint layout version {version}, this reader knows {JOINT_LAYOUT_VERSION}"
            )
        names = (*MODEL_DATASETS, "l1", "objective", "lower_bound", "gap", "sample_ids", "labels")
        missing = [name for name in names if name not in h5]
        if missing:
            raise ValueError(f"{path}: missing datasets {missing}")
        data = {name: h5[name][()] for name in names}
        attrs = {key: json.loads(h5.attrs[key]) for key in JOINT_JSON_ATTRS}
        meta = {key: attrs[key] for key in ("players", "baseline", "output", "extra")}
        meta["library_version"] = str(h5.attrs["library_version"])
        meta["created"] = str(h5.attrs["created"])
        alpha = float(h5.attrs["alpha"])
    results = JointResults(
        alpha=alpha, settings=attrs["solver"], models=attrs["models"], meta=meta, **data
    )
    try:
        _check(results, meta=False)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
    return results
