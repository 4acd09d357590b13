"""Joint extraction of K models: planted multi-model games, a dense LP oracle, the dual
certificate, α = 1 against the single-model solver, shared vs specific, HDF5 round trip."""

import numpy as np
import pytest
import scipy.optimize
import torch

from harsanyi import joint
from harsanyi.masks import coalition_matrix
from harsanyi.sparsifier import sparsify
from harsanyi.transforms import dense_and_matrix, dense_or_matrix


def planted_models(n, k, seed):
    """K games sharing 2 AND + 1 OR terms, each with one AND and one OR term of its own.

    Coalitions are distinct, of order ≥ 2, weights ±U(0.5, 2).  Returns v (K, 1, 2^n), the
    planted (I_and, I_or) (K, 1, 2^n) and the common and specific (op, index) sets.
    """
    rng = np.random.default_rng(seed)
    members = coalition_matrix(n).numpy()
    candidates = [s for s in range(1, 2**n) if members[s].sum() >= 2]
    chosen = rng.choice(candidates, size=3 + 2 * k, replace=False)
    ops = ["and", "and", "or"] + ["and", "or"] * k
    common = {(ops[i], int(chosen[i])) for i in range(3)}
    specific = [
        {(ops[3 + 2 * m + j], int(chosen[3 + 2 * m + j])) for j in range(2)} for m in range(k)
    ]
    size = 2**n
    i_and, i_or = np.zeros((k, 1, size)), np.zeros((k, 1, size))
    for m in range(k):
        for op, s in common | specific[m]:
            weight = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0)
            (i_and if op == "and" else i_or)[m, 0, s] = weight
    v = np.empty((k, 1, size))
    for m in range(k):
        v[m, 0] = members_game(i_and[m, 0], i_or[m, 0], members)
    return v, (i_and, i_or), common, specific


def members_game(i_and, i_or, members):
    """v(S) = Σ_T I_and(T)·1[T⊆S] + Σ_T I_or(T)·1[T∩S≠∅] (T ≠ ∅), from the definition."""
    inside = (~members[None, :, :] | members[:, None, :]).all(-1)  # [S, T]: T ⊆ S
    meets = (members[None, :, :] & members[:, None, :]).any(-1)  # [S, T]: T ∩ S ≠ ∅
    return inside @ i_and + meets @ i_or


def salient_sets(result, m, ratio=0.05):
    sal_and, sal_or = joint.salient_per_model(result.I_and, result.I_or, ratio)
    return {("and", int(s)) for s in np.nonzero(sal_and[m, 0])[0]} | {
        ("or", int(s)) for s in np.nonzero(sal_or[m, 0])[0]
    }


def dense_joint_optimum(v, alpha, qthres):
    """The joint LP written densely from its definition: p_m, q_m, u_m ≥ |I_m|, t ≥ u_m."""
    k, size = v.shape
    n = size.bit_length() - 1
    a, b = dense_and_matrix(n).numpy(), dense_or_matrix(n).numpy()
    per_model = 4 * size  # p, q, u_and, u_or
    width = k * per_model + 2 * size
    rows, rhs = [], []
    for m in range(k):
        at = m * per_model
        for op, (mat, sign_p) in enumerate(((a, 1.0), (b, -1.0))):
            u_at = at + (2 + op) * size
            for side in (1.0, -1.0):  # ±I ≤ u
                row = np.zeros((size, width))
                row[:, at : at + size] = side * sign_p * mat
                row[:, at + size : at + 2 * size] = side * 0.5 * mat
                row[:, u_at : u_at + size] = -np.eye(size)
                rows.append(row)
                rhs.append(-side * 0.5 * mat @ v[m])
            row = np.zeros((size, width))  # u ≤ t
            row[:, u_at : u_at + size] = np.eye(size)
            row[:, k * per_model + op * size : k * per_model + (op + 1) * size] = -np.eye(size)
            rows.append(row)
            rhs.append(np.zeros(size))
    cost = np.zeros(width)
    bounds = [(None, None)] * width
    for m in range(k):
        at = m * per_model
        cost[at + 2 * size : at + 4 * size] = alpha
        eps = qthres * abs(v[m, -1] - v[m, 0])
        bounds[at + size : at + 2 * size] = [(-eps, eps)] * size
    cost[k * per_model :] = 1 - alpha
    res = scipy.optimize.linprog(
        cost, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs), bounds=bounds, method="highs"
    )
    assert res.status == 0
    return res.fun


