"""Sensitivity of interactions by order: planted models whose high orders are (or are not)
more sensitive, the trend statistic and its permutation null, the perturbations."""

import numpy as np
import pytest
import torch

from harsanyi import sensitivity as sens
from harsanyi.games import TabularMasker

N = 5


class TwoClass(torch.nn.Module):
    """Logits [f(x), 0], so the log-odds of class 0 is f(x)."""

    def forward(self, x):
        f = self.f(x)
        return torch.stack((f, torch.zeros_like(f)), dim=-1)


class Product(TwoClass):
    """f(x) = Π_i (1 + x_i) − 1 over the players: I_and(S) = Π_{i∈S} x_i (zero baseline), so
    an order-k term changes by a product of k factors."""

    def f(self, x):
        return torch.prod(1 + x[:, :N], dim=-1) - 1


class Linear(TwoClass):
    """f(x) = w·x + b: only order-1 interactions."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-1.0, 1.5, N + 1, dtype=torch.float64))

    def f(self, x):
        return x @ self.w + 0.3


class ScaledGame(TwoClass):
    """f(x) = x_c·G(players present), x_c a non-player column: every interaction of every order
    scales by the same factor when x_c moves, and the players' noise changes nothing."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        game = rng.normal(size=2**N)
        game[0] = 0.0
        self.register_buffer("game", torch.tensor(game))

    def f(self, x):
        present = (x[:, :N] != 0).long()
        index = (present * (2 ** torch.arange(N - 1, -1, -1))).sum(-1)
        return x[:, N] * self.game[index]


def inputs(samples=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.6, 1.2, size=(samples, N + 1))
    return torch.tensor(x), torch.zeros(samples, dtype=torch.long)


MASKER = TabularMasker(list(range(N)))


def run(model, **kwargs):
    x, y = inputs()
    settings = {"sigmas": (0.02, 0.05), "pgd_eps": (0.05,), "qthres": 0.0, "n_perm": 500}
    return sens.sensitivity_by_order(model, MASKER, x, y, **{**settings, **kwargs})


def test_product_model_scores_the_trend_under_noise_and_pgd():
    result = run(Product())
    assert result.perturbations == ["gauss:0.02", "gauss:0.05", "pgd:0.05"]
    assert result.relative.shape == (3, 12, N)
    assert result.trend.supported.all(), result.trend
    assert (result.trend.rho > 0.3).all() and (result.trend.p_value < 0.01).all()
    assert result.trend.rho.iloc[-1] == pytest.approx(1.0)  # PGD: every sample, every order
    means = result.summary.pivot(index="order", columns="perturbation", values="mean")
    assert (np.diff(means.to_numpy(), axis=0) > 0).all()  # rises with order on average
    # larger noise, larger change
    assert (means["gauss:0.05"] > means["gauss:0.02"]).all()
    assert result.clean.certified.all()
    assert set(result.summary.columns) >= {"mean", "low", "high", "n_samples"}
    assert (result.summary["low"] <= result.summary["mean"]).all()


def test_linear_model_does_not_score_the_trend():
    result = run(Linear())
    assert not result.trend.supported.any()
    # only order 1 carries interactions: higher orders are undefined, not "insensitive"
    assert np.isfinite(result.relative[:, :, 0]).all()
    assert np.isnan(result.relative[:, :, 1:]).all()
    assert (result.trend.n_samples == 0).all() and result.trend.rho.isna().all()


def test_uniformly_scaled_game_has_no_trend_at_any_order():
    result = run(ScaledGame())
    assert np.isfinite(result.relative).all()
    assert not result.trend.supported.any()
    np.testing.assert_allclose(result.trend.rho, 0.0, atol=1e-12)
    # all orders change by the same factor |δ_c / x_c|
    spread = np.ptp(result.relative, axis=-1) / result.relative.max(axis=-1)
    assert (spread < 1e-6).all()


def test_trend_statistic_and_its_permutation_null():
    rng = np.random.default_rng(1)
    rising = np.cumsum(rng.uniform(0.1, 1.0, size=(20, 6)), axis=1)
    test = sens.trend_test(rising, n_perm=400)
    assert test["rho"] == pytest.approx(1.0) and test["supported"]
    assert test["p_value"] == pytest.approx(1 / 401)
    falling = rising[:, ::-1]
    assert not sens.trend_test(falling, n_perm=400)["supported"]
    noise = rng.uniform(size=(20, 6))
    noisy = sens.trend_test(noise, n_perm=400)
    assert not noisy["supported"] and noisy["p_value"] > 0.05
    # fewer than min_orders defined orders: no statistic
    sparse = np.full((5, 6), np.nan)
    sparse[:, :2] = 1.0
    assert np.isnan(sens.order_trend(sparse)).all()
    assert sens.trend_test(sparse)["n_samples"] == 0
    # ties within rtol count as equal: ρ = 0
    flat = np.full((3, 6), 0.1) * (1 + 1e-12 * rng.normal(size=(3, 6)))
    np.testing.assert_array_equal(sens.order_trend(flat), 0.0)


def test_relative_change_by_order_from_the_definition():
    n = 3
    a = np.zeros((1, 2**n))
    o = np.zeros((1, 2**n))
    a[0, [1, 2]] = [1.0, -2.0]  # order 1 (players 2 and 1)
    o[0, 3] = 4.0  # order 2 ({1, 2})
    a2, o2 = a.copy(), o.copy()
    a2[0, 1] = 1.5
    o2[0, 3] = 3.0
    a2[0, 7] = 0.5  # order 3 appears: undefined relative change (no clean strength)
    rel = sens.relative_change_by_order(a, o, a2, o2)
    np.testing.assert_allclose(rel[0, :2], [0.5 / 3.0, 1.0 / 4.0])
    assert np.isnan(rel[0, 2])


def test_pgd_stays_in_budget_and_lowers_the_output():
    model = Product()
    x, y = inputs(4)
    adv = sens.pgd_perturbation(model, x, y, eps=0.05, steps=3)
    assert (adv - x).abs().max() <= 0.05 + 1e-12
    assert (model.f(adv) < model.f(x)).all()
    assert model.training  # eval mode restored
    with pytest.raises(ValueError, match="floating"):
        sens.pgd_perturbation(model, torch.zeros(2, 3, dtype=torch.long), y[:2], 0.1)


def test_inputs_are_checked():
    x, y = inputs(2)
    with pytest.raises(ValueError, match="positive"):
        sens.sensitivity_by_order(Product(), MASKER, x, y, sigmas=(0.0,))
    with pytest.raises(ValueError, match="at least one"):
        sens.sensitivity_by_order(Product(), MASKER, x, y, sigmas=(), pgd_eps=())
