"""The sparsifier against brute-force definitions, a dense LP oracle and planted games."""

import json

import numpy as np
import pytest
import scipy.optimize
import torch

from harsanyi import sparsifier as sp
from harsanyi.masks import coalition_matrix, orders
from harsanyi.transforms import (
    and_inverse,
    and_transform,
    dense_and_matrix,
    dense_or_matrix,
    or_inverse,
    or_transform,
)


def planted_game(n, n_and, n_or, rng, v_empty=0.0):
    """v(S) = v(∅) + Σ a_T·1[T⊆S] + Σ b_T·1[T∩S≠∅] over distinct nonempty T; its L1."""
    members = coalition_matrix(n).numpy()
    sets = rng.choice(np.arange(1, 2**n), size=n_and + n_or, replace=False)
    v = np.full(2**n, v_empty)
    l1 = abs(v_empty)  # I_and(∅) = I_or(∅) = v(∅)/2 with p = q = 0 on the planted split
    for k, t in enumerate(sets):
        weight = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)
        inside = members[:, members[t]]
        v += weight * (inside.all(1) if k < n_and else inside.any(1))
        l1 += abs(weight)
    return v, l1


def planted_batch(n, n_and, n_or, samples, seed, v_empty=0.0):
    rng = np.random.default_rng(seed)
    games = [planted_game(n, n_and, n_or, rng, v_empty) for _ in range(samples)]
    return np.stack([g[0] for g in games]), np.array([g[1] for g in games])


def dense_lp_l1(v, qthres):
    """Optimum from the definition: variables p, q, t_and, t_or with dense ±A, ±B rows."""
    size = len(v)
    n = size.bit_length() - 1
    a = dense_and_matrix(n).numpy()
    b = dense_or_matrix(n).numpy()
    zero = np.zeros((size, size))
    eye = np.eye(size)
    # I_and = A(v/2 + q/2 + p), I_or = B(v/2 + q/2 - p); |I| <= t as two inequalities each.
    rows, rhs = [], []
    for m, sign_p, t_block in ((a, 1.0, (eye, zero)), (b, -1.0, (zero, eye))):
        for side in (1.0, -1.0):
            rows.append(np.hstack([side * sign_p * m, side * 0.5 * m, -t_block[0], -t_block[1]]))
            rhs.append(-side * 0.5 * m @ v)
    bound = qthres * abs(v[-1] - v[0])
    bounds = [(None, None)] * size + [(-bound, bound)] * size + [(0, None)] * (2 * size)
    cost = np.r_[np.zeros(2 * size), np.ones(2 * size)]
    res = scipy.optimize.linprog(
        cost, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs), bounds=bounds, method="highs"
    )
    assert res.status == 0
    return res.fun


def reconstruct(result):
    """v_and + v_or, which is v + q by construction (q is the bounded noise term)."""
    return and_inverse(result.I_and) + or_inverse(result.I_or) - result.q


# Settings that reach the planted optimum on n = 4 (measured; see the module's defaults).
SGD_PLANTED = {"solver": "sgd", "lr": 0.02 / 16, "iters": 10000}
FAST = {"solver": "adam"}
SOLVER_RUNS = [
    {"solver": "sgd", "iters": 3000},
    {"solver": "adam", "iters": 1500},
    {"solver": "lp"},
    {"solver": "exact"},
]


@pytest.fixture(scope="module")
def random_games():
    return np.random.default_rng(0).normal(size=(4, 2**6))


@pytest.fixture(scope="module")
def results(random_games):
    return {run["solver"]: sp.sparsify(random_games, **run) for run in SOLVER_RUNS}


def test_inplace_transforms_match_library():
    v = torch.randn(3, 32, dtype=torch.float64)
    assert torch.allclose(sp._mobius_(v.clone(), 5), and_transform(v))
    assert torch.allclose(sp._or(v.clone(), 5), or_transform(v))