# --- planted multi-model games ---------------------------------------------------------------


@pytest.mark.parametrize(("n", "k", "seed"), [(5, 2, 0), (6, 2, 1), (5, 3, 2), (6, 3, 3)])
def test_planted_common_set_is_shared_and_the_rest_specific(n, k, seed):
    v, (p_and, p_or), common, specific = planted_models(n, k, seed)
    result = joint.extract_joint(v, alpha=0.1, qthres=0.0)
    shared_and, shared_or = joint.shared_masks(result.I_and, result.I_or)
    shared = {("and", int(s)) for s in np.nonzero(shared_and[0])[0]} | {
        ("or", int(s)) for s in np.nonzero(shared_or[0])[0]
    }
    assert shared == common
    for m in range(k):
        assert salient_sets(result, m) - shared == specific[m]
    planted = joint.joint_objective(p_and, p_or, 0.1)
    assert (result.objective <= planted * (1 + 1e-7)).all()
    assert (result.lower_bound <= result.objective * (1 + 1e-12)).all()
    assert result.certified.all() and (result.gap < 1e-3).all()
    table = joint.shared_specific(result)
    assert set(table.model) == set(range(k)) and len(table) == k * n
    # every planted term has order ≥ 2 and is recovered at its planted strength
    assert (table[table.order == 1][["shared", "specific"]] == 0).all().all()
    strength = sum(abs(x) for x in (p_and, p_or)).sum(axis=(1, 2))
    np.testing.assert_allclose(
        table.groupby("model")[["shared", "specific"]].sum().sum(axis=1), strength, rtol=1e-6
    )


def test_pair_out_of_a_triple_shares_what_the_pair_has_in_common():
    v, _, common, specific = planted_models(5, 3, 2)
    result = joint.extract_joint(v, alpha=0.1, qthres=0.0)
    pair = joint.shared_specific(result, group=[0, 2])
    assert set(pair.model) == {0, 2}
    assert np.isclose(pair.n_shared.sum() / 2, len(common))
    with pytest.raises(ValueError, match="group"):
        joint.shared_specific(result, group=[0, 0])


@pytest.mark.parametrize(("alpha", "qthres"), [(0.1, 0.02), (0.5, 0.04), (1.0, 0.02)])
def test_joint_optimum_matches_a_dense_lp_from_the_definition(alpha, qthres):
    rng = np.random.default_rng(7)
    v = rng.normal(size=(3, 2, 16))
    result = joint.extract_joint(v, alpha=alpha, qthres=qthres, canonical=False)
    for s in range(2):
        best = dense_joint_optimum(v[:, s], alpha, qthres)
        assert result.objective[s] == pytest.approx(best, rel=1e-7, abs=1e-9)
        assert result.lower_bound[s] <= best * (1 + 1e-9)
    assert result.certified.all()


def test_canonical_joint_costs_at_most_delta_and_is_certified():
    rng = np.random.default_rng(8)
    v = rng.normal(size=(2, 3, 32))
    plain = joint.extract_joint(v, canonical=False)
    canon = joint.extract_joint(v)
    assert (canon.objective <= plain.objective * (1 + 2e-4)).all()
    assert (canon.lower_bound <= plain.objective * (1 + 1e-9)).all()
    assert canon.certified.all()


def test_alpha_one_is_the_sum_of_separate_optima():
    rng = np.random.default_rng(9)
    v = rng.normal(size=(2, 3, 32))
    result = joint.extract_joint(v, alpha=1.0, qthres=0.02)
    separate = [sparsify(v[m], solver="lp", qthres=0.02) for m in range(2)]
    np.testing.assert_allclose(result.objective, sum(s.l1_final for s in separate), rtol=1e-6)
    exact = [sparsify(v[m], solver="exact", qthres=0.02) for m in range(2)]
    for m in range(2):  # same canonical tie-break: the same decomposition
        np.testing.assert_allclose(result.I_and[m], exact[m].I_and, atol=1e-7)
        np.testing.assert_allclose(result.I_or[m], exact[m].I_or, atol=1e-7)


