"""Masked extraction against planted games, brute-force masking and the definitions."""

import math

import pytest
import torch
from torch import nn

from harsanyi.games import (
    FeatureMapMasker,
    ImageMasker,
    Masker,
    PatchGrid,
    TabularMasker,
    TextMasker,
    choose_token_players,
    game_values,
    log_odds,
    log_softmax,
    logit,
)
from harsanyi.masks import coalition_matrix, index_of, players_of
from harsanyi.players import FeatureColumns
from harsanyi.transforms import and_transform, dense_and_matrix, dense_or_matrix, or_transform

torch.manual_seed(0)


def cell_pixels(grid: PatchGrid, cell):
    """Brute-force pixel set of a cell, from the PatchGrid docstring's definition."""
    (h, w), (gh, gw) = grid.image_size, grid.grid
    r, c = cell
    rows = [i for i in range(h) if r * h // gh <= i < (r + 1) * h // gh]
    cols = [j for j in range(w) if c * w // gw <= j < (c + 1) * w // gw]
    return {(i, j) for i in rows for j in cols}


def nonlinear(s: torch.Tensor) -> torch.Tensor:
    return torch.tanh(s) + 0.3 * s**2


class TwoClassHead(nn.Module):
    """logits (g, -g): log-odds 2g for label 0."""

    def __init__(self, score):
        super().__init__()
        self.score = score

    def forward(self, x):
        g = nonlinear(self.score(x))
        return torch.stack((g, -g), dim=-1)


class Capture(nn.Module):
    """Records its input rows, returns two logits from them."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        s = x.flatten(1).sum(1)
        return torch.stack((s, -s), dim=-1)


def only_subsets_of(player: int, n: int):
    """Mask indices of coalitions containing no player other than `player`."""
    return {0, index_of([player], n)}


# ----------------------------------------------------------------------------- players


def test_patch_grid_pixel_masks_match_cell_definition():
    grid = PatchGrid((7, 10), (3, 4), [(0, 0), (2, 3), (1, 2)])
    masks = grid.pixel_masks()
    assert masks.shape == (3, 7, 10)
    for j, cell in enumerate(grid.cells):
        got = {(int(i), int(k)) for i, k in masks[j].nonzero()}
        assert got == cell_pixels(grid, cell)
    all_cells = PatchGrid((7, 10), (3, 4), [(r, c) for r in range(3) for c in range(4)])
    assert all_cells.pixel_masks().sum(0).eq(1).all()  # a partition of the image


def test_patch_grid_random_is_seeded_distinct_and_round_trips():
    a = PatchGrid.random((28, 28), (7, 7), 10, seed=3)
    assert a == PatchGrid.random((28, 28), (7, 7), 10, seed=3)
    assert a != PatchGrid.random((28, 28), (7, 7), 10, seed=4)
    assert len(set(a.cells)) == 10 and a.n == 10
    assert all(0 <= r < 7 and 0 <= c < 7 for r, c in a.cells)
    assert PatchGrid.from_dict(a.to_dict()) == a


def test_patch_grid_errors_name_the_bad_cell():
    with pytest.raises(ValueError, match=r"\(4, 1\)"):
        PatchGrid((8, 8), (4, 4), [(0, 0), (4, 1)])
    with pytest.raises(ValueError, match="grid"):
        PatchGrid((8, 8), (9, 4), [(0, 0)])
    with pytest.raises(ValueError, match="n=17"):
        PatchGrid.random((8, 8), (4, 4), 17, seed=0)


# ----------------------------------------------------------------------------- planted games


def test_image_model_reading_one_patch_has_interactions_only_of_that_player():
    grid = PatchGrid.random((8, 8), (4, 4), 6, seed=1)
    target = 4
    weights = torch.randn(3, 8, 8) * grid.pixel_masks()[target]
    model = TwoClassHead(lambda x: (x * weights).flatten(1).sum(1))
    x = torch.randn(5, 3, 8, 8)
    v = game_values(model, ImageMasker(grid), x, torch.zeros(5, dtype=torch.long))
    interactions = and_transform(v)
    allowed = only_subsets_of(target, grid.n)
    others = [i for i in range(2**grid.n) if i not in allowed]
    assert interactions[:, others].abs().max() < 1e-9
    assert interactions[:, index_of([target], grid.n)].abs().min() > 1e-4
    # OR interactions of a one-player game also sit on that player alone
    assert or_transform(v)[:, others].abs().max() < 1e-9


def test_tabular_model_reading_one_feature_has_interactions_only_of_that_player():
    features = [7, 1, 4, 0, 9]
    target = 2  # player 2 = column 4
    model = TwoClassHead(lambda x: 1.5 * x[:, 4] - 0.5)
    x = torch.randn(6, 10)
    mean = torch.randn(10)
    v = game_values(model, TabularMasker(features, "mean", mean), x, torch.zeros(6).long())
    interactions = and_transform(v)
    others = [i for i in range(32) if i not in only_subsets_of(target, 5)]
    assert interactions[:, others].abs().max() < 1e-9
    expected_empty = 2 * nonlinear(1.5 * mean[4] - 0.5).double()
    torch.testing.assert_close(v[:, 0], expected_empty.expand(6), atol=1e-5, rtol=1e-5)


class TinyText(nn.Module):
    """embed / forward_embeds model; the score reads the embedding at one position only."""

    mask_token_id = 1

    def __init__(self, vocab=20, dim=4, read_position=None, capture=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.position = nn.Embedding(16, dim)
        self.head = nn.Linear(dim, 1)
        self.read_position = read_position
        self.capture = capture
        self.seen = []

    def embed(self, input_ids):
        return self.embedding(input_ids) + self.position(torch.arange(input_ids.shape[1]))

    def forward_embeds(self, embeds, attention_mask):
        if self.capture:
            self.seen.append(embeds.clone())
        if self.read_position is not None:
            s = self.head(embeds[:, self.read_position])[:, 0]
        else:
            s = self.head((embeds * attention_mask[..., None]).sum(1))[:, 0]
        g = nonlinear(s)
        return torch.stack((g, -g, 0.5 * g), dim=-1)


def test_text_model_reading_one_token_has_interactions_only_of_that_player():
    ids = torch.randint(2, 20, (3, 9))
    model = TinyText(read_position=5)
    positions = torch.tensor([[0, 2, 5, 8], [0, 2, 5, 8], [0, 2, 5, 8]])
    mask = torch.ones_like(ids)
    v = game_values(model, TextMasker(positions), ids, torch.tensor([0, 1, 2]), attention_mask=mask)
    interactions = and_transform(v)
    others = [i for i in range(16) if i not in only_subsets_of(2, 4)]
    assert interactions[:, others].abs().max() < 1e-9
    assert interactions[:, index_of([2], 4)].abs().min() > 1e-6


# ----------------------------------------------------------------------------- baselines


@pytest.mark.parametrize("budget", [3000, 2**30])  # chunks splitting samples, whole samples
@pytest.mark.parametrize("baseline", ["zero", "mean"])
def test_image_baseline_replaces_exactly_the_absent_patches(baseline, budget):
    grid = PatchGrid((6, 6), (3, 3), [(0, 1), (2, 2), (1, 0)])
    mean = torch.tensor([0.25, -1.5])
    x = torch.randn(2, 2, 6, 6)
    model = Capture()
    masker = ImageMasker(grid, baseline, mean=mean if baseline == "mean" else None)
    game_values(model, masker, x, torch.zeros(2).long(), memory_budget=budget)
    assert (len(model.seen) > 2) == (budget == 3000)
    seen = torch.cat(model.seen[1:])  # first call is the probe
    assert seen.shape == (2 * 8, 2, 6, 6)
    fill = mean if baseline == "mean" else torch.zeros(2)
    for row in range(16):
        sample, index = divmod(row, 8)
        expected = x[sample].clone()
        absent = set(range(3)) - set(players_of(index, 3))
        for j in absent:
            for i, k in cell_pixels(grid, grid.cells[j]):
                expected[:, i, k] = fill
        assert torch.equal(seen[row], expected)


def test_feature_map_is_zero_exactly_on_masked_patches_at_map_resolution():
    grid = PatchGrid((8, 8), (4, 4), [(0, 0), (1, 3), (3, 2), (2, 2)])
    conv = nn.Conv2d(1, 3, 3, stride=2, padding=1)  # 8x8 -> 4x4: cell (r, c) -> map (r, c)
    capture = Capture()
    model = nn.Sequential(conv, nn.ReLU(), capture)
    x = torch.randn(2, 1, 8, 8) + 1.0
    with torch.no_grad():
        full_map = torch.relu(conv(x))
    masker = FeatureMapMasker(grid, "1")
    game_values(model, masker, x, torch.zeros(2).long())
    seen = torch.cat(capture.seen[1:])
    for row in range(2 * 16):
        sample, index = divmod(row, 16)
        expected = full_map[sample].clone()
        for j in set(range(4)) - set(players_of(index, 4)):
            expected[:, grid.cells[j][0], grid.cells[j][1]] = 0
        assert torch.equal(seen[row], expected)


def test_feature_map_regions_pool_to_coarser_maps():
    grid = PatchGrid((8, 8), (8, 8), [(0, 0), (5, 6)])  # single pixels
    regions = FeatureMapMasker(grid, "x").map_regions((3, 3))
    # adaptive pooling 8 -> 3 uses windows [0,3), [2,6), [5,8): pixel 5 lies in windows 1 and 2
    expected = torch.zeros(2, 3, 3, dtype=torch.bool)
    expected[0, 0, 0] = True
    expected[1, 1:3, 2] = True
    assert torch.equal(regions, expected)


def test_masked_tokens_get_the_mask_embedding_and_others_stay():
    ids = torch.randint(2, 20, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 6] = 0
    positions = torch.tensor([[1, 3, 6], [0, 4, 5]])  # may differ per sample
    model = TinyText(capture=True)
    game_values(model, TextMasker(positions), ids, torch.tensor([2, 0]), attention_mask=mask)
    seen = torch.cat(model.seen[1:])
    with torch.no_grad():
        original = model.embed(ids)
        mask_embeds = model.embed(torch.full_like(ids, TinyText.mask_token_id))
    for row in range(16):
        sample, index = divmod(row, 8)
        expected = original[sample].clone()
        for j in set(range(3)) - set(players_of(index, 3)):
            p = positions[sample, j]
            expected[p] = mask_embeds[sample, p]
        torch.testing.assert_close(seen[row], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("baseline_token, token", [("pad_token", 0), ("mask_token", 1), (7, 7)])
def test_the_text_baseline_token_is_the_one_named(baseline_token, token):
    ids = torch.randint(2, 20, (1, 5))
    model = TinyText(capture=True)
    model.pad_token_id = 0
    masker = TextMasker(torch.tensor([[1, 3]]), baseline_token=baseline_token)
    game_values(model, masker, ids, torch.tensor([0]), attention_mask=torch.ones_like(ids))
    with torch.no_grad():
        expected = model.embed(torch.full_like(ids, token))[0, [1, 3]]
    empty = torch.cat(model.seen[1:])[0]  # after the probe, row 0 is the empty coalition
    torch.testing.assert_close(empty[[1, 3]], expected, rtol=0, atol=1e-6)
    assert masker.to_dict()["baseline"] == baseline_token


def test_choose_token_players_skips_special_and_padding_and_is_seeded():
    ids = torch.tensor([[101, 5, 6, 7, 8, 9, 102, 0], [101, 5, 6, 102, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    chosen = choose_token_players(ids[:1], mask[:1], [101, 102, 0], 3, seed=7)
    assert chosen.shape == (1, 3)
    assert set(chosen[0].tolist()) <= {1, 2, 3, 4, 5}
    assert chosen[0].tolist() == sorted(set(chosen[0].tolist()))
    assert torch.equal(chosen, choose_token_players(ids[:1], mask[:1], [101, 102, 0], 3, seed=7))
    draws = {
        tuple(choose_token_players(ids[:1], mask[:1], [101, 102], 3, s)[0].tolist())
        for s in range(20)
    }
    assert len(draws) > 1
    with pytest.raises(ValueError, match="sample 1"):
        choose_token_players(ids, mask, [101, 102], 3, seed=0)


# ----------------------------------------------------------------------------- the Masker base


class ScaledColumns(Masker):
    """The smallest masker: absent players' columns times 0.5 (to test the base class)."""

    name = "scaled"

    def __init__(self, players):
        super().__init__(players, "half")

    def check_inputs(self, model, x, attention_mask):
        self.players.check_width(x.shape[1])

    def row_bytes(self, model, x):
        return x[0].numel() * x.element_size()

    def masked_logits(self, model, x, rows, masks, attention_mask, samples):
        scale = torch.ones(len(rows), x.shape[1])
        present = coalition_matrix(self.n)[masks]
        for j, column in enumerate(self.players.columns):
            scale[~present[:, j], column] = 0.5
        return model(x[rows] * scale)


def test_a_masker_implements_three_methods_and_the_base_does_the_rest():
    masker = ScaledColumns(FeatureColumns([2, 0]))
    x = torch.tensor([[1.0, 10.0, 100.0]])
    model = Capture()
    v = game_values(model, masker, x, torch.zeros(1).long(), output="logit")
    # logit = sum of the row; players 0 (column 2) and 1 (column 0) halve their column
    assert v.tolist() == [[60.5, 61.0, 110.5, 111.0]]
    assert masker.n == 2 and masker.to_dict() == {
        "masker": "scaled",
        "baseline": "half",
        "players": {"type": "features", "columns": [2, 0]},
    }
    with pytest.raises(ValueError, match="feature player 2 outside the 2 columns"):
        game_values(model, masker, x[:, :2], torch.zeros(1).long())
    with pytest.raises(ValueError, match="ScaledColumns takes no attention_mask"):
        game_values(model, masker, x, torch.zeros(1).long(), attention_mask=torch.ones(1, 3))


def test_the_base_validates_every_chunk_before_delegating():
    masker = ScaledColumns(FeatureColumns([2, 0]))
    x = torch.ones(2, 3)
    with pytest.raises(ValueError, match=r"mask indices in \[0, 2\^2\)"):
        masker.forward(Capture(), x, torch.tensor([0, 1]), torch.tensor([3, 4]), None, slice(0, 2))
    with pytest.raises(ValueError, match="rows must index the 2 samples"):
        masker.forward(Capture(), x, torch.tensor([0, 2]), torch.tensor([0, 1]), None, slice(0, 2))
    with pytest.raises(ValueError, match=r"rows \(2,\) and masks \(1,\)"):
        masker.forward(Capture(), x, torch.tensor([0, 1]), torch.tensor([0]), None, slice(0, 2))
    with pytest.raises(ValueError, match=r"inputs must be a \(B, ...\) tensor, got \(3,\)"):
        masker.check(Capture(), torch.ones(3), None)


def test_maskers_take_players_descriptions_and_say_what_they_are():
    with pytest.raises(TypeError, match="abstract"):
        type("Incomplete", (Masker,), {"name": "x"})(FeatureColumns([0]), "zero")
    with pytest.raises(TypeError, match="ScaledColumns: players must be a Players"):
        ScaledColumns([0, 1])
    with pytest.raises(TypeError, match="ImageMasker masks patch players"):
        ImageMasker(FeatureColumns([0]))
    with pytest.raises(TypeError, match="FeatureMapMasker masks patch players"):
        FeatureMapMasker(FeatureColumns([0]), "1")
    grid = PatchGrid((4, 4), (2, 2), [(0, 0), (1, 1)])
    assert FeatureMapMasker(grid, "1").to_dict() == {
        "masker": "feature_map",
        "baseline": "zero",
        "players": grid.to_dict(),
        "layer": "1",
    }
    assert ImageMasker(grid, "mean", torch.zeros(1)).to_dict()["baseline"] == "mean"
    x = torch.randn(3, 5)
    as_list = game_values(Capture(), TabularMasker([4, 1], "zero"), x, torch.zeros(3).long())
    described = TabularMasker(FeatureColumns([4, 1]), "zero")
    assert torch.equal(as_list, game_values(Capture(), described, x, torch.zeros(3).long()))
    assert described.to_dict()["players"] == {"type": "features", "columns": [4, 1]}
    text = TextMasker(torch.tensor([[0, 2]]))
    assert text.to_dict() == {
        "masker": "text",
        "baseline": "mask_token",
        "players": {"type": "tokens", "n": 2},
        "positions": [[0, 2]],
    }
    with pytest.raises(ValueError, match="baseline_token must be a token id or one of"):
        TextMasker(torch.tensor([[0, 2]]), baseline_token="cls_token")


def test_text_attention_mask_must_match_the_input_ids():
    ids = torch.randint(2, 20, (2, 7))
    with pytest.raises(ValueError, match=r"attention_mask shape \(2, 6\) != input_ids shape"):
        game_values(
            TinyText(),
            TextMasker(torch.tensor([[1, 3], [0, 4]])),
            ids,
            torch.tensor([0, 0]),
            attention_mask=torch.ones(2, 6),
        )


# ----------------------------------------------------------------------------- outputs


def test_log_odds_matches_brute_force_and_other_outputs():
    logits = torch.randn(6, 4, dtype=torch.float64) * 3
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    for b in range(6):
        z = logits[b].tolist()
        others = sum(math.exp(z[j]) for j in range(4) if j != y[b])
        assert log_odds(logits, y)[b].item() == pytest.approx(z[y[b]] - math.log(others), abs=1e-12)
        assert logit(logits, y)[b].item() == z[y[b]]
        total = sum(math.exp(t) for t in z)
        assert log_softmax(logits, y)[b].item() == pytest.approx(
            z[y[b]] - math.log(total), abs=1e-12
        )


def test_log_odds_is_finite_for_huge_logits():
    logits = torch.tensor([[1e4, 1e4 - 1, -1e4], [-3e4, 2e4, 2e4]], dtype=torch.float32)
    out = log_odds(logits, torch.tensor([0, 0]))
    assert torch.isfinite(out).all()
    assert out[0].item() == pytest.approx(1.0, abs=1e-3)
    assert out[1].item() == pytest.approx(-5e4 - math.log(2), rel=1e-6)


# ----------------------------------------------------------------------------- chunking, errors


class Counting(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


def small_cnn(channels=1, classes=10):
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, classes),
    )


def test_results_identical_for_tiny_and_huge_budgets():
    grid = PatchGrid.random((8, 8), (4, 4), 5, seed=2)
    model = Counting(small_cnn().double())  # float64: batch-size-dependent kernels agree
    x, y = torch.randn(3, 1, 8, 8, dtype=torch.float64), torch.tensor([3, 0, 9])
    huge = game_values(model, ImageMasker(grid), x, y, memory_budget=2**40)
    assert model.calls == 2  # probe + one chunk
    budget = 256
    while True:  # smallest power of two that holds one row
        try:
            tiny = game_values(model, ImageMasker(grid), x, y, memory_budget=budget)
            break
        except MemoryError:
            budget *= 2
    model.calls = 0
    tiny = game_values(model, ImageMasker(grid), x, y, memory_budget=budget)
    assert model.calls - 1 > 3  # chunks split single samples' 32 masks
    torch.testing.assert_close(tiny, huge, atol=1e-12, rtol=0)


def test_budget_too_small_fails_before_any_forward_pass():
    grid = PatchGrid.random((8, 8), (4, 4), 5, seed=2)
    model = Counting(small_cnn())
    with pytest.raises(MemoryError, match=r"memory_budget=100 .*n=5"):
        game_values(
            model,
            ImageMasker(grid),
            torch.randn(2, 1, 8, 8),
            torch.zeros(2).long(),
            memory_budget=100,
        )
    assert model.calls == 0


def test_bad_labels_and_layers_and_images_are_named():
    grid = PatchGrid.random((8, 8), (4, 4), 3, seed=0)
    model = small_cnn()
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ValueError, match="label 10"):
        game_values(model, ImageMasker(grid), x, torch.tensor([1, 10]))
    with pytest.raises(ValueError, match="label -1"):
        game_values(model, ImageMasker(grid), x, torch.tensor([-1, 1]))
    with pytest.raises(KeyError, match=r"'33'.*'3'"):
        game_values(model, FeatureMapMasker(grid, "33"), x, torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        game_values(model, ImageMasker(grid), torch.randn(2, 1, 9, 8), torch.tensor([1, 1]))
    with pytest.raises(KeyError, match="nope"):
        game_values(model, ImageMasker(grid), x, torch.tensor([1, 1]), output="nope")


def test_eval_mode_during_extraction_and_mode_restored():
    grid = PatchGrid.random((8, 8), (4, 4), 4, seed=0)
    model = nn.Sequential(small_cnn(), nn.Dropout(0.5))
    model.train()
    model[0][0].eval()  # a mixed state must come back as it was
    x, y = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    first = game_values(model, ImageMasker(grid), x, y)
    second = game_values(model, ImageMasker(grid), x, y)
    assert torch.equal(first, second)  # dropout off
    assert model.training and model[1].training and not model[0][0].training


# ----------------------------------------------------------------------------- real CNN


def test_universal_matching_and_brute_force_values_on_random_cnn():
    n = 8
    grid = PatchGrid.random((8, 8), (4, 4), n, seed=5)
    model = small_cnn(channels=3)
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([4, 7])
    mean = torch.tensor([0.1, -0.2, 0.3])
    v = game_values(model, ImageMasker(grid, "mean", mean), x, y, memory_budget=2**18)
    assert v.dtype == torch.float64 and v.shape == (2, 2**n)
    # v against a by-hand masked forward pass for some coalitions
    with torch.no_grad():
        for index in [0, 1, 77, 200, 2**n - 1]:
            masked = x.clone()
            for j in set(range(n)) - set(players_of(index, n)):
                for i, k in cell_pixels(grid, grid.cells[j]):
                    masked[:, :, i, k] = mean
            expected = log_odds(model(masked).double(), y)
            torch.testing.assert_close(v[:, index], expected, atol=1e-5, rtol=1e-5)
    # universal matching with the dense oracles: v(S) = Σ_{T⊆S} I_and(T), and for OR
    a, b = dense_and_matrix(n), dense_or_matrix(n)
    i_and, i_or = and_transform(v), or_transform(v)
    torch.testing.assert_close(torch.linalg.solve(a, i_and.T).T, v, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.linalg.solve(b, i_or.T).T, v, atol=1e-10, rtol=0)
    assert i_and[:, 1:].abs().max() > 1e-3  # a real, non-additive game
