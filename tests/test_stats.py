"""Salient sets, order strength and Shapley values against brute force and hand-built cases."""

import itertools
import math

import numpy as np
import pytest

from harsanyi.masks import index_of, players_of
from harsanyi.stats import (
    mean_order,
    model_threshold,
    order_distribution,
    order_strength,
    order_strength_per_sample,
    salient_count,
    salient_masks,
    salient_threshold,
    shapley_from_and,
    sparsity_curve,
)
from harsanyi.transforms import and_transform, or_transform


def hand_built():
    """n = 3, one sample; ∅ holds the largest value, which must be ignored."""
    n = 3
    i_and, i_or = np.zeros(8), np.zeros(8)
    i_and[0] = -50.0
    i_and[index_of([0], n)] = 10.0
    i_and[index_of([0, 1], n)] = -0.4
    i_and[index_of([1, 2], n)] = 0.6
    i_or[0] = 7.0
    i_or[index_of([0, 1, 2], n)] = -0.5
    i_or[index_of([0, 2], n)] = 0.49
    return i_and[None], i_or[None]


def brute_strength(i_and, i_or, ratio):
    """I⁺(k), I⁻(k) by looping over samples, operators and coalitions."""
    samples, size = i_and.shape
    n = int(math.log2(size))
    positive, negative = np.zeros(n), np.zeros(n)
    for x in range(samples):
        peak = max(abs(values[x, s]) for values in (i_and, i_or) for s in range(1, size))
        tau = ratio * peak
        for values in (i_and, i_or):
            for s in range(1, size):
                value = values[x, s]
                if abs(value) >= tau and value != 0:
                    k = len(players_of(s, n))
                    if value > 0:
                        positive[k - 1] += value
                    else:
                        negative[k - 1] += value
    return positive / samples, negative / samples


def test_threshold_excludes_empty_set():
    i_and, i_or = hand_built()
    np.testing.assert_allclose(salient_threshold(i_and, i_or, ratio=0.05), [0.5])


def test_salient_masks_hand_built():
    i_and, i_or = hand_built()
    and_mask, or_mask = salient_masks(i_and, i_or, ratio=0.05)  # τ = 0.5
    n = 3
    assert set(np.flatnonzero(and_mask[0])) == {index_of([0], n), index_of([1, 2], n)}
    assert set(np.flatnonzero(or_mask[0])) == {index_of([0, 1, 2], n)}
    assert salient_count(i_and, i_or, ratio=0.05).tolist() == [3]
    # An explicit τ overrides the ratio; ∅ stays out even when τ = 0.
    and_mask, or_mask = salient_masks(i_and, i_or, tau=0.0)
    assert not and_mask[0, 0] and not or_mask[0, 0]
    assert and_mask.sum() == 3 and or_mask.sum() == 2


def test_order_strength_hand_built():
    i_and, i_or = hand_built()
    table = order_strength(i_and, i_or, ratio=0.05)
    assert table.index.tolist() == [1, 2, 3]
    np.testing.assert_allclose(table["positive"], [10.0, 0.6, 0.0])
    np.testing.assert_allclose(table["negative"], [0.0, 0.0, -0.5])
    np.testing.assert_allclose(
        order_distribution(i_and, i_or, ratio=0.05), np.array([10.0, 0.6, 0.5]) / 11.1
    )


@pytest.mark.parametrize("ratio", [0.0, 0.05, 0.3])
def test_order_strength_matches_brute_force(ratio):
    rng = np.random.default_rng(1)
    n = 5
    i_and = rng.standard_t(2, size=(6, 2**n))
    i_or = rng.standard_t(2, size=(6, 2**n))
    expected_pos, expected_neg = brute_strength(i_and, i_or, ratio)
    table = order_strength(i_and, i_or, ratio=ratio)
    np.testing.assert_allclose(table["positive"], expected_pos, atol=1e-12)
    np.testing.assert_allclose(table["negative"], expected_neg, atol=1e-12)
    distribution = order_distribution(i_and, i_or, ratio=ratio)
    total = expected_pos - expected_neg
    np.testing.assert_allclose(distribution, total / total.sum())
    assert distribution.sum() == pytest.approx(1.0)


