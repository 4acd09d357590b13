"""Attributions as allocations: exact identities, and captum on models with known answers."""

import numpy as np
import pytest
import torch
from torch import nn

from harsanyi.analyses.attributions import (
    captum_attributions,
    explained_share,
    occlusion_allocation,
    shapley_allocation,
)
from harsanyi.games import TabularMasker, game_values
from harsanyi.masks import index_of
from harsanyi.players import FeatureColumns
from harsanyi.sparsifier import sparsify


def test_occlusion_allocation_is_the_drop_of_the_decomposed_game():
    n = 5
    v = np.random.default_rng(0).normal(size=(4, 2**n))
    result = sparsify(v, solver="lp")
    game = v + result.q
    full = 2**n - 1
    drop = np.stack([game[:, full] - game[:, full - index_of([i], n)] for i in range(n)], 1)
    np.testing.assert_allclose(occlusion_allocation(result.I_and, result.I_or), drop, atol=1e-9)
    # Shapley: efficiency over the decomposed game
    phi = shapley_allocation(result.I_and, result.I_or)
    np.testing.assert_allclose(phi.sum(1), game[:, full] - game[:, 0], atol=1e-9)


def test_explained_share():
    a = np.array([[1.0, 2.0, 3.0]])
    assert explained_share(a, 2 * a) == pytest.approx(1.0)
    assert explained_share(a, np.array([[3.0, -1.0, -1 / 3]])) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(explained_share(a, np.zeros_like(a)))


class Linear(nn.Module):
    """Two classes, logit difference w·x: every attribution equals w_i·x_i."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float64), requires_grad=False)

    def forward(self, x):
        z = x @ self.w
        return torch.stack([torch.zeros_like(z), z], dim=1)


def test_captum_on_an_additive_model_matches_both_allocations():
    torch.manual_seed(0)
    w = torch.randn(8, dtype=torch.float64)
    x = torch.randn(5, 8, dtype=torch.float64)
    y = torch.ones(5, dtype=torch.long)
    columns = [1, 3, 4, 6]
    players = {"type": "features", "columns": columns}
    model = Linear(w)
    v = game_values(model, TabularMasker(columns, "zero"), x, y)
    result = sparsify(v.numpy(), solver="lp", qthres=0.0)  # q = 0: the game is v itself
    expected = (w[columns] * x[:, columns]).numpy()
    methods = captum_attributions(model, players, x, y)
    assert set(methods) == {"saliency", "input_x_gradient", "integrated_gradients", "occlusion"}
    for name in ["input_x_gradient", "integrated_gradients", "occlusion"]:
        np.testing.assert_allclose(methods[name], expected, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(methods["saliency"], np.broadcast_to(w[columns].numpy(), (5, 4)))
    for allocation in (shapley_allocation, occlusion_allocation):
        share = explained_share(methods["occlusion"], allocation(result.I_and, result.I_or))
        assert share == pytest.approx(1.0, abs=1e-6)


def test_captum_counts_every_player_when_the_players_cover_the_whole_input():
    w = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    x = torch.ones(2, 3, dtype=torch.float64)
    y = torch.ones(2, dtype=torch.long)
    players = FeatureColumns([2, 0, 1])  # a description or its stored dict
    methods = captum_attributions(Linear(w), players, x, y, methods=("occlusion",))
    np.testing.assert_allclose(methods["occlusion"], [[3.0, 1.0, -2.0]] * 2)


def test_captum_patches_sum_over_each_players_pixels():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, dtype=torch.float64))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[1, :] = 1.0  # logit difference = sum of all pixels
        model[1].bias.zero_()
    x = torch.ones(2, 1, 4, 4, dtype=torch.float64)
    y = torch.ones(2, dtype=torch.long)
    players = {"type": "patches", "image_size": [4, 4], "grid": [2, 2], "cells": [[0, 0], [1, 1]]}
    methods = captum_attributions(model, players, x, y, methods=("input_x_gradient", "occlusion"))
    np.testing.assert_allclose(methods["input_x_gradient"], 4.0)  # 4 pixels per patch
    np.testing.assert_allclose(methods["occlusion"], 4.0)


def test_text_players_are_refused():
    with pytest.raises(ValueError, match="tokens"):
        captum_attributions(
            nn.Identity(),
            {"type": "tokens", "n": 3},
            torch.zeros(1, 4),
            torch.zeros(1, dtype=torch.long),
        )
