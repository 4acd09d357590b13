"""Salient interactions, strength per order, sparsity curves and Shapley values.

Inputs are AND and OR interactions of shape (samples, 2^n) (a single sample may be given as
(2^n,)) in the mask convention of docs/interactions.md.  The empty coalition (index 0) is
excluded from every threshold, salient set and order statistic: I(∅) = v(∅) is no
interaction between players and usually dwarfs them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from harsanyi.masks import coalition_matrix, n_players_of, orders

DEFAULT_RATIO = 0.05
DEFAULT_MODEL_RATIO = 0.03


def interaction_pair(I_and, I_or) -> tuple[np.ndarray, np.ndarray, int]:
    """Validated float64 copies of shape (samples, 2^n), and n (>= 1)."""
    a = np.atleast_2d(np.asarray(I_and, dtype=np.float64))
    o = np.atleast_2d(np.asarray(I_or, dtype=np.float64))
    if a.ndim != 2 or a.shape != o.shape:
        raise ValueError(
            f"I_and and I_or must both have shape (samples, 2^n), got {a.shape} and {o.shape}"
        )
    n = n_players_of(a.shape[1])
    if n < 1:
        raise ValueError("interactions need at least one player (2^n >= 2 values per sample)")
    return a, o, n


def order_indicator(n: int) -> np.ndarray:
    """(2^n, n) float matrix: entry [S, k-1] is 1 iff |S| = k (∅ has no column)."""
    return (orders(n)[:, None] == np.arange(1, n + 1)[None, :]).astype(np.float64)


def salient_threshold(I_and, I_or, ratio: float = DEFAULT_RATIO) -> np.ndarray:
    """Per-sample τ = ratio·max|I| over AND and OR values together, ∅ excluded. (samples,)."""
    if not ratio >= 0:
        raise ValueError(f"ratio must be >= 0, got {ratio!r}")
    a, o, _ = interaction_pair(I_and, I_or)
    peak = np.maximum(np.abs(a[:, 1:]).max(axis=1), np.abs(o[:, 1:]).max(axis=1))
    return ratio * peak


def model_threshold(v, ratio: float = DEFAULT_MODEL_RATIO) -> float:
    """Model-level τ = ratio·mean_x |v(N) − v(∅)| from outputs v of shape (samples, 2^n)."""
    if not ratio >= 0:
        raise ValueError(f"ratio must be >= 0, got {ratio!r}")
    values = np.atleast_2d(np.asarray(v, dtype=np.float64))
    n_players_of(values.shape[-1])
    return float(ratio * np.mean(np.abs(values[:, -1] - values[:, 0])))


def _tau_per_sample(I_and, I_or, ratio: float, tau) -> np.ndarray:
    a, _, _ = interaction_pair(I_and, I_or)
    if tau is None:
        return salient_threshold(I_and, I_or, ratio)
    taus = np.broadcast_to(np.asarray(tau, dtype=np.float64), (a.shape[0],))
    if np.any(~(taus >= 0)):
        raise ValueError(f"tau must be >= 0 (a scalar or one value per sample), got {tau!r}")
    return taus


def salient_masks(
    I_and, I_or, *, ratio: float = DEFAULT_RATIO, tau=None
) -> tuple[np.ndarray, np.ndarray]:
    """Bool arrays (samples, 2^n) marking salient AND and OR interactions.

    Salient means |I(S)| ≥ τ and I(S) ≠ 0 (so that τ = 0 selects every non-zero term), with
    τ per sample from `salient_threshold(ratio)` unless `tau` (scalar or per sample) is
    given.  ∅ is never salient.
    """
    a, o, _ = interaction_pair(I_and, I_or)
    taus = _tau_per_sample(a, o, ratio, tau)[:, None]
    masks = []
    for values in (a, o):
        salient = (np.abs(values) >= taus) & (values != 0)
        salient[:, 0] = False
        masks.append(salient)
    return masks[0], masks[1]


def salient_count(I_and, I_or, *, ratio: float = DEFAULT_RATIO, tau=None) -> np.ndarray:
    """Number of salient AND plus OR interactions per sample, (samples,) int."""
    and_mask, or_mask = salient_masks(I_and, I_or, ratio=ratio, tau=tau)
    return and_mask.sum(axis=1) + or_mask.sum(axis=1)


def order_strength_per_sample(
    I_and, I_or, *, ratio: float = DEFAULT_RATIO, tau=None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample positive and negative salient strength per order, each (samples, n).

    Column k-1 holds Σ_op Σ_{S salient, |S|=k, I>0} I_op(S) (positive, ≥ 0) and the same sum
    over I<0 (negative, ≤ 0).
    """
    a, o, n = interaction_pair(I_and, I_or)
    and_mask, or_mask = salient_masks(a, o, ratio=ratio, tau=tau)
    by_order = order_indicator(n)
    kept = np.where(and_mask, a, 0.0), np.where(or_mask, o, 0.0)
    positive = sum(np.clip(values, 0, None) @ by_order for values in kept)
    negative = sum(np.clip(values, None, 0) @ by_order for values in kept)
    return positive, negative


