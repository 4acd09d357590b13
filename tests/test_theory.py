"""Spindle and phase-2 theory against explicit matrices, simulation and planted σ²."""

import numpy as np
import pytest
from scipy.special import comb

from harsanyi.masks import orders, players_of
from harsanyi.theory import (
    fit_sigma2,
    gram_matrix,
    low_high_ratio,
    phase2_solution,
    predicted_distribution,
    spindle_distribution,
    spindle_strength,
)
from harsanyi.transforms import and_transform


def explicit_j(n):
    """J[S, T] = 1 iff T ⊆ S, from sets."""
    sets = [frozenset(players_of(i, n)) for i in range(2**n)]
    return np.array([[float(t <= s) for t in sets] for s in sets])


def test_spindle_formula_peaks_at_six_for_ten_players():
    strength = spindle_strength(10)
    k = np.arange(11)
    ratio = strength / (comb(10, k) * 2.0 ** (k / 2))
    np.testing.assert_allclose(ratio, ratio[0])  # ∝ C(n,k)·2^{k/2}
    assert int(np.argmax(strength[1:])) + 1 == 6
    distribution = spindle_distribution(10, "iid_v")
    assert distribution.shape == (10,) and distribution.sum() == pytest.approx(1.0)
    assert int(np.argmax(distribution)) + 1 == 6


def test_seed_spindle_is_binomial_and_matches_iid_interactions():
    """The seed's theorem (i.i.d. interactions): strength per order ∝ C(n,k), the default."""
    n = 10
    k = np.arange(1, n + 1)
    np.testing.assert_allclose(spindle_distribution(n), comb(n, k) / (2**n - 1))
    np.testing.assert_array_equal(spindle_distribution(n), spindle_distribution(n, "binomial"))
    assert int(np.argmax(spindle_distribution(n))) + 1 == 5
    rng = np.random.default_rng(0)
    strength = np.abs(rng.normal(size=(500, 2**n)))  # i.i.d. I(S)
    size = orders(n)
    empirical = np.array([strength[:, size == j].sum() for j in k])
    np.testing.assert_allclose(empirical / empirical.sum(), spindle_distribution(n), rtol=0.05)
    far = np.abs(empirical / empirical.sum() - spindle_distribution(n, "iid_v")).max()
    assert far > 0.05  # the two templates are told apart by the same data
    with pytest.raises(ValueError, match="template"):
        spindle_distribution(n, "gaussian")


def test_spindle_matches_iid_noise_simulation():
    n, s2 = 10, 0.25
    rng = np.random.default_rng(0)
    v = rng.normal(scale=np.sqrt(s2), size=(2000, 2**n))
    strength = np.abs(and_transform(v))
    size = orders(n)
    empirical = np.array([strength[:, size == k].mean() * comb(n, k) for k in range(n + 1)])
    np.testing.assert_allclose(empirical, spindle_strength(n, s2), rtol=0.05)
    assert int(np.argmax(empirical[1:])) + 1 == 6


@pytest.mark.parametrize("n", [1, 2, 4, 5])
def test_gram_matrix_equals_explicit_product(n):
    j = explicit_j(n)
    np.testing.assert_array_equal(gram_matrix(n), j.T @ j)


def test_phase2_solution_equals_augmented_least_squares():
    n = 4
    rng = np.random.default_rng(1)
    w_star = rng.normal(size=2**n)
    j = explicit_j(n)
    for sigma2 in [1e-4, 1e-2, 0.5]:
        c = 2.0 ** orders(n) * sigma2
        system = np.vstack([j, np.diag(np.sqrt(2**n * c))])
        target = np.concatenate([j @ w_star, np.zeros(2**n)])
        expected = np.linalg.lstsq(system, target, rcond=None)[0]
        np.testing.assert_allclose(phase2_solution(w_star, sigma2), expected, atol=1e-10)
    np.testing.assert_allclose(phase2_solution(w_star, 0.0), w_star, atol=1e-10)
    batch = rng.normal(size=(3, 2**n))
    np.testing.assert_allclose(
        phase2_solution(batch, 0.1), np.stack([phase2_solution(w, 0.1) for w in batch])
    )


