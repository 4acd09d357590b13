"""Inference that is right by construction: every interval holds its point, intervals keep
their coverage at the sample sizes of the studies, and each claim's statistic and null
(Jaccard bands with a within-class permutation, OOD and sensitivity as change from
initialisation, the gap claim's grid, the seed's spindle) against brute force, planted
effects and null data through the same code."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import comb
from test_verdicts import (
    N,
    jaccard_results,
    noisy_cube,
    ood_results,
    planted_interactions,
    results_of,
    run_epochs,
)

from harsanyi.analyses import jaccard, ood, scorecard, theory, two_phase
from harsanyi.analyses import sensitivity as sens
from harsanyi.metrics import JACCARD_VARIANTS, jaccard_per_order
from harsanyi.verdicts import (
    GREATER,
    INCONCLUSIVE,
    LESS,
    NO,
    YES,
    Claim,
    bootstrap_weights,
    claim,
    expanded_level,
    interval,
)

N_BOOT = 300


def contains(result: Claim) -> bool:
    """low ≤ effect ≤ high and null_low ≤ null ≤ null_high, wherever they are defined."""
    ok = True
    for point, low, high in (
        (result.effect, result.low, result.high),
        (result.null, result.null_low, result.null_high),
    ):
        if all(math.isfinite(v) for v in (point, low, high)):
            ok &= low <= point <= high
    return ok


# --------------------------------------------------------------------------- containment


def test_an_estimate_outside_its_replicates_is_inside_its_interval():
    """A skewed statistic on two samples per class (as in the committed scorecards): every
    bootstrap replicate lies above the estimate.  The percentile interval alone excludes it."""
    replicates = np.array([0.5, 0.5, 0.75, 1.0] * 50)
    assert interval(replicates)[0] > 0.0  # the old interval: estimate 0 outside
    result = claim(
        0.0, replicates, null=2.0, null_replicates=[0.1, 0.2, 0.3], direction=GREATER,
        n=20, min_n=5, null_kind="interval",
    )  # fmt: skip
    assert result.low == 0.0 and result.high == 1.0
    assert result.null_low == pytest.approx(0.105) and result.null_high == 2.0
    assert result.bound == 2.0  # widening the null's interval only raises the bar
    assert result.verdict == NO


def test_every_claim_contains_its_point_on_random_inputs():
    rng = np.random.default_rng(0)
    for case in range(400):
        size = int(rng.integers(1, 40))
        shape = rng.choice(["normal", "skewed", "constant", "two-valued"])
        if shape == "normal":
            replicates = rng.normal(rng.normal(), rng.uniform(0.01, 2), size)
        elif shape == "skewed":
            replicates = rng.exponential(1.0, size) ** 3
        elif shape == "constant":
            replicates = np.full(size, rng.normal())
        else:
            replicates = rng.choice([0.0, 1.0], size)
        null = rng.normal(rng.normal(), rng.uniform(0.01, 2), int(rng.integers(1, 40)))
        result = claim(
            float(rng.normal(0, 3)),
            replicates,
            null=float(rng.normal(0, 3)),
            null_replicates=null,
            direction=GREATER if case % 2 else LESS,
            n=int(rng.integers(1, 30)),
            min_n=5,
            smallest_effect=float(rng.uniform(0, 0.2)),
            null_kind="distribution" if case % 3 else "interval",
            floor=0.0 if case % 5 == 0 else None,
            units=int(rng.integers(1, 30)) if case % 4 else None,
        )
        assert contains(result), (case, result)


def sensitivity_rows(relative, *, epoch, names=("gauss:0.05", "pgd:0.01")):
    p, s, n = relative.shape
    return pd.DataFrame(
        {
            "run": "r",
            "epoch": epoch,
            "sample_id": np.tile(np.repeat(np.arange(s), n), p),
            "split": "train",
            "label": 0,
            "perturbation": np.repeat(list(names)[:p], s * n),
            "order": np.tile(np.arange(1, n + 1), p * s),
            "relative": relative.ravel(),
        }
    )


def test_every_scorecard_claim_contains_its_point_on_random_data():
    """Each claim function on random small inputs (few samples, skewed strengths)."""
    for seed in range(6):
        rng = np.random.default_rng(seed)
        results = []
        samples = int(rng.integers(3, 12))
        cube = noisy_cube(rng, rng.uniform(1.5, 4.5, int(rng.integers(3, 9))), samples, 0.8)
        results += [r for r, _ in two_phase.phase_claims(cube, n_boot=N_BOOT, seed=seed).values()]
        onset = int(rng.integers(1, cube.shape[0]))
        results.append(two_phase.gap_claim(cube, list(range(cube.shape[0])), onset)[0])
        first = ood_results(rng, 0, 2.0, normal=samples, flipped=int(rng.integers(2, 8)))
        last = ood_results(
            rng, 5, rng.uniform(1.5, 4), normal=samples, flipped=first.subset("flipped").n_samples
        )
        results.append(ood.ood_claim(first, last, n_boot=N_BOOT, seed=seed)[0])
        results.append(theory.spindle_claim(first, n_boot=N_BOOT, seed=seed)[0])
        classes, per_split = int(rng.integers(2, 7)), int(rng.integers(1, 4))
        before = jaccard_results(rng, classes, per_split, 0, memorised=False)
        after = jaccard_results(rng, classes, per_split, 5, memorised=bool(seed % 2))
        results.append(jaccard.jaccard_claim(before, after, n_boot=N_BOOT, seed=seed)[0])
        at_start = sensitivity_rows(rng.exponential(1, (2, samples, 5)) ** 2, epoch=0)
        at_end = sensitivity_rows(rng.exponential(1, (2, samples, 5)) ** 2, epoch=5)
        results.append(sens.sensitivity_change_claim(at_start, at_end, n_boot=N_BOOT)[0])
        for result in results:
            assert contains(result), (seed, result)


# --------------------------------------------------------------------------- small samples


def test_expanded_level_values():
    assert expanded_level(0.95, 2) == 1.0
    assert expanded_level(0.95, 10) == pytest.approx(0.983, abs=0.001)
    assert expanded_level(0.95, 20) == pytest.approx(0.968, abs=0.001)
    assert expanded_level(0.95, 10_000) == pytest.approx(0.95, abs=0.001)
    assert interval([1.0, 2.0, 3.0], units=2) == (1.0, 3.0)


def test_expanded_interval_keeps_its_coverage_at_small_n():
    """The percentile bootstrap of a mean of 8 normal values covers the true mean in about
    90 % of data sets; the expanded interval in about 95 %."""
    rng = np.random.default_rng(0)
    n, sets = 8, 600
    weights = bootstrap_weights(n, 500, seed=1)
    covered = {"plain": 0, "expanded": 0}
    for _ in range(sets):
        x = rng.normal(size=n)
        replicates = weights @ x / n
        for name, units in (("plain", None), ("expanded", n)):
            low, high = interval(replicates, units=units)
            covered[name] += low <= 0.0 <= high
    assert covered["plain"] / sets < 0.925
    assert covered["expanded"] / sets >= 0.93


# --------------------------------------------------------------------------- Jaccard


@pytest.mark.parametrize("variant", JACCARD_VARIANTS)
def test_class_similarity_equals_the_per_class_jaccard_of_metrics(variant):
    rng = np.random.default_rng(3)
    results = jaccard_results(rng, 3, 4, 0, memorised=True)
    train, test = results.subset("train"), results.subset("test")
    classes = np.unique(train.labels)
    got = jaccard.similarity_per_order(
        train, test, np.ones((1, 12)), np.ones((1, 12)), variant=variant
    )[0]
    table = jaccard_per_order(
        train.I_and, train.I_or, train.labels, test.I_and, test.I_or, test.labels,
        variant=variant, per_class=True,
    )  # fmt: skip
    expected = table.groupby("order").similarity.mean().to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Weights are counts: weight 2 on a sample is that sample twice.
    vectors = np.concatenate([results.I_and, results.I_or], axis=1)
    labels = np.asarray(results.labels)
    is_train = np.asarray(results.split) == "train"
    w_a = is_train.astype(float)[None, :]
    w_a[0, 0] = 2.0
    doubled = np.concatenate([vectors[:1], vectors])
    doubled_labels = np.concatenate([labels[:1], labels])
    w_doubled = np.concatenate([[1.0], is_train.astype(float)])[None, :]
    per_class = jaccard.class_similarity(
        vectors, labels, w_a, (~is_train).astype(float)[None, :], classes, N, variant=variant
    )
    again = jaccard.class_similarity(
        doubled, doubled_labels, w_doubled, np.concatenate([[0.0], ~is_train])[None, :],
        classes, N, variant=variant,
    )  # fmt: skip
    np.testing.assert_allclose(per_class, again, rtol=1e-12)


def test_order_bands_leave_out_the_single_coalition_order():
    low, high = jaccard.order_bands(10)
    assert low.tolist() == [1, 2, 3] and high.tolist() == [4, 5, 6, 7, 8, 9]
    low, high = jaccard.order_bands(3)
    assert low.tolist() == [1] and high.tolist() == [2]
    with pytest.raises(ValueError, match="n >= 3"):
        jaccard.order_bands(2)
    similarity = np.array([[0.9, 0.7, 0.1, 0.3, 0.5, 1.0]])  # order 6 (one coalition) ignored
    assert jaccard.band_difference(similarity, 6)[0] == pytest.approx(0.8 - 0.3)


def test_within_class_permutation_is_uniform_over_the_splits_of_each_class():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    is_a = np.array([1, 1, 0, 0, 1, 0, 0, 1, 1], bool)
    draws = jaccard.within_class_permutations(labels, is_a, np.array([0, 1]), 6000, seed=0)
    for c in (0, 1):
        members = labels == c
        assert (draws[:, members].sum(axis=1) == 2).all()
        seen = pd.Series([tuple(row) for row in draws[:, members].astype(int)]).value_counts()
        assert len(seen) == comb(4, 2) and (seen / 6000).sub(1 / 6).abs().max() < 0.02
    assert (draws[:, labels == 2] == 0).all()  # a class outside the claim stays out


def test_jaccard_permutation_null_holds_its_level_on_exchangeable_splits():
    """Train and test drawn alike (high orders sample-specific): "yes" at most at the rate
    the 5 % bound allows, over many data sets."""
    yes = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        before = jaccard_results(rng, 10, 2, 0, memorised=False)
        after = jaccard_results(rng, 10, 2, 5, memorised=False)
        result, _ = jaccard.jaccard_claim(before, after, n_boot=200, seed=seed)
        yes += result.verdict == YES
    assert yes <= 2


def test_jaccard_with_too_few_classes_to_resample_is_inconclusive():
    rng = np.random.default_rng(0)
    before = jaccard_results(rng, 3, 4, 0, memorised=False)
    after = jaccard_results(rng, 3, 4, 5, memorised=True, high_noise=0.1)
    result, extra = jaccard.jaccard_claim(before, after, n_boot=N_BOOT)
    assert extra["resampled"] == "classes" and extra["units"] == 3
    assert result.verdict == INCONCLUSIVE and "too few units" in result.reason


# --------------------------------------------------------------------------- OOD


def test_ood_effect_is_the_difference_in_differences_of_each_sample():
    rng = np.random.default_rng(0)
    first, last = ood_results(rng, 0, 2.0), ood_results(rng, 5, 3.0)
    changes = ood.order_changes(first, last, ratio=0.0)  # every term salient
    brute = {}
    for group, split in ood.OOD_GROUPS.items():
        per_epoch = []
        for results in (first, last):
            part = results.subset(split)
            strength = np.abs(part.I_and) + np.abs(part.I_or)  # all planted terms are salient
            by_order = np.stack(
                [strength[:, theory_orders() == k].sum(axis=1) for k in range(1, N + 1)], 1
            )
            per_epoch.append(by_order @ np.arange(1, N + 1) / by_order.sum(axis=1))
        brute[group] = per_epoch[1] - per_epoch[0]
        np.testing.assert_allclose(changes[group], brute[group], rtol=1e-10)
    result, extra = ood.ood_claim(first, last, ratio=0.0, n_boot=N_BOOT)
    expected = brute["flipped"].mean() - brute["normal"].mean()
    assert result.effect == pytest.approx(expected) and result.verdict == YES
    assert abs(np.median(extra["null_replicates"])) < 0.1  # label permutation: centred on 0


def theory_orders():
    from harsanyi.masks import orders

    return orders(N)


def test_ood_difference_already_there_at_initialisation_is_not_learned():
    """Flipped samples with higher orders from the start and no change: the old rule (end
    difference against the epoch-0 interval) could say yes; the paired change says no."""
    rng = np.random.default_rng(1)
    first = ood_results(rng, 0, 3.0)
    same = results_of(first.I_and * 1.0, first.labels, first.split, 5)
    result, _ = ood.ood_claim(first, same, n_boot=N_BOOT)
    assert result.effect == pytest.approx(0.0, abs=1e-12) and result.verdict == NO
    says_yes = sum(
        ood.ood_claim(first, ood_results(rng, 5, 3.0), n_boot=N_BOOT, seed=s)[0].verdict == YES
        for s in range(10)
    )
    assert says_yes <= 1


def test_ood_claim_needs_the_same_samples_at_both_checkpoints():
    rng = np.random.default_rng(2)
    first, last = ood_results(rng, 0, 2.0), ood_results(rng, 5, 3.0, flipped=19)
    with pytest.raises(ValueError, match="other flipped samples"):
        ood.ood_claim(first, last)


# --------------------------------------------------------------------------- sensitivity


def test_sensitivity_change_from_initialisation():
    rng = np.random.default_rng(0)
    rising = np.exp(np.arange(6))[None, None, :] * rng.uniform(0.5, 1.5, (2, 30, 6))
    rising_too = np.exp(np.arange(6))[None, None, :] * rng.uniform(0.5, 1.5, (2, 30, 6))
    flat = rng.uniform(0.5, 1.5, (2, 30, 6))
    # A trend there at initialisation already: no change, not "yes" (the level said yes).
    level, _ = sens.sensitivity_claim(sensitivity_rows(rising, epoch=5), n_boot=N_BOOT)
    assert level.verdict == YES
    result, extra = sens.sensitivity_change_claim(
        sensitivity_rows(rising_too, epoch=0), sensitivity_rows(rising, epoch=5), n_boot=N_BOOT
    )
    assert result.verdict == NO and abs(result.effect) < 0.1
    # Learned: flat at initialisation, rising at the end.
    result, extra = sens.sensitivity_change_claim(
        sensitivity_rows(flat, epoch=0), sensitivity_rows(rising, epoch=5), n_boot=N_BOOT
    )
    assert result.verdict == YES and result.effect > 0.7
    expected = sens.mean_sample_rho(sensitivity_rows(rising, epoch=5)) - sens.mean_sample_rho(
        sensitivity_rows(flat, epoch=0)
    )
    assert result.effect == pytest.approx(expected)
    null = np.asarray(extra["null_replicates"])
    assert abs(null.mean()) < 0.05 and result.bound == pytest.approx(np.quantile(null, 0.95))
    with pytest.raises(ValueError, match="other samples"):
        sens.sensitivity_change_claim(
            sensitivity_rows(flat[:, :20], epoch=0), sensitivity_rows(rising, epoch=5)
        )


def test_sign_flip_null_is_the_exact_permutation_distribution_on_few_samples():
    """Five samples: the sign-flip null has 32 equally likely values; its draws match."""
    rng = np.random.default_rng(4)
    first = rng.uniform(0.5, 1.5, (1, 5, 5))
    last = np.exp(np.arange(5))[None, None, :] * rng.uniform(0.5, 1.5, (1, 5, 5))
    a = sensitivity_rows(first, epoch=0, names=("gauss:0.05",))
    b = sensitivity_rows(last, epoch=5, names=("gauss:0.05",))
    result, extra = sens.sensitivity_change_claim(a, b, n_boot=4000)
    delta = (sens.sample_rhos(b) - sens.sample_rhos(a)).to_numpy()
    exact = np.array([np.mean(s * delta) for s in itertools.product([-1, 1], repeat=5)])
    null = np.asarray(extra["null_replicates"])
    assert set(np.round(null, 10)) <= set(np.round(exact, 10))
    assert np.quantile(null, 0.95) == pytest.approx(np.quantile(exact, 0.95), abs=0.05)


def test_scorecard_sensitivity_is_na_with_one_measured_checkpoint():
    rng = np.random.default_rng(5)
    epochs = run_epochs(rng, [3.0, 2.0, 2.5])
    rows = sensitivity_rows(rng.uniform(0.5, 1.5, (2, 10, 5)), epoch=2)
    entries = scorecard.run_claims(epochs, None, n_boot=100, sensitivity_rows=rows)
    entry = {e["key"]: e for e in entries}["higher_orders_sensitive"]
    assert entry["verdict"] == "n/a" and "one measured checkpoint" in entry["reason"]


# --------------------------------------------------------------------------- gap onset


def test_seeds_to_decide_is_the_smallest_pool_below_five_percent():
    for positions in range(2, 40):
        seeds = two_phase.seeds_to_decide(positions)
        assert (1 / positions) ** seeds <= 0.05
        assert seeds == 1 or (1 / positions) ** (seeds - 1) > 0.05
    assert two_phase.seeds_to_decide(13) == 2 and two_phase.seeds_to_decide(20) == 1


def test_gap_claim_on_a_coarse_grid_says_why_it_cannot_decide():
    rng = np.random.default_rng(0)
    means = [3.5, 2.5, 1.8, 1.5, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 3.1, 3.2]
    result, extra = two_phase.gap_claim(noisy_cube(rng, means), list(range(14)), 3)
    assert result.verdict == INCONCLUSIVE
    assert result.reason.startswith("cannot be decided on this grid: 13 checkpoints")
    assert "2 seeds pooled" in result.reason and len(extra["replicates"]) > 0


# --------------------------------------------------------------------------- spindle


def test_the_spindle_template_can_flip_the_verdict():
    """Strength ∝ C(n,k)·0.6^k: closer to the seed's binomial spindle than to a flat
    distribution, but farther from the i.i.d.-v template than from flat."""
    rng = np.random.default_rng(0)
    k = np.arange(1, N + 1)
    strength = comb(N, k) * 0.6**k * rng.uniform(0.95, 1.05, (20, N))
    first = results_of(planted_interactions(strength), np.zeros(20), ["train"] * 20, 0)
    seed_result, extra = theory.spindle_claim(first, n_boot=N_BOOT)
    other, _ = theory.spindle_claim(first, n_boot=N_BOOT, template="iid_v")
    assert seed_result.verdict == YES and other.verdict == NO
    assert extra["template"] == "binomial"
    assert extra["effect_iid_v"] == pytest.approx(other.effect)
    with pytest.raises(ValueError, match="template"):
        theory.spindle_claim(first, template="flat")


def test_scorecard_passes_the_spindle_template():
    epochs = run_epochs(np.random.default_rng(1), [3.0, 2.0, 2.5])
    seed_entry = scorecard.run_claims(epochs, None, n_boot=100)[0]
    other = scorecard.run_claims(epochs, None, n_boot=100, spindle_template="iid_v")[0]
    assert seed_entry["key"] == "spindle_at_init" and seed_entry["template"] == "binomial"
    assert other["template"] == "iid_v" and "binomial template" in other["details"]
    assert seed_entry["effect"] != other["effect"]
