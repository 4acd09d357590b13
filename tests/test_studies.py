"""Study analyses on hand-made results files with planted answers."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from harsanyi.analyses import common, jaccard, ood, scorecard, shapley, similarity, theory
from harsanyi.masks import orders, players_of
from harsanyi.store import InteractionResults, write_results
from harsanyi.theory import phase2_solution, spindle_distribution
from harsanyi.transforms import and_inverse, or_inverse

N = 5
ORDERS = orders(N)
RUN = "toy-lenet-s0-0123456789ab"


def make_results(
    I_and,
    I_or,
    splits,
    *,
    run=RUN,
    epoch=0,
    arch="lenet",
    ids=None,
    labels=None,
    q_scale=0.01,
    seed=0,
) -> InteractionResults:
    """Results whose v is consistent with the interactions: v + q = v_and + v_or."""
    I_and, I_or = np.asarray(I_and, float), np.asarray(I_or, float)
    samples = I_and.shape[0]
    rng = np.random.default_rng(seed)
    q = q_scale * rng.uniform(-1, 1, I_and.shape)
    v = and_inverse(I_and) + or_inverse(I_or) - q
    return InteractionResults(
        v=v,
        I_and=I_and,
        I_or=I_or,
        p=np.zeros_like(v),
        q=q,
        sample_ids=np.arange(samples) if ids is None else np.asarray(ids),
        labels=np.arange(samples) % 2 if labels is None else np.asarray(labels),
        split=np.asarray(splits),
        n=N,
        meta={"model": {"run": run, "arch": arch, "dataset": "toy", "epoch": epoch}},
    )


def random_interactions(samples, seed=0, allowed=None):
    """Sparse-ish interactions; `allowed` (bool over masks) restricts the support."""
    rng = np.random.default_rng(seed)
    I_and, I_or = rng.normal(size=(2, samples, 2**N))
    if allowed is not None:
        I_and[:, ~allowed] = 0.0
        I_or[:, ~allowed] = 0.0
    return I_and, I_or


def write(tmp_path, name, results):
    return str(write_results(tmp_path / name, results))


def assert_figure(path):
    assert path.is_file() and path.stat().st_size > 0
    assert path.with_suffix(".pdf").is_file()


# --------------------------------------------------------------------------- Jaccard


def test_identical_train_and_test_give_jaccard_one(tmp_path):
    I_and, I_or = random_interactions(4, seed=1)
    both = np.concatenate([I_and, I_and]), np.concatenate([I_or, I_or])
    results = make_results(*both, ["train"] * 4 + ["test"] * 4, labels=[0, 1, 0, 1] * 2)
    table = jaccard.jaccard_table([write(tmp_path, "a.h5", results)])
    assert set(table.variant) == {"average_then_split", "split_then_average"}
    assert len(table) == 2 * N
    np.testing.assert_allclose(table.similarity, 1.0)


def test_opposite_train_and_test_give_jaccard_zero(tmp_path):
    I_and, I_or = random_interactions(2, seed=2)
    results = make_results(
        np.concatenate([I_and, -I_and]),
        np.concatenate([I_or, -I_or]),
        ["train", "train", "test", "test"],
        labels=[0, 1, 0, 1],
    )
    table = jaccard.jaccard_table([results])
    np.testing.assert_allclose(table.similarity, 0.0)


def test_jaccard_table_needs_test_samples(tmp_path):
    I_and, I_or = random_interactions(2)
    path = write(tmp_path, "only_train.h5", make_results(I_and, I_or, ["train", "train"]))
    with pytest.raises(ValueError, match="only_train.h5.*'test'"):
        jaccard.jaccard_table([path])


def test_checkpoint_stages():
    assert common.checkpoint_stages([0, 1, 2, 3, 4, 5, 10], 4) == {
        "init": 0,
        "early": 2,
        "phase-2 start": 4,
        "final": 10,
    }
    # A stage whose epoch is taken by an earlier one is left out.
    assert common.checkpoint_stages([0, 1, 2], 2) == {"init": 0, "early": 1, "phase-2 start": 2}
    assert common.checkpoint_stages([0, 5], None) == {"init": 0, "final": 5}


def test_jaccard_steps_write_table_and_figure(tmp_path):
    files = []
    for epoch in (0, 1, 2):
        I_and, I_or = random_interactions(8, seed=epoch)
        splits = ["train"] * 4 + ["test"] * 4
        results = make_results(I_and, I_or, splits, epoch=epoch, labels=[0, 1] * 4)
        files.append(write(tmp_path, f"e{epoch}.h5", results))
    run_table = tmp_path / "run" / "jaccard.tsv"
    jaccard.run_step(interactions=files, table=run_table)
    points = tmp_path / "points.json"
    points.write_text(json.dumps({"run": RUN, "phase2_start": 1}))
    out = tmp_path / "study"
    jaccard.study_step(
        tables=[run_table], points=[points], table=out / "jaccard.tsv", figure=out / "jaccard.png"
    )
    table = pd.read_csv(out / "jaccard.tsv", sep="\t")
    assert sorted(table.epoch.unique()) == [0, 1, 2]
    assert_figure(out / "jaccard.png")
    with pytest.raises(ValueError, match="jaccard_variant"):
        jaccard.study_step(
            tables=[run_table],
            points=[points],
            table=out / "x.tsv",
            figure=out / "x.png",
            variant="nope",
        )


# --------------------------------------------------------------------------- label noise


def ood_results(flipped_high: bool, epoch=0, seed=0):
    """Normal samples with strength on low orders only (plus a little high), flipped ones
    concentrated on high orders — or the reverse."""
    low, high = ORDERS <= 2, ORDERS >= 3
    normal = random_interactions(12, seed=seed, allowed=low)
    odd = random_interactions(12, seed=seed + 1, allowed=high)
    if not flipped_high:
        normal, odd = odd, normal
    I_and = np.concatenate([normal[0], odd[0], normal[0][:4]])
    I_or = np.concatenate([normal[1], odd[1], normal[1][:4]])
    splits = ["train"] * 12 + ["flipped"] * 12 + ["test"] * 4
    return make_results(I_and, I_or, splits, epoch=epoch, ids=np.arange(28))


@pytest.mark.parametrize("flipped_high, expected", [(True, "yes"), (False, "no")])
def test_ood_verdict_follows_planted_strength(flipped_high, expected):
    strength, summary = ood.ood_tables([ood_results(flipped_high)], n_boot=200)
    verdict = ood.ood_verdict(summary)
    assert verdict["verdict"] == expected
    assert verdict["high_from_order"] == 3  # orders k > 5/2
    assert expected in verdict["text"]
    if flipped_high:
        assert verdict["high_share_flipped"] == pytest.approx(1.0)
        assert verdict["high_share_normal"] == pytest.approx(0.0)
        assert verdict["mean_order_flipped"] > verdict["mean_order_normal"]
    assert set(strength.group) == {"normal", "flipped"}
    assert (strength.strength_low <= strength.strength + 1e-12).all()
    assert (strength.strength <= strength.strength_high + 1e-12).all()


def test_ood_strength_matches_brute_force():
    results = ood_results(True)
    strength, _ = ood.ood_tables([results], n_boot=100, ratio=0.05)
    flipped = results.subset("flipped")
    expected = np.zeros(N)
    for row in range(flipped.n_samples):
        values = np.concatenate([flipped.I_and[row, 1:], flipped.I_or[row, 1:]])
        tau = 0.05 * np.abs(values).max()
        sizes = np.concatenate([ORDERS[1:], ORDERS[1:]])
        for value, k in zip(values, sizes, strict=True):
            if abs(value) >= tau and value != 0:
                expected[k - 1] += abs(value) / flipped.n_samples
    measured = strength[strength.group == "flipped"].sort_values("order").strength
    np.testing.assert_allclose(measured, expected)


def test_ood_needs_flipped_samples():
    I_and, I_or = random_interactions(2)
    with pytest.raises(ValueError, match="'flipped'"):
        ood.ood_tables([make_results(I_and, I_or, ["train", "test"])])


def test_difference_ci_brackets_a_planted_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 0.1, 200), rng.normal(0.0, 0.1, 200)
    diff, low, high = ood.difference_ci(a, b, n_boot=500)
    assert low < diff < high and low > 0.9 and high < 1.1


def test_ood_steps_write_tables_and_figure(tmp_path):
    files = [write(tmp_path, f"e{e}.h5", ood_results(True, epoch=e, seed=e)) for e in (0, 3)]
    run_dir = tmp_path / "run"
    ood.run_step(
        interactions=files, table=run_dir / "ood.tsv", verdict=run_dir / "ood.json", n_boot=100
    )
    verdict = json.loads((run_dir / "ood.json").read_text())
    assert verdict["epoch"] == 3 and verdict["verdict"] == "yes"
    assert len(verdict["per_checkpoint"]) == 2
    out = tmp_path / "study"
    ood.study_step(
        tables=[run_dir / "ood.tsv"],
        verdicts=[run_dir / "ood.json"],
        table=out / "ood.tsv",
        verdict_table=out / "verdicts.tsv",
        figure=out / "ood.png",
    )
    assert pd.read_csv(out / "verdicts.tsv", sep="\t").verdict.tolist() == ["yes"]
    assert_figure(out / "ood.png")


# --------------------------------------------------------------------------- similarity


def two_models(identical: bool, epoch=0):
    I_and, I_or = random_interactions(6, seed=3)
    splits = ["train"] * 3 + ["test"] * 3
    first = make_results(I_and, I_or, splits, run="toy-lenet-s0-aaaaaaaaaaaa", epoch=epoch)
    if identical:
        second_and, second_or = I_and, I_or
    else:
        second_and, second_or = random_interactions(6, seed=4)
    # Same samples in another row order: matching must go by (split, sample_id).
    perm = np.array([5, 4, 3, 2, 1, 0])
    second = make_results(
        second_and[perm],
        second_or[perm],
        np.asarray(splits)[perm],
        run="toy-mlp-s0-bbbbbbbbbbbb",
        arch="mlp",
        epoch=epoch,
        ids=np.arange(6)[perm],
    )
    return first, second


def test_identical_models_have_full_coverage():
    tables = similarity.similarity_tables(two_models(True), stages=["final"])
    coverage = tables["coverage"]
    assert len(coverage.groupby(["run_a", "run_b"])) == 4
    np.testing.assert_allclose(coverage.coverage, 1.0)
    assert (coverage.ratio > 1).all()
    assert (coverage.samples == 6).all()
    matrix = similarity.coverage_matrix(coverage, "final", 0.05)
    np.testing.assert_allclose(np.diag(matrix.to_numpy()), 1.0)
    np.testing.assert_allclose(matrix.to_numpy(), 1.0)
    orders_table = tables["orders"].dropna(subset=["coverage"])
    np.testing.assert_allclose(orders_table.coverage, 1.0)
    np.testing.assert_allclose(tables["topk"].overlap, 1.0)


def test_different_models_have_partial_coverage():
    tables = similarity.similarity_tables(two_models(False), stages=["init", "final"])
    coverage = tables["coverage"]
    off = coverage[coverage.run_a != coverage.run_b]
    assert (off.coverage < 1).all()
    diagonal = coverage[coverage.run_a == coverage.run_b]
    np.testing.assert_allclose(diagonal.coverage, 1.0)
    assert set(coverage.stage) == {"init", "final"}


def test_coverage_per_order_matches_brute_force():
    first, second = two_models(False)
    table = similarity.similarity_tables([first, second], stages=["final"])["orders"]
    row = table[(table.run_a == "toy-lenet-s0-aaaaaaaaaaaa") & (table.run_b != table.run_a)]
    lookup = {int(i): r for r, i in enumerate(second.sample_ids)}
    for k in range(1, N + 1):
        values = []
        for r in range(first.n_samples):
            r2 = lookup[int(first.sample_ids[r])]
            sets = []
            for results, row_index in ((first, r), (second, r2)):
                a, o = results.I_and[row_index], results.I_or[row_index]
                tau = 0.05 * max(np.abs(a[1:]).max(), np.abs(o[1:]).max())
                sets.append(
                    {
                        (op, s)
                        for op, vec in (("and", a), ("or", o))
                        for s in range(1, 2**N)
                        if len(players_of(s, N)) == k and abs(vec[s]) >= tau
                    }
                )
            if sets[0]:
                values.append(len(sets[0] & sets[1]) / len(sets[0]))
        got = row[row.order == k].coverage.iloc[0]
        if values:
            assert got == pytest.approx(np.mean(values))
        else:
            assert np.isnan(got)


def test_runs_with_other_noise_are_not_paired():
    first, second = two_models(True)
    tables = similarity.similarity_tables(
        [first, second],
        stages=["final"],
        label_noise={first.meta["model"]["run"]: 0.0, second.meta["model"]["run"]: 0.2},
    )
    coverage = tables["coverage"]
    assert (coverage.run_a == coverage.run_b).all()


def test_similarity_step_writes_tables_and_figure(tmp_path):
    files = []
    for epoch in (0, 2):
        for model in two_models(False, epoch=epoch):
            name = f"{model.meta['model']['run']}-{epoch}.h5"
            files.append(write(tmp_path, name, model))
    out = tmp_path / "study"
    similarity.study_step(
        interactions=files,
        coverage=out / "coverage.tsv",
        orders=out / "orders.tsv",
        topk=out / "topk.tsv",
        samples=out / "samples.tsv",
        figure=out / "similarity.png",
    )
    samples = pd.read_csv(out / "samples.tsv", sep="\t")
    assert set(samples.stage) == {"init", "final"} and (samples.run_a != samples.run_b).all()
    assert (samples.random_matched.dropna() <= 1).all()
    coverage = pd.read_csv(out / "coverage.tsv", sep="\t")
    init = coverage[coverage.stage == "init"]
    assert (init.epoch_a == 0).all() and (coverage[coverage.stage == "final"].epoch_a == 2).all()
    assert_figure(out / "similarity.png")
    with pytest.raises(ValueError, match="no checkpoint at epoch 7"):
        similarity.similarity_tables(files, stages=[7])


# --------------------------------------------------------------------------- theory


def test_theory_fit_recovers_planted_sigma2(tmp_path):
    rng = np.random.default_rng(5)
    w_star = rng.normal(size=(4, 2**N))
    w_star[:, 0] = 0.0
    planted = 1e-2
    # Epoch 0 holds exactly the theory's ŵ for the planted σ², the last epoch w* itself.
    stages = {0: phase2_solution(w_star, planted), 4: w_star}
    splits = ["train", "train", "test", "test"]
    files = [
        write(tmp_path, f"e{e}.h5", make_results(w, np.zeros_like(w), splits, epoch=e))
        for e, w in stages.items()
    ]
    orders_table, fit = theory.theory_tables(files, ratio=0.0)
    assert list(fit.epoch) == [0, 4]
    first, last = fit.iloc[0], fit.iloc[1]
    assert first.sigma2 == pytest.approx(planted, rel=1e-3)
    assert first.tv < 1e-6
    assert last.sigma2 <= 1e-5 and last.tv < 1e-2
    at_init = orders_table[orders_table.epoch == 0]
    np.testing.assert_allclose(at_init.spindle, spindle_distribution(N))
    np.testing.assert_allclose(at_init.measured.sum(), 1.0)
    assert first.peak_order == int(np.argmax(at_init.measured.to_numpy())) + 1


def test_theory_w_star_merges_salient_and_or():
    I_and = np.zeros((1, 2**N))
    I_or = np.zeros((1, 2**N))
    I_and[0, [0, 3, 5]] = [9.0, 1.0, 0.01]
    I_or[0, [3, 6]] = [0.5, -2.0]
    w = theory.theory_w_star(I_and, I_or, ratio=0.05)
    expected = np.zeros(2**N)
    expected[[3, 6]] = [1.5, -2.0]  # ∅ dropped, 0.01 < 0.05·2 not salient
    np.testing.assert_allclose(w[0], expected)


def test_theory_ratio_rises_with_sigma2():
    table = theory.theory_ratio_table(ns=(4, 6), sigma2s=(1e-4, 1e-2, 1.0), draws=3)
    for (n, k), part in table.groupby(["n", "split_order"]):
        ratios = part.sort_values("sigma2").ratio.to_numpy()
        assert np.all(np.diff(ratios) > 0), (n, k, ratios)


def test_theory_steps_write_tables_and_figures(tmp_path):
    files = []
    for epoch in (0, 1, 3):
        I_and, I_or = random_interactions(4, seed=epoch)
        results = make_results(I_and, I_or, ["train", "train", "test", "test"], epoch=epoch)
        files.append(write(tmp_path, f"e{epoch}.h5", results))
    run_dir = tmp_path / "run"
    theory.run_step(interactions=files, orders=run_dir / "orders.tsv", fit=run_dir / "fit.tsv")
    points = tmp_path / "points.json"
    points.write_text(json.dumps({"run": RUN, "phase2_start": 1}))
    out = tmp_path / "study"
    theory.study_step(
        orders_tables=[run_dir / "orders.tsv"],
        fit_tables=[run_dir / "fit.tsv"],
        points=[points],
        orders=out / "orders.tsv",
        fit=out / "fit.tsv",
        figure=out / "theory.png",
        ratio=out / "ratio.tsv",
        ratio_figure=out / "ratio.png",
    )
    fit = pd.read_csv(out / "fit.tsv", sep="\t")
    assert (fit.sigma2 > 0).all()
    assert_figure(out / "theory.png")
    assert_figure(out / "ratio.png")


# --------------------------------------------------------------------------- Shapley


def brute_force_shapley(v, n):
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                without = sum(1 << (n - 1 - j) for j in subset)
                phi[i] += weight * (v[without | (1 << (n - 1 - i))] - v[without])
    return phi


def test_exact_shapley_matches_brute_force():
    v = np.random.default_rng(6).normal(size=(2, 2**N))
    phi = shapley.exact_shapley(v)
    for row in range(2):
        np.testing.assert_allclose(phi[row], brute_force_shapley(v[row], N), atol=1e-12)
    np.testing.assert_allclose(phi.sum(axis=1), v[:, -1] - v[:, 0])


def test_shapley_check_passes_and_detects_perturbation(tmp_path):
    I_and, I_or = random_interactions(3, seed=7)
    results = make_results(I_and, I_or, ["train", "test", "train"])
    check = shapley.shapley_check(shapley.shapley_table(results))
    assert check["passed"] and check["max_abs_diff"] < 1e-10
    assert check["max_abs_diff_v"] > 0  # the bounded noise q shifts the values of v
    broken = make_results(I_and, I_or, ["train", "test", "train"])
    broken.I_and = broken.I_and.copy()
    broken.I_and[1, 7] += 1e-3
    bad = shapley.shapley_check(shapley.shapley_table(broken))
    assert not bad["passed"] and bad["max_abs_diff"] == pytest.approx(1e-3 / 3)


def test_shapley_steps_write_tables_and_figure(tmp_path):
    I_and, I_or = random_interactions(3, seed=8)
    path = write(tmp_path, "e5.h5", make_results(I_and, I_or, ["train", "test", "test"], epoch=5))
    run_dir = tmp_path / "run"
    shapley.run_step(interactions=path, table=run_dir / "shapley.tsv", check=run_dir / "check.json")
    check = json.loads((run_dir / "check.json").read_text())
    assert check["passed"] and check["epoch"] == 5
    out = tmp_path / "study"
    shapley.study_step(
        tables=[run_dir / "shapley.tsv"],
        checks=[run_dir / "check.json"],
        table=out / "shapley.tsv",
        figure=out / "shapley.png",
    )
    assert pd.read_csv(out / "shapley.tsv", sep="\t").passed.tolist() == [True]
    assert_figure(out / "shapley.png")
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        shapley.run_step(
            interactions=tmp_path / "missing.h5", table=out / "a.tsv", check=out / "b.json"
        )


# --------------------------------------------------------------------------- scorecard


def test_scorecard_steps_write_claims_table_and_figure(tmp_path):
    """scorecard_run on one run's files, then the study step: every claim a row with its
    effect, interval, null bound, verdict and rule; "n/a" survives the TSV round trip."""
    files = []
    for epoch in (0, 1, 2, 3):
        splits = ["train"] * 6 + ["test"] * 6
        model = make_results(*random_interactions(12, seed=epoch), splits, epoch=epoch)
        files.append(write(tmp_path, f"epoch_{epoch}.h5", model))
    points = tmp_path / "two_phase.json"
    points.write_text(json.dumps({"run": RUN, "phase2_start": 2, "gap_onset": None}))
    claims = tmp_path / "claims.json"
    scorecard.run_step(interactions=files, points=points, claims=claims, n_boot=200)
    record = json.loads(claims.read_text())
    assert record["run"] == RUN
    assert [entry["key"] for entry in record["claims"]] == [
        key for key in scorecard.CLAIMS if key != "shared_interactions"
    ]
    out = tmp_path / "study"
    scorecard.study_step(
        claims=[claims],
        samples=None,
        table=out / "scorecard.tsv",
        pooled=out / "scorecard_seeds.tsv",
        figure=out / "scorecard.png",
        n_boot=200,
    )
    card = common.read_tsv(out / "scorecard.tsv")
    assert list(card.columns) == scorecard.COLUMNS
    assert len(card) == len(scorecard.CLAIMS)
    verdicts = card.set_index("key").verdict
    assert verdicts["ood_high_order"] == "n/a" and verdicts["shared_interactions"] == "n/a"
    assert verdicts["phase2_near_gap"] == "n/a"
    assert common.read_tsv(out / "scorecard_seeds.tsv").empty  # one seed: nothing pooled
    assert_figure(out / "scorecard.png")
