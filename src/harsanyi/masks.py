"""Coalitions as mask indices.

Convention (docs/interactions.md): a coalition S of n players is the integer index in
[0, 2^n) whose bit (n-1-j) is set iff player j is in S.  Player 0 is the most significant
bit, index 0 is the empty set, index 2^n-1 is the grand coalition and the complement of
index i is 2^n-1-i.  A vector of 2^n values reshaped to (2,)*n has one axis per player,
player 0 first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

MAX_PLAYERS = 24


def n_players_of(size: int) -> int:
    """The n for which 2^n == size, or a ValueError naming the size."""
    n = int(round(math.log2(size))) if size > 0 else -1
    if size <= 0 or 2**n != size:
        raise ValueError(f"last dimension must be 2^n for some n >= 0, got {size}")
    return n


def check_n(n: int) -> int:
    if not isinstance(n, (int, np.integer)) or n < 0 or n > MAX_PLAYERS:
        raise ValueError(f"number of players must be an integer in [0, {MAX_PLAYERS}], got {n!r}")
    return int(n)


def coalition_matrix(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(2^n, n) bool tensor: row i tells which players index i contains."""
    check_n(n)
    idx = torch.arange(2**n, device=device)
    shifts = torch.arange(n - 1, -1, -1, device=device)
    return ((idx[:, None] >> shifts[None, :]) & 1).bool()


def orders(n: int) -> np.ndarray:
    """(2^n,) int array: |S| for every mask index."""
    check_n(n)
    idx = np.arange(2**n, dtype=np.int64)
    count = np.zeros(2**n, dtype=np.int64)
    for bit in range(n):
        count += (idx >> bit) & 1
    return count


def index_of(players: Iterable[int], n: int) -> int:
    """Mask index of the coalition holding `players`."""
    check_n(n)
    index = 0
    for j in players:
        if not 0 <= j < n:
            raise ValueError(f"player {j} outside 0..{n - 1}")
        index |= 1 << (n - 1 - j)
    return index


def players_of(index: int, n: int) -> tuple[int, ...]:
    """Players of the coalition with mask index `index`."""
    check_n(n)
    if not 0 <= index < 2**n:
        raise ValueError(f"mask index {index} outside [0, 2^{n})")
    return tuple(j for j in range(n) if index >> (n - 1 - j) & 1)