def test_per_sample_distribution_and_scale_invariance():
    rng = np.random.default_rng(2)
    i_and, i_or = rng.normal(size=(4, 16)), rng.normal(size=(4, 16))
    per_sample = order_distribution(i_and, i_or, per_sample=True)
    assert per_sample.shape == (4, 4)
    np.testing.assert_allclose(per_sample.sum(axis=1), 1.0)
    # τ is relative to each sample's max, so rescaling one sample leaves its distribution.
    scaled_and, scaled_or = i_and.copy(), i_or.copy()
    scaled_and[0] *= 100
    scaled_or[0] *= 100
    np.testing.assert_allclose(
        order_distribution(scaled_and, scaled_or, per_sample=True), per_sample
    )
    positive, negative = order_strength_per_sample(i_and, i_or)
    assert np.all(positive >= 0) and np.all(negative <= 0)


def test_empty_set_never_counts():
    i_and, i_or = np.zeros((1, 8)), np.zeros((1, 8))
    i_and[0, 0] = 5.0
    i_and[0, 3] = 1.0
    distribution = order_distribution(i_and, i_or, tau=0.0)
    np.testing.assert_allclose(distribution, [0.0, 1.0, 0.0])
    assert np.all(np.isnan(order_distribution(np.eye(1, 8), np.zeros((1, 8)), tau=0.0)))


def test_mean_order():
    assert mean_order([1.0, 0.0, 0.0]) == 1.0
    assert mean_order([0.25, 0.25, 0.25, 0.25]) == pytest.approx(2.5)
    assert mean_order([2.0, 0.0, 2.0]) == pytest.approx(2.0)  # unnormalised input is fine
    with pytest.raises(ValueError, match="distribution"):
        mean_order([0.0, 0.0])
    with pytest.raises(ValueError, match="distribution"):
        mean_order([[0.5, 0.5]])


def test_model_threshold():
    v = np.zeros((3, 4))
    v[:, -1] = [1.0, -2.0, 3.0]
    v[:, 0] = [0.0, 0.0, 1.0]
    assert model_threshold(v, ratio=0.03) == pytest.approx(0.03 * (1 + 2 + 2) / 3)


def test_sparsity_curve():
    i_and, i_or = hand_built()
    curve = sparsity_curve(i_and, i_or)
    assert curve.shape == (1, 14)
    np.testing.assert_allclose(curve[0, :5], [10.0, 0.6, 0.5, 0.49, 0.4])
    assert np.all(curve[0, 5:] == 0)  # ∅ values -50 and 7 are not in the curve
    np.testing.assert_allclose(sparsity_curve(i_and, i_or, normalise=True)[0, :2], [1.0, 0.06])


def brute_shapley(v, n):
    """φ_i = Σ_{S⊆N∖i} |S|!(n−|S|−1)!/n! · (v(S ∪ i) − v(S))."""
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for s in itertools.combinations(others, size):
                phi[i] += weight * (v[index_of([*s, i], n)] - v[index_of(s, n)])
    return phi


@pytest.mark.parametrize("n", [1, 3, 6])
def test_shapley_from_and_matches_brute_force(n):
    rng = np.random.default_rng(n)
    v = rng.normal(size=(3, 2**n))
    phi = shapley_from_and(and_transform(v))
    expected = np.stack([brute_shapley(row, n) for row in v])
    np.testing.assert_allclose(phi, expected, atol=1e-10)
    np.testing.assert_allclose(phi.sum(axis=1), v[:, -1] - v[:, 0], atol=1e-10)

    # Any AND-OR split of v gives the Shapley value of v.
    v_and = rng.normal(size=v.shape)
    phi_split = shapley_from_and(and_transform(v_and), or_transform(v - v_and))
    np.testing.assert_allclose(phi_split, expected, atol=1e-10)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="I_and and I_or"):
        salient_masks(np.zeros((2, 8)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="2\\^n"):
        order_strength(np.zeros((2, 6)), np.zeros((2, 6)))
    with pytest.raises(ValueError, match="tau"):
        salient_masks(np.zeros((2, 8)), np.zeros((2, 8)), tau=-1.0)
