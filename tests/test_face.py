"""Both ends of the optimal face (harsanyi.face): against a dense LP written from the
definition, planted games, the bracket around other optima, and their proven bounds."""

import numpy as np
import pytest
import scipy.optimize
from test_sparsifier import planted_batch

from harsanyi import sparsify
from harsanyi.face import FACE_TOL, end_bound, face_ends, weighted_order
from harsanyi.masks import index_of, orders
from harsanyi.transforms import dense_and_matrix, dense_or_matrix


def dense_face_ends(v, qthres, cap):
    """(min, max) of Σ|S|·(t_and + t_or) over |I_and| ≤ t_and, |I_or| ≤ t_or, Σt ≤ cap,
    with I = A(v/2 + q/2 ± p), |q| ≤ qthres·|v(N) − v(∅)|: the face from the definition."""
    size = len(v)
    n = size.bit_length() - 1
    a, b = dense_and_matrix(n).numpy(), dense_or_matrix(n).numpy()
    zero, eye = np.zeros((size, size)), np.eye(size)
    rows, rhs = [], []
    for m, sign_p, t_block in ((a, 1.0, (eye, zero)), (b, -1.0, (zero, eye))):
        for side in (1.0, -1.0):
            rows.append(np.hstack([side * sign_p * m, side * 0.5 * m, -t_block[0], -t_block[1]]))
            rhs.append(-side * 0.5 * m @ v)
    rows.append(np.r_[np.zeros(2 * size), np.ones(2 * size)][None])
    rhs.append(np.array([cap]))
    bound = qthres * abs(v[-1] - v[0])
    bounds = [(None, None)] * size + [(-bound, bound)] * size + [(0, None)] * (2 * size)
    order = orders(n).astype(float)
    ends = []
    for sign in (1.0, -1.0):
        cost = np.r_[np.zeros(2 * size), sign * order, sign * order]
        res = scipy.optimize.linprog(
            cost, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs), bounds=bounds, method="highs"
        )
        assert res.status == 0
        ends.append(sign * res.fun)
    return ends


def additive_games(n, samples, seed, noise=0.05):
    """Mostly additive games with small noise: network-like, with a wide optimal face."""
    rng = np.random.default_rng(seed)
    present = (np.arange(2**n)[:, None] >> np.arange(n)[::-1]) & 1
    return (present @ rng.normal(size=(n, samples))).T + noise * rng.normal(size=(samples, 2**n))


@pytest.mark.parametrize("kind", ["random", "additive", "planted"])
def test_ends_match_the_dense_face_from_the_definition(kind):
    n, qthres = 4, 0.02
    if kind == "random":
        v = np.random.default_rng(1).normal(size=(3, 2**n))
    elif kind == "additive":
        v = additive_games(n, 3, seed=2)
    else:
        v = planted_batch(n, 3, 3, 3, seed=3)[0]
    reference = sparsify(v, qthres=qthres, workers=1)
    face = face_ends(v, reference, workers=1)
    for k in range(len(v)):
        low, high = dense_face_ends(v[k], qthres, face.cap[k])
        scale = reference.l1_final[k]
        assert face.low.weighted_order[k] == pytest.approx(low, abs=1e-7 * scale)
        assert face.low.bound[k] <= low + 1e-7 * scale
        # The dense maximum may split like ours: it is bracketed by our end and its bound,
        # and exceeds the true maximum by at most n·(cap − OPT).
        assert face.high.weighted_order[k] <= high + 1e-7 * scale
        assert high <= face.high.bound[k] + 1e-7 * scale
        assert high - face.high.weighted_order[k] <= n * 2 * FACE_TOL * scale + 1e-7 * scale
    assert face.certified.all()
    for end in (face.low, face.high):
        assert (end.l1 <= face.cap * (1 + 1e-9)).all()


