"""Detectors for the two phases of interaction dynamics over training checkpoints.

The project's operational definitions (docs/interactions.md):
- phase-2 start: the checkpoint of minimal mean order after the initial drop, i.e. the
  argmin of the mean order over all checkpoints except the first (the initialisation);
  ties go to the earliest.
- loss-gap onset: the first time the gap (test minus training loss) stays more than
  `fraction` of its total rise (max − min) above its earlier minimum for `run` checkpoints
  running, the onset is the checkpoint of that earlier minimum (the latest one on ties):
  the checkpoint after which the rise began.  Any fraction-based rule lags a rise; walking
  back to the minimum removes the lag without reacting to single-checkpoint spikes.
Both are returned as the epoch of the checkpoint.
"""

from __future__ import annotations

import numpy as np


def _series(epochs, values, name: str) -> tuple[np.ndarray, np.ndarray]:
    e = np.asarray(epochs, dtype=np.float64).ravel()
    x = np.asarray(values, dtype=np.float64).ravel()
    if e.shape != x.shape:
        raise ValueError(f"epochs has {e.size} entries but {name} has {x.size}")
    if e.size < 2:
        raise ValueError(f"need at least two checkpoints, got {e.size}")
    if np.any(e != np.round(e)):
        raise ValueError(f"epochs must be whole numbers, got {e.tolist()}")
    if np.any(np.diff(e) <= 0):
        raise ValueError(f"epochs must be strictly increasing, got {e.tolist()}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite, got {x.tolist()}")
    return e, x


def _epoch(epochs, index: int) -> int:
    return int(np.asarray(epochs).ravel()[index])


def phase2_start(epochs, mean_orders) -> int:
    """Epoch of minimal mean order over all checkpoints after the first."""
    _, m = _series(epochs, mean_orders, "mean_orders")
    return _epoch(epochs, 1 + int(np.argmin(m[1:])))


def loss_gap_onset(epochs, gaps, fraction: float = 0.1, run: int = 2) -> int | None:
    """Epoch of the checkpoint after which the gap rises for good, or None.

    Crossing: the first checkpoint j with gap[k] > min(gap[:j]) + fraction·(max − min) for
    every k in j..j+run−1.  Onset: the latest checkpoint i < j with gap[i] = min(gap[:j]).
    None if the gap never rises, or never stays up for `run` checkpoints.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    if run < 1:
        raise ValueError(f"run must be >= 1, got {run!r}")
    _, g = _series(epochs, gaps, "gaps")
    total_rise = g.max() - g.min()
    if total_rise <= 0:
        return None
    earlier_minimum = np.minimum.accumulate(g)[:-1]
    # above[k-1]: checkpoint k is above its earlier minimum by more than the fraction.
    above = g[1:] > earlier_minimum + fraction * total_rise
    if above.size < run:
        return None
    sustained = np.lib.stride_tricks.sliding_window_view(above, run).all(axis=1)
    hits = np.flatnonzero(sustained)
    if hits.size == 0:
        return None
    crossing = int(hits[0]) + 1
    before = g[:crossing]
    return _epoch(epochs, crossing - 1 - int(np.argmin(before[::-1])))


def two_phase_summary(
    epochs, mean_orders, gaps, fraction: float = 0.1, run: int = 2
) -> dict[str, int | None]:
    """phase2_start, gap_onset and distance_epochs = gap_onset − phase2_start (or None)."""
    start = phase2_start(epochs, mean_orders)
    onset = loss_gap_onset(epochs, gaps, fraction=fraction, run=run)
    return {
        "phase2_start": start,
        "gap_onset": onset,
        "distance_epochs": None if onset is None else onset - start,
    }
