"""Similarity metrics on hand-built cases, brute-force definitions and random baselines."""

import itertools

import numpy as np
import pytest
from scipy.special import comb

from harsanyi.masks import index_of, players_of
from harsanyi.metrics import (
    bootstrap_ci,
    coverage,
    coverage_sweep,
    jaccard,
    jaccard_per_order,
    order_vector,
    random_coverage_expectation,
    split_sign,
    topk_overlap,
    topk_overlap_sweep,
)


def test_split_sign():
    np.testing.assert_array_equal(split_sign([1.0, -2.0, 0.0]), [1, 0, 0, 0, 2, 0])
    assert split_sign(np.ones((3, 4))).shape == (3, 8)


def test_jaccard_identity_disjoint_and_value():
    a = np.array([1.0, -2.0, 0.5])
    assert jaccard(a, a) == 1.0
    assert jaccard([1.0, 0.0], [0.0, 1.0]) == 0.0
    assert jaccard([1.0], [-1.0]) == 0.0  # opposite signs share nothing
    # Σ min / Σ max over split halves: [1,0 | 0,2] vs [2,0 | 0,1] → (1+1)/(2+2).
    assert jaccard([1.0, -2.0], [2.0, -1.0]) == pytest.approx(0.5)
    assert np.isnan(jaccard([0.0, 0.0], [0.0, 0.0]))