def test_phase2_solution_minimises_simulated_noisy_loss():
    """Average the normal equations of (J+ε) over many noise draws, Var ε_{S,T} = 2^{|T|}σ²."""
    n, sigma2, draws = 3, 0.05, 40000
    rng = np.random.default_rng(2)
    w_star = rng.normal(size=2**n)
    j = explicit_j(n)
    y = j @ w_star
    scale = np.sqrt(2.0 ** orders(n) * sigma2)
    noisy = j[None] + rng.normal(size=(draws, 2**n, 2**n)) * scale[None, None, :]
    lhs = np.einsum("dst,dsu->tu", noisy, noisy) / draws
    rhs = np.einsum("dst,s->t", noisy, y) / draws
    simulated = np.linalg.solve(lhs, rhs)
    np.testing.assert_allclose(phase2_solution(w_star, sigma2), simulated, atol=0.05)


def direct_distribution(w_star, sigma2, n):
    strength = np.abs(np.atleast_2d(phase2_solution(w_star, sigma2))).sum(axis=0)
    per_order = np.array([strength[orders(n) == k].sum() for k in range(1, n + 1)])
    return per_order / per_order.sum()


@pytest.mark.parametrize("n,sigma2s", [(5, [0.0, 1e-6, 1e-3, 1.0, 100.0]), (10, [1e-5, 1e-2])])
def test_predicted_distribution_equals_direct_solve(n, sigma2s):
    rng = np.random.default_rng(n)
    w_star = rng.normal(size=(2, 2**n))
    for sigma2 in sigma2s:
        predicted = predicted_distribution(w_star, sigma2)
        assert predicted.shape == (n,) and predicted.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(predicted, direct_distribution(w_star, sigma2, n), atol=1e-8)


@pytest.mark.parametrize("n,planted", [(6, 3e-3), (6, 0.4), (8, 2e-4)])
def test_fit_sigma2_recovers_planted_value(n, planted):
    rng = np.random.default_rng(7)
    w_star = rng.normal(size=(3, 2**n))
    measured = predicted_distribution(w_star, planted)
    assert fit_sigma2(w_star, measured) == pytest.approx(planted, rel=1e-3)
    coarse = fit_sigma2(w_star, measured, refine=False)
    assert coarse in np.logspace(-6, 2, 81)
    assert abs(np.log10(coarse) - np.log10(planted)) <= 0.05 + 1e-9


def test_low_high_ratio_rises_with_sigma2():
    n = 6
    rng = np.random.default_rng(3)
    w_star = rng.normal(size=2**n)
    sigma2s = np.logspace(-6, 1, 8)
    ratios = [low_high_ratio(phase2_solution(w_star, s), n) for s in sigma2s]
    assert np.all(np.diff(ratios) > 0)
    for split in (2, 5):
        assert low_high_ratio(phase2_solution(w_star, 1.0), n, split) > low_high_ratio(
            phase2_solution(w_star, 1e-5), n, split
        )


def test_low_high_ratio_split():
    n = 3
    w = np.zeros(8)
    w[0] = 100.0  # ∅ is in neither part
    w[orders(n) == 1] = 1.0  # 3 · 1
    w[orders(n) == 2] = -2.0  # 3 · 2
    w[orders(n) == 3] = 4.0
    assert low_high_ratio(w, n) == pytest.approx(3 / (6 + 4))
    assert low_high_ratio(w, n, split_order=2) == pytest.approx(9 / 4)
    with pytest.raises(ValueError, match="split_order"):
        low_high_ratio(w, n, split_order=3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="sigma2"):
        phase2_solution(np.zeros(8), -1.0)
    with pytest.raises(ValueError, match="measured_distribution"):
        fit_sigma2(np.ones(8), [0.5, 0.5])
    with pytest.raises(ValueError, match="2\\^n"):
        predicted_distribution(np.ones(7), 0.1)