def test_explicit_subgradient_matches_autograd():
    gen = torch.Generator().manual_seed(1)
    v, p, q = (torch.randn(3, 64, dtype=torch.float64, generator=gen) for _ in range(3))
    p.requires_grad_(True)
    q.requires_grad_(True)
    sp.l1(v, p, q).sum().backward()
    loss, grad_p, grad_q = sp._loss_and_grad(v, p.detach().clone(), q.detach().clone(), 6)
    assert torch.allclose(loss, sp.l1(v, p, q).detach())
    assert torch.allclose(grad_p, p.grad)
    assert torch.allclose(grad_q, q.grad)


@pytest.mark.parametrize("qthres", [0.0, 0.05, 0.3])
def test_sparse_lp_matches_dense_lp_oracle(qthres):
    games = np.random.default_rng(2).normal(size=(3, 16)) + np.array([[0.0], [3.0], [-5.0]])
    result = sp.sparsify(games, solver="lp", qthres=qthres)
    expected = [dense_lp_l1(v, qthres) for v in games]
    assert np.allclose(result.l1_final, expected, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lp"])
def test_universal_matching_and_q_bound(results, random_games, solver):
    result = results[solver]
    assert np.allclose(reconstruct(result), random_games, atol=1e-9)
    bound = 0.02 * np.abs(random_games[:, -1] - random_games[:, 0])
    assert (np.abs(result.q) <= bound[:, None] + 1e-15).all()
    single = orders(6) == 1
    assert (result.I_or[:, single] == 0).all()
    # Before the merge, I_and and I_or are exactly the transforms of the split.
    half = 0.5 * (random_games + result.q)
    i_and = and_transform(half + result.p)
    i_or = or_transform(half - result.p)
    assert np.allclose(np.abs(i_and).sum(-1) + np.abs(i_or).sum(-1), result.l1_final)
    assert np.allclose(result.I_and[:, ~single], i_and[:, ~single])
    assert np.allclose(result.I_or[:, 0], i_or[:, 0])  # ∅ is not merged
    assert np.allclose(result.I_and[:, single], i_and[:, single] + i_or[:, single])


@pytest.mark.parametrize("solver", ["sgd", "adam", "lp", "exact"])
def test_final_l1_not_above_start(results, solver):
    result = results[solver]
    assert (result.l1_final <= result.l1_start).all()
    assert np.allclose(result.loss[:, 0], result.l1_start)
    assert np.allclose(result.loss[:, -1], result.l1_final)


def test_fast_solver_close_to_lp_and_not_worse_than_reference(results, random_games):
    lp = results["lp"].l1_final
    fast = sp.sparsify(random_games, **FAST).l1_final
    reference = sp.sparsify(random_games, solver="sgd").l1_final
    assert (fast >= lp * (1 - 1e-6)).all()
    assert (fast <= lp * 1.02).all()
    assert fast.mean() <= reference.mean()


@pytest.mark.parametrize("run", [SGD_PLANTED, FAST, {"solver": "lp"}])
def test_planted_games(run):
    games, planted_l1 = planted_batch(4, 2, 2, samples=6, seed=3, v_empty=0.7)
    result = sp.sparsify(games, **run)
    tolerance = 1e-7 if run["solver"] == "lp" else 0.01
    assert (result.l1_final <= planted_l1 * (1 + tolerance)).all()
    assert np.allclose(reconstruct(result), games, atol=1e-9)


def test_lp_recovers_planted_optimum_at_n8():
    games, planted_l1 = planted_batch(8, 4, 4, samples=2, seed=4)
    result = sp.sparsify(games, solver="lp")
    assert (result.l1_final <= planted_l1 * (1 + 1e-7)).all()


@pytest.mark.parametrize("solver", ["sgd", "adam", "lp"])
def test_batched_equals_single(random_games, results, solver):
    run = next(r for r in SOLVER_RUNS if r["solver"] == solver)
    alone = sp.sparsify(random_games[2], **run)
    chunked = sp.sparsify(random_games, batch_size=3, **run)
    batched = results[solver]
    # The LP optimum is not unique: a last-bit change of the data may pick another vertex.
    fields = ("l1_final",) if solver == "lp" else ("I_and", "I_or", "p", "q", "loss", "l1_final")
    for field in fields:
        assert np.allclose(getattr(alone, field)[0], getattr(batched, field)[2], atol=1e-9)
        assert np.allclose(getattr(chunked, field), getattr(batched, field), atol=1e-9)


def test_normalisation_round_trip_on_lp():
    games = np.random.default_rng(5).normal(size=(3, 32)) * np.array([[0.01], [1.0], [50.0]])
    games += np.array([[-2.2], [0.0], [7.0]])  # v(∅) far from the interactions' scale
    raw = sp.sparsify(games, solver="lp", normalize=False)
    normalised = sp.sparsify(games, solver="lp", normalize=True)
    assert np.allclose(raw.l1_final, normalised.l1_final, rtol=1e-6)
    assert np.allclose(reconstruct(normalised), games, atol=1e-9)


def test_sgd_is_scale_equivariant_so_normalising_equals_scaling_lr():
    games = np.random.default_rng(6).normal(size=(2, 32)) * 0.01 - 2.2
    scale = games.std(-1)
    normalised = sp.sparsify(games, solver="sgd", lr=1e-3, iters=200)
    raw = [
        sp.sparsify(g, solver="sgd", lr=1e-3 * s, iters=200, normalize=False)
        for g, s in zip(games, scale, strict=True)
    ]
    for k, r in enumerate(raw):
        assert np.allclose(r.p[0], normalised.p[k], atol=1e-12)
        assert np.allclose(r.l1_final[0], normalised.l1_final[k], rtol=1e-9)


def test_shift_changes_only_empty_terms_by_half():
    gen = torch.Generator().manual_seed(7)
    v, p, q = (torch.randn(2, 64, dtype=torch.float64, generator=gen) for _ in range(3))
    c = 3.5
    i_and, i_or = sp.decompose(v, p, q)
    j_and, j_or = sp.decompose(v + c, p, q)
    expected_shift = torch.zeros(64, dtype=torch.float64)
    expected_shift[0] = c / 2
    assert torch.allclose(j_and - i_and, expected_shift.expand_as(i_and))
    assert torch.allclose(j_or - i_or, expected_shift.expand_as(i_or))


def test_zero_qthres_and_constant_game():
    games = np.vstack([np.full(16, 2.0), np.random.default_rng(8).normal(size=16)])
    result = sp.sparsify(games, qthres=0.0, solver="adam", iters=300)
    assert (result.q == 0).all()
    assert np.allclose(reconstruct(result), games, atol=1e-12)
    assert np.isclose(result.l1_final[0], 2.0)  # v(∅)/2 in each ∅ term, nothing else


def test_torch_input_1d_and_settings_are_json():
    v = torch.randn(16, dtype=torch.float64)
    result = sp.sparsify(v, solver="sgd", iters=50)
    assert result.I_and.shape == (1, 16) and result.solver == "sgd"
    assert result.loss.shape == (1, 51)
    settings = json.loads(json.dumps(result.settings))
    assert settings["solver"] == "sgd" and settings["iters"] == 50 and settings["normalize"]
    assert settings["lr"] == pytest.approx(sp.default_lr("sgd", 4))


@pytest.mark.parametrize(
    "kwargs, v, match",
    [
        ({}, np.zeros((2, 12)), "2\\^n"),
        ({}, np.array([[0.0, np.nan, 1.0, 2.0]]), "non-finite.*\\(0, 1\\)"),
        ({}, np.array([0.0, 1.0, np.inf, 2.0]), "non-finite"),
        ({"qthres": -0.1}, np.zeros(4), "qthres"),
        ({"solver": "newton"}, np.zeros(4), "'newton'.*adam.*lp.*sgd"),
        ({"iters": 0}, np.zeros(4), "iters"),
        ({"lr": -1.0}, np.zeros(4), "lr"),
        ({}, np.zeros((2, 2, 4)), "shape"),
    ],
)
def test_bad_input(kwargs, v, match):
    with pytest.raises(ValueError, match=match):
        sp.sparsify(v, **kwargs)


def test_a_solver_that_ends_above_its_start_is_counted_not_replaced():
    rng = np.random.default_rng(7)
    v = rng.normal(size=(16, 2**8)).cumsum(axis=1)
    # Too large a step for too few iterations overshoots.
    result = sp.sparsify(v, solver="adam", lr=50.0, iters=3)
    above = result.l1_final >= result.l1_start
    np.testing.assert_array_equal(result.above_start, above)
    assert above.sum() == result.settings["above_start"] > 0
    assert np.all(np.any(result.p[above] != 0, axis=1))  # returned as solved, not reset


def test_exact_solvers_never_flag_a_sample_above_its_start():
    constant = np.full((1, 16), 3.0)  # p = q = 0 is optimal: L1 ends at its start
    games = np.concatenate([constant, np.random.default_rng(8).normal(size=(2, 16))])
    for solver in ("exact", "lp"):
        result = sp.sparsify(games, solver=solver)
        assert result.l1_final[0] == pytest.approx(result.l1_start[0])
        assert not result.above_start.any() and result.settings["above_start"] == 0


@pytest.fixture(scope="module")
def sgd_games():
    """Planted games and the games of a digits MLP at initialisation and trained (n = 6,
    pixel players; the kinds benchmarks/bench_sgd.py measures), 6 of each."""
    from sklearn.datasets import load_digits

    from harsanyi.games import TabularMasker, game_values

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    masker = TabularMasker([18, 19, 20, 21, 26, 27])
    untrained = game_values(model, masker, x[:6], y[:6]).numpy()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x[200:]), y[200:]).backward()
        optimiser.step()
    trained = game_values(model, masker, x[:6], y[:6]).numpy()
    planted, _ = planted_batch(6, 8, 8, samples=6, seed=12)
    return {"planted": planted, "untrained net": untrained, "trained net": trained}


