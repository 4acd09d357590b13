"""Two-phase detectors on synthetic curves with a planted minimum and a planted onset."""

import numpy as np
import pytest

from harsanyi.dynamics import loss_gap_onset, phase2_start, two_phase_summary


def synthetic_run(minimum_epoch=12, onset_epoch=15):
    """Mean order: drop from the spindle, minimum at `minimum_epoch`, then slow rise.

    Loss gap: flat noise-free zero up to `onset_epoch`, then a steady rise.
    """
    epochs = np.arange(0, 41, 1)
    mean_orders = np.where(
        epochs <= minimum_epoch,
        4.8 - 3.5 * epochs / minimum_epoch,
        1.3 + 0.05 * (epochs - minimum_epoch),
    )
    gaps = np.where(epochs <= onset_epoch, 0.0, 0.1 * (epochs - onset_epoch))
    return epochs, mean_orders, gaps


def test_phase2_start_finds_planted_minimum():
    epochs, mean_orders, _ = synthetic_run(minimum_epoch=12)
    assert phase2_start(epochs, mean_orders) == 12
    # Epoch values, not indices, are reported.
    assert phase2_start(epochs * 5, mean_orders) == 60


def test_phase2_start_skips_initial_checkpoint():
    # The initialisation may sit below the later minimum (the drop comes after a rise).
    epochs = [0, 1, 2, 3, 4]
    assert phase2_start(epochs, [1.0, 3.0, 2.0, 2.5, 2.8]) == 2


def test_loss_gap_onset_finds_planted_onset():
    epochs, _, gaps = synthetic_run(onset_epoch=15)
    assert loss_gap_onset(epochs, gaps) == 15
    assert loss_gap_onset(epochs * 2, gaps) == 30


def test_loss_gap_onset_ignores_spikes_and_small_wiggles():
    epochs = np.arange(10)
    # A one-checkpoint spike at 1, wiggles below 10 % of the total rise, the rise after 4.
    gaps = np.array([0.0, 0.5, 0.0, 0.05, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert loss_gap_onset(epochs, gaps, fraction=0.1, run=2) == 4
    assert loss_gap_onset(epochs, gaps, fraction=0.1, run=1) == 0  # the spike counts now
    # A larger fraction moves the crossing later; the onset is still the last minimum.
    assert loss_gap_onset(epochs, gaps, fraction=0.5, run=2) == 4
    assert loss_gap_onset(epochs, gaps, fraction=0.5, run=6) is None  # 7..9 only: too short


def test_loss_gap_onset_none_without_rise():
    assert loss_gap_onset([0, 1, 2], [0.5, 0.5, 0.5]) is None
    assert loss_gap_onset([0, 1, 2, 3], [0.5, 0.4, 0.3, 0.2]) is None


def test_two_phase_summary():
    epochs, mean_orders, gaps = synthetic_run(minimum_epoch=12, onset_epoch=15)
    summary = two_phase_summary(epochs, mean_orders, gaps)
    assert summary == {"phase2_start": 12, "gap_onset": 15, "distance_epochs": 3}
    flat = two_phase_summary(epochs, mean_orders, np.zeros_like(gaps))
    assert flat["gap_onset"] is None and flat["distance_epochs"] is None


def test_bad_series_are_named():
    with pytest.raises(ValueError, match="mean_orders"):
        phase2_start([0, 1, 2], [1.0, 2.0])
    with pytest.raises(ValueError, match="increasing"):
        phase2_start([0, 2, 1], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="gaps"):
        loss_gap_onset([0, 1], [0.0, np.nan])
    with pytest.raises(ValueError, match="fraction"):
        loss_gap_onset([0, 1, 2], [0.0, 1.0, 2.0], fraction=1.5)