@pytest.mark.parametrize("n,k", [(4, 1), (4, 2), (5, 3), (3, 3)])
def test_order_vector_picks_order_k(n, k):
    i_and = np.arange(2**n, dtype=float)[None] + 0.25
    i_or = -i_and
    vec = order_vector(i_and, i_or, k, n)
    assert vec.shape == (1, 2 * comb(n, k, exact=True))
    expected = [index_of(s, n) + 0.25 for s in itertools.combinations(range(n), k)]
    assert sorted(vec[0, : vec.shape[1] // 2]) == sorted(expected)
    np.testing.assert_array_equal(vec[0, vec.shape[1] // 2 :], -vec[0, : vec.shape[1] // 2])
    assert all(len(players_of(int(value), n)) == k for value in vec[0, : vec.shape[1] // 2])
    with pytest.raises(ValueError, match="order k"):
        order_vector(i_and, i_or, 0, n)


def test_jaccard_per_order_identical_sets_and_brute_force():
    rng = np.random.default_rng(0)
    n = 4
    i_and, i_or = rng.normal(size=(10, 16)), rng.normal(size=(10, 16))
    labels = np.array([0, 1] * 5)
    table = jaccard_per_order(i_and, i_or, labels, i_and, i_or, labels)
    np.testing.assert_allclose(table["similarity"], 1.0)
    assert table.index.tolist() == [1, 2, 3, 4]
    assert table["n_classes"].tolist() == [2] * 4

    other_and, other_or = rng.normal(size=(8, 16)), rng.normal(size=(8, 16))
    other_labels = np.array([0, 1, 2, 1, 0, 1, 2, 0])
    table = jaccard_per_order(i_and, i_or, labels, other_and, other_or, other_labels)
    for k in range(1, n + 1):
        coalitions = [index_of(s, n) for s in itertools.combinations(range(n), k)]
        sims = []
        for c in (0, 1):  # class 2 is missing from the first set
            a = np.concatenate(
                [i_and[labels == c][:, coalitions], i_or[labels == c][:, coalitions]], 1
            )
            b = np.concatenate(
                [
                    other_and[other_labels == c][:, coalitions],
                    other_or[other_labels == c][:, coalitions],
                ],
                1,
            )
            ma, mb = a.mean(0), b.mean(0)
            sa = np.concatenate([np.maximum(ma, 0), np.maximum(-ma, 0)])
            sb = np.concatenate([np.maximum(mb, 0), np.maximum(-mb, 0)])
            sims.append(np.minimum(sa, sb).sum() / np.maximum(sa, sb).sum())
        assert table.loc[k, "similarity"] == pytest.approx(np.mean(sims))


def test_jaccard_variants_differ_where_signs_cancel():
    n = 2
    target = index_of([0], n)
    a_and = np.zeros((2, 4))
    a_and[:, target] = [1.0, -1.0]  # average 0, but each sample is strong
    b_and = np.zeros((1, 4))
    b_and[0, target] = 1.0
    zeros_a, zeros_b = np.zeros_like(a_and), np.zeros_like(b_and)
    args = (a_and, zeros_a, [0, 0], b_and, zeros_b, [0])
    average_first = jaccard_per_order(*args, order_list=[1])
    split_first = jaccard_per_order(*args, order_list=[1], variant="split_then_average")
    assert average_first.loc[1, "similarity"] == 0.0
    assert split_first.loc[1, "similarity"] == pytest.approx(0.5 / 1.5)
    long = jaccard_per_order(*args, per_class=True)
    assert list(long.columns) == ["order", "label", "similarity"]
    with pytest.raises(ValueError, match="variant"):
        jaccard_per_order(*args, variant="other")
    with pytest.raises(ValueError, match="share no class"):
        jaccard_per_order(a_and, zeros_a, [0, 0], b_and, zeros_b, [1])


def test_coverage_identical_disjoint_partial():
    omega = np.array([True, True, False, False])
    assert coverage(omega, omega) == 1.0
    assert coverage(omega, ~omega) == 0.0
    assert coverage(omega, np.array([True, False, True, True])) == 0.5
    assert np.isnan(coverage(np.zeros(4, bool), omega))
    assert random_coverage_expectation(3, 5, 20) == 0.25
    with pytest.raises(ValueError, match="universe"):
        random_coverage_expectation(3, 30, 20)


def test_coverage_sweep_identical_models_and_random_baseline():
    rng = np.random.default_rng(3)
    n = 5
    i_and, i_or = rng.standard_t(2, size=(20, 32)), rng.standard_t(2, size=(20, 32))
    taus = [0.05, 0.1, 0.3]
    table = coverage_sweep(i_and, i_or, i_and, i_or, taus=taus, tau2=0.05, seed=1, n_draws=200)
    assert len(table) == 20 * 3
    # Ω₁ at τ₁ ≥ τ₂ is a subset of Ω₂ for the same model: full coverage.
    np.testing.assert_allclose(table["coverage"], 1.0)
    expected = table["size2"] / (2 * (2**n - 1))
    np.testing.assert_allclose(table["random_expected"], expected)
    # The empirical random baseline averages to the analytic expectation.
    gap = (table["random_empirical"] - table["random_expected"]).abs()
    assert gap.max() < 0.05
    assert abs(table["random_empirical"].mean() - table["random_expected"].mean()) < 0.01

    # Two models whose salient interactions are different coalitions: coverage 0.
    disjoint_and = np.zeros_like(i_and)
    disjoint_and[:, 1] = 1.0
    disjoint_or = np.zeros_like(i_or)
    disjoint_or[:, 2] = 1.0
    table = coverage_sweep(disjoint_and, np.zeros_like(i_or), np.zeros_like(i_and), disjoint_or)
    np.testing.assert_allclose(table["coverage"], 0.0)


def test_topk_overlap():
    x = np.arange(16, dtype=float)
    x[0] = 1000.0  # ∅ must be ignored
    assert topk_overlap(x, x, 0.25) == 1.0
    assert topk_overlap(x, -x, 0.25) == 1.0  # by |I|: sign does not matter
    y = x.copy()
    y[1:] = x[1:][::-1]  # reverse the ranking of non-empty coalitions
    assert topk_overlap(x, y, 0.25) == 0.0  # K = 4 of 15: top and bottom are disjoint
    z = x.copy()
    z[15], z[1] = z[1], z[15]  # swap the strongest with the weakest
    assert topk_overlap(x, z, 0.25) == pytest.approx(3 / 4)
    assert topk_overlap(x, x, 0.01) == 1.0  # K = max(1, ·)
    with pytest.raises(ValueError, match="r must"):
        topk_overlap(x, x, 0.0)


def test_topk_sweep_random_baseline():
    rng = np.random.default_rng(4)
    i1_and, i1_or = rng.normal(size=(10, 64)), rng.normal(size=(10, 64))
    table = topk_overlap_sweep(i1_and, i1_or, i1_and, i1_or, seed=2, n_draws=300)
    np.testing.assert_allclose(table["overlap"], 1.0)
    assert set(table["op"]) == {"and", "or"}
    np.testing.assert_allclose(table["r"].unique(), np.arange(0.05, 0.46, 0.05))
    np.testing.assert_allclose(table["random_expected"], table["k"] / 63)
    assert (table["random_empirical"] - table["random_expected"]).abs().max() < 0.05

    # Independent models: overlap per sample agrees with the single-sample function.
    i2_and, i2_or = rng.normal(size=(10, 64)), rng.normal(size=(10, 64))
    table = topk_overlap_sweep(i1_and, i1_or, i2_and, i2_or, ratios=[0.2])
    row = table[(table["op"] == "or") & (table["sample"] == 3)].iloc[0]
    assert row["overlap"] == topk_overlap(i1_or[3], i2_or[3], 0.2)
    assert row["k"] == round(0.2 * 64)


def test_bootstrap_ci():
    rng = np.random.default_rng(5)
    values = rng.normal(loc=2.0, scale=1.0, size=400)
    estimate, low, high = bootstrap_ci(values, n_boot=500, seed=1)
    assert estimate == pytest.approx(values.mean())
    assert low < estimate < high
    half_width = 1.96 / np.sqrt(values.size)  # normal theory for the mean
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.2)
    assert bootstrap_ci(values, n_boot=500, seed=1) == (estimate, low, high)
    _, low_median, high_median = bootstrap_ci(values, stat=np.median, n_boot=200)
    assert low_median < np.median(values) < high_median
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(values, level=1.5)