def test_joint_is_no_worse_than_the_separate_solutions_on_its_own_objective():
    rng = np.random.default_rng(10)
    v = rng.normal(size=(3, 2, 32))
    result = joint.extract_joint(v, alpha=0.1)
    separate = [sparsify(v[m], solver="exact") for m in range(3)]
    at_separate = joint.joint_objective(
        np.stack([s.I_and for s in separate]), np.stack([s.I_or for s in separate]), 0.1
    )
    # the separate splits (singletons merged or not) are feasible for the joint LP
    assert (result.lower_bound <= at_separate * (1 + 1e-9)).all()
    assert (result.objective <= at_separate * (1 + 2e-4)).all()


# --- the certificate -------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0])
def test_scaled_dual_point_is_feasible_and_tight(alpha):
    from harsanyi.certificate import and_adjoint, or_adjoint

    rng = np.random.default_rng(11)
    y = torch.tensor(rng.normal(size=(3, 4, 32)))
    c = joint.dual_feasible_scale(y, alpha)

    def worst(point):
        total = 0
        for adjoint in (and_adjoint, or_adjoint):
            g = torch.stack([adjoint(point[m]) for m in range(3)]).abs()
            total = torch.maximum(torch.as_tensor(total), (g - alpha).clamp(min=0).sum(0).amax(-1))
        return total

    assert (worst(y * c[None, :, None]) <= (1 - alpha) + 1e-12).all()
    assert (worst(y * 1.001 * c[None, :, None]) > (1 - alpha)).all()


def test_lower_bound_never_exceeds_any_feasible_objective():
    rng = np.random.default_rng(12)
    v = torch.tensor(rng.normal(size=(2, 5, 16)))
    eps = 0.02 * (v[..., -1] - v[..., 0]).abs()
    for _ in range(5):
        y = torch.tensor(rng.normal(size=(2, 5, 16)))
        bound = joint.joint_lower_bound(y, v, eps, 0.3)
        # p = q = 0 is feasible: its objective is an upper bound on the optimum
        from harsanyi.transforms import and_transform, or_transform

        feasible = joint.joint_objective(
            and_transform(v / 2).numpy(), or_transform(v / 2).numpy(), 0.3
        )
        assert (bound.numpy() <= feasible + 1e-9).all()
    assert (joint.joint_lower_bound(torch.zeros_like(v), v, eps, 0.3) == 0).all()


# --- a real network: joint extraction finds more shared interactions ----------------------


def test_joint_shares_more_than_separate_extraction_on_trained_networks():
    from sklearn.datasets import load_digits

    from harsanyi.games import TabularMasker

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    models = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: threads only contend on a shared machine
    try:
        for seed in (0, 1):
            torch.manual_seed(seed)
            model = torch.nn.Sequential(
                torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
            )
            optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
            for _ in range(60):
                optimiser.zero_grad()
                torch.nn.functional.cross_entropy(model(x[100:600]), y[100:600]).backward()
                optimiser.step()
            models.append(model)
    finally:
        torch.set_num_threads(threads)
    masker = TabularMasker([19, 20, 21, 26, 29, 34])
    identities = [{"arch": "mlp", "seed": s} for s in (0, 1)]
    result = joint.extract_joint_models(models, masker, x[:3], y[:3], identities=identities)
    assert result.models == identities and (result.labels == y[:3].numpy()).all()
    assert result.meta["players"]["masker"] == "tabular" and result.certified.all()
    separate = [sparsify(result.v[m]) for m in range(2)]
    both = (np.stack([s.I_and for s in separate]), np.stack([s.I_or for s in separate]))

    def fraction(table):
        return table.shared.sum() / (table.shared.sum() + table.specific.sum())

    assert fraction(joint.shared_specific(result)) > fraction(joint.shared_specific(both))