def test_sgd_defaults_end_below_their_start_on_planted_and_network_games(sgd_games):
    games = np.concatenate(list(sgd_games.values()))
    result = sp.sparsify(games, solver="sgd")
    assert result.settings["lr"] == sp.default_lr("sgd", 6)
    assert result.settings["iters"] == sp.DEFAULT_ITERS["sgd"]
    assert not result.above_start.any(), result.l1_final / result.l1_start
    assert (result.l1_final < result.l1_start).all() and result.settings["above_start"] == 0
    optimum = sp.sparsify(games, solver="lp").l1_final
    assert (result.l1_final <= 1.25 * optimum).all()


def test_ten_times_the_default_sgd_lr_ends_above_the_start(sgd_games):
    """The test above can fail: at 10× the default learning rate (the old default's order of
    magnitude) the reference solver ends at or above its start on network games."""
    games = np.concatenate([sgd_games["untrained net"], sgd_games["trained net"]])
    result = sp.sparsify(games, solver="sgd", lr=10 * sp.default_lr("sgd", 6))
    assert result.above_start.any() and result.settings["above_start"] > 0


def test_sgd_default_lr_shrinks_like_4_to_the_minus_n():
    assert sp.default_lr("sgd", 8) == pytest.approx(sp.default_lr("sgd", 6) / 16)
    assert sp.default_lr("sgd", 10) == pytest.approx(sp.DEFAULT_SGD_LR_TIMES_4N / 4**10)


def test_lp_workers_solve_samples_side_by_side_with_identical_answers():
    rng = np.random.default_rng(11)
    v = rng.normal(size=(5, 2**5))
    one = sp.sparsify(v, workers=1)
    three = sp.sparsify(v, workers=3)
    for name in ("I_and", "I_or", "p", "q", "lower_bound", "gap"):
        np.testing.assert_array_equal(getattr(one, name), getattr(three, name), err_msg=name)
    with pytest.raises(ValueError, match="workers"):
        sp.sparsify(v, workers=0)
