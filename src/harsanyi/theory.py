"""Theory of the order distribution: the spindle at initialisation and phase 2.

Spindle (two templates, `SPINDLE_TEMPLATES`):
- "binomial" (the default, the seed paper's theorem): interactions I(S) i.i.d. over
  coalitions, so the total strength at order k is ∝ C(n,k), the number of coalitions of
  that order (peak at k = n/2);
- "iid_v" (an alternative, named as such): v i.i.d. with variance s² over masks; I_and(S)
  sums 2^{|S|} independent ±v terms, so Var I(S) = 2^{|S|}·s² and the total strength at
  order k is C(n,k)·E|I| ∝ C(n,k)·2^{k/2} (peak at k = 6 for n = 10).
The two differ enough to flip a verdict; the scorecard's claim uses "binomial".

Phase 2 (docs/interactions.md): with triggering functions J_T(x_S) = 1(T ⊆ S) perturbed by
noise of variance 2^{|T|}σ², the expected least-squares fit of y_S = Σ_{T⊆S} w*_T is
ŵ = (JᵀJ + 2^n·diag(c))⁻¹ JᵀJ w*, c_T = 2^{|T|}σ², with (JᵀJ)_{T,T'} = 2^{n−|T∪T'|}.
Vectors over coalitions use the mask convention of the project.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import scipy.linalg
import scipy.optimize
from scipy.special import comb

from harsanyi.masks import check_n, n_players_of, orders

MAX_THEORY_PLAYERS = 12  # the dense (2^n)² Gram matrix: 128 MiB at n = 12
DEFAULT_SIGMA2_GRID = np.logspace(-6, 2, 81)


def spindle_strength(n: int, s2: float = 1.0) -> np.ndarray:
    """(n+1,) expected total |I_and| per order k = 0..n for i.i.d. Gaussian v of variance s2.

    Entry k is C(n,k)·sqrt(2/π)·sqrt(2^k·s2) (exact for Gaussian v; ∝ C(n,k)·2^{k/2}).
    """
    check_n(n)
    if not s2 > 0:
        raise ValueError(f"s2 must be > 0, got {s2!r}")
    k = np.arange(n + 1)
    return comb(n, k) * math.sqrt(2 / math.pi) * np.sqrt(2.0**k * s2)


SPINDLE_TEMPLATES = ("binomial", "iid_v")
DEFAULT_SPINDLE_TEMPLATE = "binomial"


def spindle_distribution(n: int, template: str = DEFAULT_SPINDLE_TEMPLATE) -> np.ndarray:
    """(n,) spindle over orders k = 1..n normalised to sum 1 (∅ excluded).

    template "binomial" (default, the seed's theorem: i.i.d. interactions): C(n,k)/(2^n − 1);
    "iid_v" (the alternative: i.i.d. v): `spindle_strength`, ∝ C(n,k)·2^{k/2}.
    """
    check_n(n)
    if template == "binomial":
        strength = comb(n, np.arange(1, n + 1))
    elif template == "iid_v":
        strength = spindle_strength(n)[1:]
    else:
        raise ValueError(f"spindle template must be one of {SPINDLE_TEMPLATES}, got {template!r}")
    return strength / strength.sum()


def _check_theory_n(n: int) -> int:
    check_n(n)
    if not 1 <= n <= MAX_THEORY_PLAYERS:
        raise ValueError(f"phase-2 theory needs 1 <= n <= {MAX_THEORY_PLAYERS}, got n={n}")
    return n


def gram_matrix(n: int) -> np.ndarray:
    """(2^n, 2^n) JᵀJ with (JᵀJ)_{T,T'} = 2^{n−|T∪T'|} (number of S containing T ∪ T')."""
    _check_theory_n(n)
    index = np.arange(2**n)
    union_size = orders(n)[index[:, None] | index[None, :]]
    return np.ldexp(1.0, n - union_size)


def _w_star(w_star) -> tuple[np.ndarray, int]:
    w = np.asarray(w_star, dtype=np.float64)
    if w.ndim not in (1, 2):
        raise ValueError(f"w_star must have shape (2^n,) or (samples, 2^n), got {w.shape}")
    return w, _check_theory_n(n_players_of(w.shape[-1]))


def _check_sigma2(sigma2: float) -> float:
    if not (np.isfinite(sigma2) and sigma2 >= 0):
        raise ValueError(f"sigma2 must be finite and >= 0, got {sigma2!r}")
    return float(sigma2)


def _noise_scale(n: int) -> np.ndarray:
    """d_T = 2^n·2^{|T|}, so that 2^n·diag(c) = σ²·diag(d)."""
    return np.ldexp(1.0, n + orders(n))


def phase2_solution(w_star, sigma2: float) -> np.ndarray:
    """ŵ = (JᵀJ + 2^n·diag(c))⁻¹ JᵀJ w*, c_T = 2^{|T|}σ², by a Cholesky solve.

    `w_star` has shape (2^n,) or (samples, 2^n); ŵ has the same shape.  σ² = 0 gives w*.
    """
    w, n = _w_star(w_star)
    sigma2 = _check_sigma2(sigma2)
    gram = gram_matrix(n)
    system = gram + np.diag(sigma2 * _noise_scale(n))
    solution = scipy.linalg.solve(system, gram @ w.T, assume_a="pos")
    return solution.T


@functools.lru_cache(maxsize=4)
def _spectrum(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition of D^{-1/2}·JᵀJ·D^{-1/2} (D = diag(d)), and sqrt(d)."""
    root_d = np.sqrt(_noise_scale(n))
    scaled = gram_matrix(n) / root_d[:, None] / root_d[None, :]
    eigenvalues, eigenvectors = np.linalg.eigh(scaled)
    return np.clip(eigenvalues, 0.0, None), eigenvectors, root_d


def _spectral_solutions(w: np.ndarray, n: int, sigma2s: np.ndarray) -> np.ndarray:
    """ŵ for many σ² at once: (len(sigma2s), *w.shape).

    With M = D^{-1/2} JᵀJ D^{-1/2} = U Λ Uᵀ, ŵ = D^{-1/2} U diag(λ/(λ+σ²)) Uᵀ D^{1/2} w*:
    one eigen-decomposition per n instead of one solve per σ².
    """
    eigenvalues, eigenvectors, root_d = _spectrum(n)
    projected = (np.atleast_2d(w) * root_d) @ eigenvectors  # (samples, 2^n)
    with np.errstate(invalid="ignore", divide="ignore"):
        filters = eigenvalues / (eigenvalues + sigma2s[:, None])
    filters = np.where(sigma2s[:, None] == 0, 1.0, filters)
    solutions = (filters[:, None, :] * projected[None]) @ eigenvectors.T / root_d
    return solutions.reshape(sigma2s.shape[0], *w.shape)


def _strength_per_order(w_hat: np.ndarray, n: int) -> np.ndarray:
    """Σ_{|T|=k} |ŵ_T| for k = 1..n, summed over samples: (2^n,) or (samples, 2^n) → (n,)."""
    by_order = (orders(n)[:, None] == np.arange(1, n + 1)[None, :]).astype(np.float64)
    return np.abs(np.atleast_2d(w_hat)).sum(axis=0) @ by_order


def _normalised(strength: np.ndarray) -> np.ndarray:
    total = strength.sum()
    return strength / total if total > 0 else np.full_like(strength, np.nan)


def predicted_distribution(w_star, sigma2: float) -> np.ndarray:
    """(n,) order distribution of |ŵ| over k = 1..n (∅ excluded), summing to 1.

    For w_star of shape (samples, 2^n) the strengths |ŵ| are summed over samples before
    normalising (as `stats.order_distribution` does); nan if ŵ vanishes off ∅.
    """
    w, n = _w_star(w_star)
    w_hat = _spectral_solutions(w, n, np.array([_check_sigma2(sigma2)]))[0]
    return _normalised(_strength_per_order(w_hat, n))


def _measured(distribution, n: int) -> np.ndarray:
    q = np.asarray(distribution, dtype=np.float64)
    if q.shape != (n,) or np.any(~(q >= 0)) or not q.sum() > 0:
        raise ValueError(
            f"measured_distribution must be {n} non-negative values over orders 1..{n} with a "
            f"positive sum, got {q}"
        )
    return q / q.sum()


def _distance(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Squared error Σ_k (p(k) − q(k))², nan treated as the worst distance."""
    value = float(np.sum((predicted - measured) ** 2))
    return value if np.isfinite(value) else np.inf


def fit_sigma2(
    w_star,
    measured_distribution,
    grid=DEFAULT_SIGMA2_GRID,
    refine: bool = True,
) -> float:
    """σ² whose `predicted_distribution(w_star, σ²)` best matches a measured one.

    Distance: squared error Σ_k (p_σ²(k) − q(k))² over k = 1..n, with q normalised to sum 1.
    The best point of `grid` is refined (if `refine`) by a bounded scalar search in log σ²
    between its grid neighbours.
    """
    w, n = _w_star(w_star)
    measured = _measured(measured_distribution, n)
    sigma2s = np.asarray(grid, dtype=np.float64).ravel()
    if sigma2s.size == 0 or np.any(~(sigma2s > 0)):
        raise ValueError(f"grid must hold positive sigma2 values, got {grid!r}")
    sigma2s = np.sort(sigma2s)

    def loss(sigma2: float) -> float:
        w_hat = _spectral_solutions(w, n, np.array([sigma2]))[0]
        return _distance(_normalised(_strength_per_order(w_hat, n)), measured)

    losses = np.array([loss(s) for s in sigma2s])
    best = int(np.argmin(losses))
    if not refine or sigma2s.size < 2:
        return float(sigma2s[best])
    low = np.log10(sigma2s[max(best - 1, 0)])
    high = np.log10(sigma2s[min(best + 1, sigma2s.size - 1)])
    result = scipy.optimize.minimize_scalar(
        lambda log_s: loss(10.0**log_s),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-8},
    )
    return float(10.0**result.x) if result.fun <= losses[best] else float(sigma2s[best])


def low_high_ratio(w_hat, n: int, split_order: int | None = None) -> float:
    """r(k) = Σ_{1≤|T|≤k} |ŵ_T| / Σ_{|T|>k} |ŵ_T|, k = split_order (default n // 2).

    Low orders are 1..k, high orders k+1..n, ∅ excluded; w_hat of shape (2^n,) or
    (samples, 2^n) is summed over samples.  inf if the high part is zero.
    """
    w = np.asarray(w_hat, dtype=np.float64)
    if w.ndim not in (1, 2) or w.shape[-1] != 2 ** check_n(n):
        raise ValueError(f"w_hat must have shape (2^{n},) or (samples, 2^{n}), got {w.shape}")
    k = n // 2 if split_order is None else int(split_order)
    if not 1 <= k < n:
        raise ValueError(f"split_order must be in 1..{n - 1}, got {split_order!r}")
    strength = _strength_per_order(w, n)
    low, high = strength[:k].sum(), strength[k:].sum()
    if high == 0:
        return float("inf") if low > 0 else float("nan")
    return float(low / high)