# --- inputs and files ------------------------------------------------------------------------


def test_inputs_are_checked():
    v = np.zeros((2, 1, 8))
    for alpha in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="alpha"):
            joint.extract_joint(v, alpha=alpha)
    with pytest.raises(ValueError, match="models"):
        joint.extract_joint(v, models=[{}])
    with pytest.raises(ValueError, match="2\\^n"):
        joint.extract_joint(np.zeros((2, 1, 6)))
    v[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        joint.extract_joint(v)
    # a (K, 2^n) array is one sample; constant games decompose to zero
    flat = joint.extract_joint(np.ones((2, 8)))
    assert flat.n_samples == 1 and flat.objective[0] == pytest.approx(2 * 0.55 * 1.0)


def test_hdf5_round_trip(tmp_path):
    v, _, _, _ = planted_models(5, 2, 0)
    result = joint.extract_joint(
        v,
        models=[{"run": "a", "epoch": 3}, {"run": "b", "epoch": 3}],
        sample_ids=[17],
        labels=[4],
        meta={"output": "log_odds", "extra": {"note": "x"}},
    )
    path = joint.write_joint(tmp_path / "joint.h5", result)
    back = joint.read_joint(path)
    for name in (*joint.MODEL_DATASETS, "objective", "lower_bound", "gap", "l1"):
        np.testing.assert_array_equal(getattr(back, name), getattr(result, name))
    assert back.models == result.models and back.alpha == result.alpha
    assert back.settings == result.settings and back.sample_ids.tolist() == [17]
    assert back.labels.tolist() == [4] and back.meta["extra"] == {"note": "x"}
    assert back.certified.all()
    assert [p.name for p in tmp_path.iterdir()] == ["joint.h5"]  # no temporary left
    from harsanyi.store import ResultsFileError, read_results

    with pytest.raises(ResultsFileError, match="layout_version"):
        read_results(path)  # the single-model reader refuses a joint file


def test_bad_files_are_refused_naming_the_path(tmp_path):
    from harsanyi.store import InteractionResults, write_results

    with pytest.raises(ValueError, match="no such file"):
        joint.read_joint(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="junk.h5"):
        joint.read_joint(tmp_path / "junk.h5")
    zeros = np.zeros((1, 8))
    single = InteractionResults(
        v=zeros,
        I_and=zeros,
        I_or=zeros,
        p=zeros,
        q=zeros,
        sample_ids=np.array([0]),
        labels=np.array([0]),
        split=np.array([b"test"]),
        n=3,
        meta={},
    )
    write_results(tmp_path / "single.h5", single)
    with pytest.raises(ValueError, match="single.h5.*not a joint"):
        joint.read_joint(tmp_path / "single.h5")
    result = joint.extract_joint(np.ones((2, 1, 8)))
    result.l1 = result.l1[:1]
    with pytest.raises(ValueError, match="l1"):
        joint.write_joint(tmp_path / "bad.h5", result)
    assert not (tmp_path / "bad.h5").exists()


def test_shared_over_training_stacks_checkpoints(tmp_path):
    files = []
    for epoch, scale in ((0, 0.0), (4, 1.0)):
        v, _, _, _ = planted_models(5, 2, 0)
        v = v + scale * np.random.default_rng(epoch).normal(size=v.shape) * 0.01
        result = joint.extract_joint(v, models=[{"epoch": epoch}, {"epoch": epoch}])
        files.append(joint.write_joint(tmp_path / f"joint_{epoch}.h5", result))
    table = joint.shared_over_training(files)
    assert sorted(set(table.checkpoint)) == [0, 4] and len(table) == 2 * 2 * 5
    assert {"file", "model", "order", "shared", "specific"} <= set(table.columns)


def test_workers_give_the_same_joint_answer():
    rng = np.random.default_rng(5)
    v = rng.normal(size=(2, 4, 2**4))
    one = joint.extract_joint(v, workers=1)
    three = joint.extract_joint(v, workers=3)
    for name in ("I_and", "I_or", "objective", "lower_bound", "gap"):
        np.testing.assert_array_equal(getattr(one, name), getattr(three, name), err_msg=name)