def test_the_ends_bracket_every_other_optimum():
    v = additive_games(6, 4, seed=4)
    face = face_ends(v, sparsify(v, workers=1), workers=1)
    for solver in ("exact", "lp"):
        other = sparsify(v, solver=solver, workers=1)
        assert (other.l1_final <= face.cap).all()
        # The singleton merge can only lower an optimum's weighted order.
        w = weighted_order(other.I_and, other.I_or)
        assert (face.low.weighted_order <= w + 1e-8 * other.l1_final).all()
        assert (w <= face.high.weighted_order + 1e-8 * other.l1_final).all()
    # These games have equally sparse optima whose mean orders differ by more than 0.3.
    assert (face.high.mean_order - face.low.mean_order > 0.3).all()


def test_a_unique_planted_optimum_has_both_ends_on_it():
    n = 5
    v = np.zeros(2**n)
    planted = index_of([0, 2, 3], n)
    v[(np.arange(2**n) & planted) == planted] = 2.0  # v = 2·AND{0, 2, 3}, nothing else
    reference = sparsify(v, qthres=0.0, workers=1)
    face = face_ends(v, reference, workers=1)
    for end in (face.low, face.high):
        assert end.I_and[0, planted] == pytest.approx(2.0, abs=1e-6)
        assert end.mean_order[0] == pytest.approx(3.0, abs=1e-5)
    assert face.certified.all()


def test_any_dual_point_bounds_the_ends():
    """end_bound is a proof for any y, not only the LP's: random y never cross the optimum."""
    n, qthres = 4, 0.02
    v = additive_games(n, 2, seed=5)
    reference = sparsify(v, qthres=qthres, normalize=False, workers=1)
    face = face_ends(v, reference, workers=1)
    eps = qthres * np.abs(v[:, -1] - v[:, 0])
    order = orders(n).astype(float)
    rng = np.random.default_rng(6)
    for _ in range(50):
        y = rng.normal(size=v.shape) * rng.uniform(0.01, 3)
        low = end_bound(y, v, eps, face.cap, order)
        high = -end_bound(y, v, eps, face.cap, -order)
        assert (low <= face.low.weighted_order + 1e-9).all()
        assert (high >= face.high.weighted_order - 1e-9).all()


def test_the_face_needs_a_certified_reference():
    v = additive_games(3, 2, seed=7)
    with pytest.raises(ValueError, match="certified optimum"):
        face_ends(v, sparsify(v, solver="adam", iters=10))
    with pytest.raises(ValueError, match="shape"):
        face_ends(v[:1], sparsify(v, workers=1))


def test_show_prints_the_face_of_a_results_file(tmp_path, capsys):
    """`harsanyi show` gives the ends' mean orders from a file written with the face."""
    from test_store import make_results

    from harsanyi.cli import main
    from harsanyi.face import face_datasets
    from harsanyi.store import write_results

    v = additive_games(4, 7, seed=8)
    reference = sparsify(v, workers=1)
    face = face_ends(v, reference, workers=1)
    results = make_results(n=4, samples=7)
    results.v, results.I_and, results.I_or = v, reference.I_and, reference.I_or
    results.face = face_datasets(face)
    path = write_results(tmp_path / "face.h5", results)
    assert main(["show", str(path)]) == 0
    low, high = np.median(face.low.mean_order), np.median(face.high.mean_order)
    assert f"optimal face mean order (median) {low:.2f} to {high:.2f}" in capsys.readouterr().out


def test_both_solution_paths_reach_the_same_ends(monkeypatch):
    """The warm primal simplex (small n) and the cold interior point (large n) are two
    routes to the same LP optima: same W at both ends, both certified."""
    import harsanyi.face as face_module

    v = additive_games(5, 3, seed=9)
    reference = sparsify(v, workers=1)
    warm = face_ends(v, reference, workers=1)
    monkeypatch.setattr(face_module, "WARM_START_MAX_N", 0)
    cold = face_ends(v, reference, workers=1)
    assert cold.settings["method"] != warm.settings["method"]
    # equal up to what the face's L1 slack allows a split to move: n·(cap − OPT)
    slack = 5 * 2 * FACE_TOL * reference.l1_final
    for end in ("low", "high"):
        difference = np.abs(cold.end(end).weighted_order - warm.end(end).weighted_order)
        assert (difference <= slack).all()
    assert cold.certified.all() and warm.certified.all()
