"""The O(n·2^n) transforms against brute-force definitions and planted games."""

import itertools

import numpy as np
import pytest
import torch

import harsanyi
from harsanyi.masks import coalition_matrix, index_of, orders, players_of
from harsanyi.transforms import dense_and_matrix, dense_or_matrix, mobius, zeta


def subsets(n):
    return [frozenset(players_of(i, n)) for i in range(2**n)]


def brute_and(v, n):
    sets = subsets(n)
    out = np.zeros(2**n)
    for i, s in enumerate(sets):
        out[i] = sum((-1) ** (len(s) - len(t)) * v[j] for j, t in enumerate(sets) if t <= s)
    return out


def brute_or(v, n):
    sets = subsets(n)
    full = frozenset(range(n))
    index = {s: i for i, s in enumerate(sets)}
    out = np.zeros(2**n)
    out[0] = v[0]
    for i, s in enumerate(sets[1:], start=1):
        out[i] = -sum((-1) ** (len(s) - len(t)) * v[index[full - t]] for t in sets if t <= s)
    return out


def test_mask_convention_player_zero_is_most_significant_bit():
    assert index_of([0], 3) == 0b100
    assert index_of([2], 3) == 0b001
    assert players_of(0b110, 3) == (0, 1)
    c = coalition_matrix(3)
    assert c[0b100].tolist() == [True, False, False]
    assert c[7].all() and not c[0].any()
    assert orders(3).tolist() == [0, 1, 1, 2, 1, 2, 2, 3]
    # reshaping to (2,)*n gives one axis per player, player 0 first
    v = np.arange(8)
    assert v.reshape(2, 2, 2)[1, 0, 0] == index_of([0], 3)


@pytest.mark.parametrize("n", range(1, 8))
def test_transforms_match_subset_sums_written_out(n):
    rng = np.random.default_rng(n)
    v = rng.normal(size=2**n)
    np.testing.assert_allclose(harsanyi.and_transform(v), brute_and(v, n), atol=1e-10)
    np.testing.assert_allclose(harsanyi.or_transform(v), brute_or(v, n), atol=1e-10)


@pytest.mark.parametrize("n", range(1, 11))
def test_transforms_match_dense_matrices_batched(n):
    v = torch.randn(4, 3, 2**n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    a, b = dense_and_matrix(n), dense_or_matrix(n)
    torch.testing.assert_close(harsanyi.and_transform(v), v @ a.T)
    torch.testing.assert_close(harsanyi.or_transform(v), v @ b.T)
    torch.testing.assert_close(harsanyi.and_inverse(v @ a.T), v)
    torch.testing.assert_close(harsanyi.or_inverse(v @ b.T), v)
    torch.testing.assert_close(zeta(mobius(v)), v)


def test_universal_matching_definitions_hold_for_inverses():
    n = 5
    rng = np.random.default_rng(0)
    i_or = rng.normal(size=2**n)
    v_or = harsanyi.or_inverse(i_or)
    for s in range(2**n):
        expected = i_or[0] + sum(i_or[t] for t in range(1, 2**n) if t & s)
        assert v_or[s] == pytest.approx(expected)
    i_and = rng.normal(size=2**n)
    v_and = harsanyi.and_inverse(i_and)
    for s in range(2**n):
        assert v_and[s] == pytest.approx(sum(i_and[t] for t in range(2**n) if t & s == t))


def planted_game(n, and_terms, or_terms, constant=0.0):
    c = coalition_matrix(n).numpy()
    v = np.full(2**n, constant)
    for players, weight in and_terms.items():
        v += weight * c[:, list(players)].all(axis=1)
    for players, weight in or_terms.items():
        v += weight * c[:, list(players)].any(axis=1)
    return v


def test_planted_and_terms_recovered_exactly():
    n = 6
    terms = {(0,): 1.5, (1, 2): -2.0, (0, 3, 5): 0.75, (1, 2, 3, 4, 5): 3.0}
    i_and = harsanyi.and_transform(planted_game(n, terms, {}, constant=0.25))
    expected = np.zeros(2**n)
    expected[0] = 0.25
    for players, weight in terms.items():
        expected[index_of(players, n)] = weight
    np.testing.assert_allclose(i_and, expected, atol=1e-12)


def test_planted_or_terms_recovered_exactly():
    n = 6
    terms = {(2,): 0.5, (0, 4): 1.25, (1, 3, 5): -0.5}
    i_or = harsanyi.or_transform(planted_game(n, {}, terms, constant=-1.0))
    expected = np.zeros(2**n)
    expected[0] = -1.0
    for players, weight in terms.items():
        expected[index_of(players, n)] = weight
    np.testing.assert_allclose(i_or, expected, atol=1e-12)


def test_transforms_are_differentiable_and_linear():
    n = 4
    v = torch.randn(2, 2**n, dtype=torch.float64, requires_grad=True)
    loss = harsanyi.and_transform(v).abs().sum() + harsanyi.or_transform(v).abs().sum()
    loss.backward()
    a, b = dense_and_matrix(n), dense_or_matrix(n)
    expected = torch.sign(v.detach() @ a.T) @ a + torch.sign(v.detach() @ b.T) @ b
    torch.testing.assert_close(v.grad, expected)


def test_transforms_keep_dtype_and_handle_large_n():
    v = torch.randn(2**20, dtype=torch.float32)
    out = harsanyi.and_inverse(harsanyi.and_transform(v))
    assert out.dtype == torch.float32 and out.shape == v.shape
    # spot-check a few entries of the n=20 transform against the definition
    i = harsanyi.and_transform(v.double())
    for s in [0, 1, 2**19, 0b1011]:
        t_list = [t for t in range(2**20) if t & s == t] if s < 16 else None
        if t_list is not None:
            expected = sum(
                (-1) ** (bin(s).count("1") - bin(t).count("1")) * v[t].item() for t in t_list
            )
            assert i[s].item() == pytest.approx(expected, abs=1e-4)
    assert i[2**19].item() == pytest.approx((v[2**19] - v[0]).item(), abs=1e-5)


def test_bad_sizes_are_rejected_with_the_size():
    with pytest.raises(ValueError, match="2\\^n.*got 6"):
        harsanyi.and_transform(np.zeros(6))
    with pytest.raises(ValueError, match="player 5"):
        index_of([5], 3)


def test_all_subsets_iterate_like_itertools():
    n = 4
    for i in range(2**n):
        members = players_of(i, n)
        assert index_of(members, n) == i
    assert len({players_of(i, n) for i in range(2**n)}) == len(
        list(
            itertools.chain.from_iterable(itertools.combinations(range(n), k) for k in range(n + 1))
        )
    )
