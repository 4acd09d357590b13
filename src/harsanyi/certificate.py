"""The sparse AND-OR decomposition as a linear program, and certificates of optimality.

With a = I_and and o = I_or (each (B, 2^n)) the problem of docs/interactions.md is

    minimise ‖a‖₁ + ‖o‖₁   subject to   |K(a, o) − v| ≤ ε  (every mask),

where K(a, o) = Z_and a + Z_or o rebuilds v_and + v_or (Z_and: subset sums; Z_or: the inverse
OR transform, with ∅ as a column of ones) and ε = qthres·|v(N) − v(∅)|.  Its dual is

    maximise ⟨y, v⟩ − ε‖y‖₁   subject to   ‖Z_andᵀ y‖∞ ≤ 1,  ‖Z_orᵀ y‖∞ ≤ 1.

Any y divided by max(‖Z_andᵀ y‖∞, ‖Z_orᵀ y‖∞, 1) is dual feasible, so it proves a lower bound
on the optimal L1 (`lower_bound`).  K and Kᵀ are O(n·2^n) butterflies on (B, 2^n) tensors.
Any (a, o) that misses the constraint by a little is made feasible by `feasible_split`, which
moves the residual into the AND part; its L1 is then an upper bound.
"""

from __future__ import annotations

import torch

from harsanyi.masks import n_players_of
from harsanyi.transforms import and_inverse, and_transform, or_inverse


def _subset_sum_(x: torch.Tensor, n: int) -> torch.Tensor:
    """In place: x(S) ← Σ_{T⊆S} x(T) (the zeta transform, Z_and)."""
    for j in range(n):
        y = x.view(x.shape[0], 2**j, 2, 2 ** (n - 1 - j))
        y[:, :, 1] += y[:, :, 0]
    return x


def _superset_sum_(x: torch.Tensor, n: int) -> torch.Tensor:
    """In place: x(T) ← Σ_{S⊇T} x(S) (Z_andᵀ)."""
    for j in range(n):
        y = x.view(x.shape[0], 2**j, 2, 2 ** (n - 1 - j))
        y[:, :, 0] += y[:, :, 1]
    return x


# Z_and a and Z_or o are the inverse AND and OR transforms.
and_part = and_inverse
or_part = or_inverse


def rebuild(a: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """K(a, o) = v_and + v_or."""
    return and_part(a) + or_part(o)


def and_adjoint(y: torch.Tensor) -> torch.Tensor:
    """Z_andᵀ y: (Z_andᵀ y)(T) = Σ_{S⊇T} y(S)."""
    return _superset_sum_(y.clone(), n_players_of(y.shape[-1]))


def or_adjoint(y: torch.Tensor) -> torch.Tensor:
    """Z_orᵀ y: Σ_S y(S) at ∅, and Σ_{S∩T≠∅} y(S) = Σ_S y(S) − Σ_{S⊆N∖T} y(S) elsewhere."""
    n = n_players_of(y.shape[-1])
    total = y.sum(-1, keepdim=True)
    out = total - torch.flip(_subset_sum_(y.clone(), n), dims=(-1,))
    out[:, :1] = total
    return out


def dual_scale(y: torch.Tensor) -> torch.Tensor:
    """(B,) max(‖Z_andᵀ y‖∞, ‖Z_orᵀ y‖∞, 1): y divided by it is dual feasible."""
    worst = torch.maximum(and_adjoint(y).abs().amax(-1), or_adjoint(y).abs().amax(-1))
    return torch.clamp(worst, min=1.0)


def dual_value(y: torch.Tensor, v: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """(B,) ⟨y, v⟩ − ε‖y‖₁ (the dual objective, meaningful for feasible y)."""
    return (y * v).sum(-1) - eps * y.abs().sum(-1)


def lower_bound(y: torch.Tensor, v: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """(B,) a proven lower bound on the optimal L1 from any dual point y (0 at worst)."""
    return torch.clamp(dual_value(y / dual_scale(y)[:, None], v, eps), min=0.0)


def feasible_split(
    a: torch.Tensor, o: torch.Tensor, v: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(a', o, q): the AND part rebuilt so that v_and + v_or = v + q exactly, |q| ≤ ε.

    q is the residual K(a, o) − v clipped to the bound; a' = Möbius(v + q − Z_or o).
    """
    v_or = or_part(o)
    q = torch.maximum(torch.minimum(and_part(a) + v_or - v, eps[:, None]), -eps[:, None])
    return and_transform(v + q - v_or), o, q


def l1_of(a: torch.Tensor, o: torch.Tensor) -> torch.Tensor:
    """(B,) ‖a‖₁ + ‖o‖₁."""
    return a.abs().sum(-1) + o.abs().sum(-1)


def relative_gap(upper: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """(B,) (upper − lower) / upper, 0 where both are 0."""
    safe = torch.where(upper > 0, upper, torch.ones_like(upper))
    return torch.where(upper > 0, (upper - lower) / safe, torch.zeros_like(upper))