def order_strength(I_and, I_or, *, ratio: float = DEFAULT_RATIO, tau=None) -> pd.DataFrame:
    """I⁺(k) and I⁻(k) for k = 1..n averaged over samples.

    Returns a DataFrame indexed by `order` (1..n) with columns `positive` (I⁺ ≥ 0) and
    `negative` (I⁻ ≤ 0), unnormalised as the two-phase papers plot them.
    """
    positive, negative = order_strength_per_sample(I_and, I_or, ratio=ratio, tau=tau)
    n = positive.shape[1]
    index = pd.Index(np.arange(1, n + 1), name="order")
    return pd.DataFrame(
        {"positive": positive.mean(axis=0), "negative": negative.mean(axis=0)}, index=index
    )


def _normalise_rows(strength: np.ndarray) -> np.ndarray:
    total = strength.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, strength / np.where(total > 0, total, 1.0), np.nan)


def order_distribution(
    I_and, I_or, *, ratio: float = DEFAULT_RATIO, tau=None, per_sample: bool = False
) -> np.ndarray:
    """Distribution over orders k = 1..n of salient interaction strength, summing to 1.

    What is normalised: s(k) = I⁺(k) − I⁻(k) = E_x Σ_op Σ_{S salient, |S|=k} |I_op(S|x)|,
    i.e. the sample-averaged total absolute salient strength at order k (∅ excluded), and
    p(k) = s(k) / Σ_k' s(k').  Samples with larger interactions weigh more.  With
    `per_sample=True` each sample's strength is normalised on its own, giving (samples, n).
    Pass tau=0 to use every non-zero interaction instead of the salient ones.  Where no
    strength is left the result is nan.
    """
    positive, negative = order_strength_per_sample(I_and, I_or, ratio=ratio, tau=tau)
    strength = positive - negative
    if per_sample:
        return _normalise_rows(strength)
    return _normalise_rows(strength.mean(axis=0))


def mean_order(distribution) -> float:
    """Σ_k k·p(k) / Σ_k p(k) for a distribution p over orders k = 1..len(p)."""
    p = np.asarray(distribution, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"distribution must be a non-empty 1-D array, got shape {p.shape}")
    if np.any(~(p >= 0)) or not p.sum() > 0:
        raise ValueError(f"distribution must be non-negative with a positive sum, got {p}")
    return float(np.arange(1, p.size + 1) @ p / p.sum())


def sparsity_curve(I_and, I_or, *, normalise: bool = False) -> np.ndarray:
    """Per sample, |I| of all AND and OR interactions (∅ excluded) sorted descending.

    Shape (samples, 2·(2^n − 1)).  This is the curve the papers plot on a log scale; with
    `normalise=True` each row is divided by its maximum (rows of zeros stay zero).
    """
    a, o, _ = interaction_pair(I_and, I_or)
    strengths = np.abs(np.concatenate((a[:, 1:], o[:, 1:]), axis=1))
    curve = -np.sort(-strengths, axis=1)
    if normalise:
        peak = curve[:, :1]
        curve = np.divide(curve, peak, out=np.zeros_like(curve), where=peak > 0)
    return curve


def shapley_from_and(I_and, I_or=None) -> np.ndarray:
    """Shapley values (samples, n) from interactions: φ_i = Σ_{S∋i} I(S)/|S|.

    For an AND-OR decomposition v = v_and + v_or pass both: the OR game 1(T∩S ≠ ∅) is also
    shared equally by the players of T, so φ_i = Σ_{S∋i} (I_and(S) + I_or(S))/|S|.  This is
    the Shapley value of v, and Σ_i φ_i = v(N) − v(∅) (efficiency).
    """
    a = np.atleast_2d(np.asarray(I_and, dtype=np.float64))
    if I_or is not None:
        a, o, _ = interaction_pair(a, I_or)
        a = a + o
    n = n_players_of(a.shape[-1])
    membership = coalition_matrix(n).numpy().astype(np.float64)
    size = orders(n).astype(np.float64)
    share = membership / np.where(size > 0, size, 1.0)[:, None]  # ∅ has no players: row 0
    return a @ share
