"""AND and OR interaction transforms in O(n·2^n), and their inverses.

All functions take a torch tensor or a numpy array of shape (..., 2^n), are batched over
the leading dimensions, return the same kind of object, and (for tensors) are
differentiable.  They use the subset butterfly: view the last axis as (2,)*n and, player by
player, replace the "present" half with present minus absent (Möbius) or present plus
absent (zeta).  The dense 2^n×2^n matrices are kept only as a test oracle.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from harsanyi.masks import check_n, coalition_matrix, n_players_of

Array = TypeVar("Array", torch.Tensor, np.ndarray)


def _as_tensor(v: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, bool]:
    if isinstance(v, torch.Tensor):
        return v, False
    return torch.from_numpy(np.asarray(v)), True


def _back(t: torch.Tensor, was_numpy: bool):
    return t.numpy() if was_numpy else t


def _butterfly(v: torch.Tensor, sign: int) -> torch.Tensor:
    """Möbius (sign=-1) or zeta (sign=+1) transform over the subset lattice on the last axis."""
    n = n_players_of(v.shape[-1])
    x = v.reshape(-1, v.shape[-1]).clone()
    batch = x.shape[0]
    for j in range(n):
        # Player j is bit n-1-j: the axis of size 2 sits after 2^j higher-order blocks.
        # In place on our own copy; autograd handles it (add/sub need no saved inputs).
        y = x.view(batch, 2**j, 2, 2 ** (n - 1 - j))
        if sign > 0:
            y[:, :, 1].add_(y[:, :, 0])
        else:
            y[:, :, 1].sub_(y[:, :, 0])
    return x.reshape(v.shape)


def mobius(v: Array) -> Array:
    """m(S) = Σ_{T⊆S} (-1)^{|S|-|T|} v(T)."""
    t, was_numpy = _as_tensor(v)
    return _back(_butterfly(t, -1), was_numpy)


def zeta(m: Array) -> Array:
    """v(S) = Σ_{T⊆S} m(T), the inverse of `mobius`."""
    t, was_numpy = _as_tensor(m)
    return _back(_butterfly(t, +1), was_numpy)


def and_transform(v: Array) -> Array:
    """AND interactions (Harsanyi dividends): I_and(S) = Σ_{T⊆S} (-1)^{|S|-|T|} v(T)."""
    return mobius(v)


def and_inverse(i_and: Array) -> Array:
    """v(S) = Σ_{T⊆S} I_and(T)."""
    return zeta(i_and)


def or_transform(v: Array) -> Array:
    """OR interactions: I_or(S) = -Σ_{T⊆S} (-1)^{|S|-|T|} v(N∖T) for S≠∅, I_or(∅) = v(∅)."""
    t, was_numpy = _as_tensor(v)
    out = -_butterfly(torch.flip(t, dims=(-1,)), -1)
    out = torch.cat((t[..., :1], out[..., 1:]), dim=-1)
    return _back(out, was_numpy)


def or_inverse(i_or: Array) -> Array:
    """v(S) = I_or(∅) + Σ_{T: T∩S≠∅} I_or(T)."""
    t, was_numpy = _as_tensor(i_or)
    without_empty = torch.cat((torch.zeros_like(t[..., :1]), t[..., 1:]), dim=-1)
    below = _butterfly(without_empty, +1)  # Σ_{∅≠T⊆U} I(T)
    out = t[..., :1] + below[..., -1:] - torch.flip(below, dims=(-1,))
    return _back(out, was_numpy)


def dense_and_matrix(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(2^n, 2^n) matrix A with I_and = A @ v, written from the definition (test oracle)."""
    check_n(n)
    c = coalition_matrix(n)
    subset = (c[None, :, :] <= c[:, None, :]).all(-1)  # subset[S, T] = T ⊆ S
    size = c.sum(-1)
    sign = (-1.0) ** (size[:, None] - size[None, :]).to(dtype)
    return torch.where(subset, sign, torch.zeros((), dtype=dtype))


def dense_or_matrix(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """(2^n, 2^n) matrix B with I_or = B @ v, written from the definition (test oracle)."""
    check_n(n)
    a = dense_and_matrix(n, dtype)
    complement = torch.arange(2**n - 1, -1, -1)
    b = -a[:, complement]  # column T of B holds -A[S, N∖T]
    b[0] = 0
    b[0, 0] = 1
    return b
