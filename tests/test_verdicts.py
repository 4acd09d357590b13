"""Verdicts that can fail: the generic rule, and every claim on null data (where nothing is
there: it must not say "yes") and on planted data (where the effect is there by construction:
it must say "yes")."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harsanyi.analyses import jaccard, ood, scorecard, similarity, theory, two_phase
from harsanyi.masks import orders
from harsanyi.store import InteractionResults
from harsanyi.transforms import and_transform
from harsanyi.verdicts import (
    GREATER,
    INCONCLUSIVE,
    LESS,
    NO,
    YES,
    bootstrap_weights,
    claim,
    clustered_bootstrap,
    decide,
    detectable_difference,
    interval,
    placement_distance_null,
    samples_needed,
)

N = 6
N_BOOT = 300


# --------------------------------------------------------------------------- the rule


def test_decide_says_yes_only_with_the_interval_beyond_the_bound():
    kwargs = {"direction": GREATER, "n": 20, "min_n": 5}
    assert decide(1.0, 0.6, 1.4, 0.5, **kwargs)[0] == YES
    assert decide(1.0, 0.4, 1.4, 0.5, **kwargs)[0] == INCONCLUSIVE  # interval reaches it
    assert decide(0.5, 0.1, 0.9, 0.5, **kwargs)[0] == NO  # not beyond
    assert decide(0.2, 0.1, 0.3, 0.5, **kwargs)[0] == NO
    assert decide(-1.0, -1.4, -0.6, -0.5, direction=LESS, n=20, min_n=5)[0] == YES
    assert decide(-1.0, -1.4, -0.6, -0.5, direction=GREATER, n=20, min_n=5)[0] == NO
    verdict, reason = decide(1.0, 0.6, 1.4, 0.5, direction=GREATER, n=3, min_n=5)
    assert verdict == INCONCLUSIVE and "too few samples" in reason
    verdict, reason = decide(0.55, 0.52, 0.6, 0.5, smallest_effect=0.1, **kwargs)
    assert verdict == INCONCLUSIVE and "smallest effect" in reason
    assert decide(math.nan, 0, 1, 0, **kwargs)[0] == INCONCLUSIVE


def test_claim_bounds_from_a_null_distribution_and_from_a_null_interval():
    rng = np.random.default_rng(0)
    null = rng.normal(0, 1, 5000)
    effect = rng.normal(3, 0.3, 1000)
    result = claim(3.0, effect, null=0.0, null_replicates=null, direction=GREATER, n=20, min_n=5)
    assert result.bound == pytest.approx(1.645, abs=0.1) and result.verdict == YES
    # As an interval the null reaches 1.96; an effect at 2.5 ± 0.3 then overlaps it.
    result = claim(
        2.5,
        rng.normal(2.5, 0.3, 1000),
        null=0.0,
        null_replicates=null,
        direction=GREATER,
        n=20,
        min_n=5,
        null_kind="interval",
    )
    assert result.bound == pytest.approx(1.96, abs=0.1) and result.verdict == INCONCLUSIVE
    result = claim(
        -0.2, rng.normal(-0.2, 0.01, 100), null=0.3, null_replicates=[0.3], direction=LESS,
        n=20, min_n=5, null_kind="interval", floor=0.0,
    )  # fmt: skip
    assert result.bound == 0.0 and result.verdict == YES


def test_bootstrap_helpers():
    weights = bootstrap_weights(7, 50, seed=1)
    assert weights.shape == (50, 7) and (weights.sum(axis=1) == 7).all()
    assert interval([1.0, np.nan, 2.0, 3.0])[0] >= 1.0
    pooled = clustered_bootstrap([np.full(10, 1.0), np.full(10, 3.0)], 400)
    assert 1.0 <= pooled.min() and pooled.max() <= 3.0 and abs(pooled.mean() - 2.0) < 0.2


def test_placement_null_is_the_distribution_of_a_random_distance():
    p = placement_distance_null(13)
    assert p.sum() == pytest.approx(1.0) and p[0] == pytest.approx(1 / 13)
    draws = placement_distance_null(13, draws=20000, runs=1)
    assert draws.mean() == pytest.approx(p @ np.arange(13), abs=0.1)


def test_power_statement():
    detectable = detectable_difference(1.0, 10, 1.0, 10)
    assert detectable == pytest.approx(2.8 * math.sqrt(0.2), rel=0.01)
    assert samples_needed(detectable, 1.0, 1.0) in (10, 11)


# --------------------------------------------------------------------------- planted data


def planted_interactions(strength: np.ndarray) -> np.ndarray:
    """I_and (samples, 2^n) with total strength strength[x, k-1] spread evenly over the
    coalitions of order k (positive), so that every order with strength is salient."""
    of_order = orders(N)
    counts = np.bincount(of_order, minlength=N + 1)
    values = np.zeros((strength.shape[0], 2**N))
    for k in range(1, N + 1):
        values[:, of_order == k] = (strength[:, k - 1] / counts[k])[:, None]
    return values


def results_of(
    I_and, labels, split, epoch, *, I_or=None, run="digits-lenet-s0-aaaaaaaaaaaa"
) -> InteractionResults:
    samples = I_and.shape[0]
    I_or = np.zeros_like(I_and) if I_or is None else I_or
    return InteractionResults(
        v=np.zeros_like(I_and),
        I_and=I_and,
        I_or=I_or,
        p=np.zeros_like(I_and),
        q=np.zeros_like(I_and),
        sample_ids=np.arange(samples),
        labels=np.asarray(labels),
        split=np.asarray(split),
        n=N,
        meta={"model": {"run": run, "arch": "lenet", "dataset": "digits", "epoch": epoch}},
    )


def profile(mean_order: float, width: float = 1.0) -> np.ndarray:
    k = np.arange(1, N + 1)
    weights = np.exp(-0.5 * ((k - mean_order) / width) ** 2)
    return weights / weights.sum()


def noisy_cube(rng, means, samples=20, noise=0.3) -> np.ndarray:
    """(checkpoints, samples, n) strengths around profile(mean) per checkpoint, i.i.d. noise
    per sample and checkpoint (log-normal), like a network whose extraction fluctuates."""
    base = rng.uniform(0.5, 1.5, size=(samples, 1))
    return np.stack(
        [profile(m)[None, :] * base * np.exp(rng.normal(0, noise, (samples, N))) for m in means]
    )


def test_phase_claims_never_say_yes_on_noise_and_say_yes_on_planted_phases():
    """The old rule ("final > minimum") said yes about 92 % of the time on pure noise."""
    checkpoints = 14
    says_yes = {"phase1_drop": 0, "phase2_rise": 0}
    for seed in range(30):
        rng = np.random.default_rng(seed)
        cube = noisy_cube(rng, [3.0] * checkpoints)
        for key, (result, _) in two_phase.phase_claims(cube, n_boot=N_BOOT, seed=seed).items():
            says_yes[key] += result.verdict == YES
    assert says_yes == {"phase1_drop": 0, "phase2_rise": 0}, says_yes
    rng = np.random.default_rng(99)
    means = [3.5, 2.5, 1.8, 1.5, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 3.1, 3.2]
    planted = two_phase.phase_claims(noisy_cube(rng, means), n_boot=N_BOOT)
    assert planted["phase1_drop"][0].verdict == YES, planted["phase1_drop"][0]
    assert planted["phase2_rise"][0].verdict == YES, planted["phase2_rise"][0]
    # Phase 1 without a phase 2: the rise must not be claimed.
    flat_after = [3.5, 2.5, 1.8, 1.5] + [1.5] * 10
    result = two_phase.phase_claims(noisy_cube(rng, flat_after), n_boot=N_BOOT)
    assert result["phase1_drop"][0].verdict == YES
    assert result["phase2_rise"][0].verdict != YES


def test_phase_claims_on_identical_checkpoints_say_no():
    """Networks that never learn (learning rate ≈ 0): every checkpoint the same."""
    cube = np.repeat(noisy_cube(np.random.default_rng(0), [3.0]), 6, axis=0)
    for result, _ in two_phase.phase_claims(cube, n_boot=N_BOOT).values():
        assert result.verdict == NO and result.effect == pytest.approx(0.0)


def test_gap_claim_against_random_placement():
    rng = np.random.default_rng(0)
    epochs = list(range(14))
    means = [3.5, 2.5, 1.8, 1.5, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8, 3.0, 3.1, 3.2]
    cube = noisy_cube(rng, means)
    # 13 later checkpoints: chance alone puts both points together with p = 1/13 > 5 %.
    result, _ = two_phase.gap_claim(cube, epochs, 3, n_boot=N_BOOT)
    assert result.verdict == INCONCLUSIVE and "checkpoints" in result.reason
    # An onset at the first checkpoint examined is not located.
    result, _ = two_phase.gap_claim(cube, epochs, 1, n_boot=N_BOOT)
    assert result.verdict == INCONCLUSIVE and "first checkpoint" in result.reason
    assert two_phase.gap_claim(cube, epochs, None)[0].verdict == "n/a"
    # A fine grid (60 checkpoints): coinciding points say yes, distant ones no.
    long_means = np.concatenate([np.linspace(3.5, 1.5, 20), np.linspace(1.7, 3.5, 40)])
    cube = noisy_cube(rng, long_means, noise=0.05)
    start = int(np.argmin(long_means[1:])) + 1
    assert two_phase.gap_claim(cube, list(range(60)), start, n_boot=N_BOOT)[0].verdict == YES
    assert two_phase.gap_claim(cube, list(range(60)), 55, n_boot=N_BOOT)[0].verdict == NO


def test_gap_claim_null_rate_on_a_fine_grid():
    """Random onsets on a grid fine enough to test: "yes" at most at the nominal rate."""
    rng = np.random.default_rng(1)
    long_means = np.concatenate([np.linspace(3.5, 1.5, 20), np.linspace(1.7, 3.5, 40)])
    cube = noisy_cube(rng, long_means, noise=0.05)
    onsets = rng.integers(2, 60, size=60)
    yes = sum(
        two_phase.gap_claim(cube, list(range(60)), int(o), n_boot=100)[0].verdict == YES
        for o in onsets
    )
    assert yes <= 6  # 10 % of 60; the nominal rate is ≤ 5 %


def split_results(train_strength, test_strength, epoch, labels, *, rng, shared_part):
    """Train and test samples whose interactions per order = planted strength times a
    pattern over the coalitions that is shared by a class (shared_part of it) or random."""
    rows, splits, all_labels = [], [], []
    class_pattern = {c: rng.normal(size=2**N) for c in np.unique(labels)}
    for strength, split in ((train_strength, "train"), (test_strength, "test")):
        for x, c in enumerate(labels):
            pattern = shared_part * class_pattern[c] + (1 - shared_part) * rng.normal(size=2**N)
            rows.append(planted_interactions(strength[x : x + 1])[0] * pattern)
            splits.append(split)
            all_labels.append(c)
    return results_of(np.array(rows), all_labels, splits, epoch)


def jaccard_results(rng, classes, per_split, epoch, *, memorised, high_noise=1.0):
    """Train and test samples: low orders (1, 2) carry a class pattern in both splits; high
    orders are each sample's own noise (scaled by `high_noise`), except that with
    `memorised` the training samples of a class share a high-order pattern (what a network
    fitted to them would carry)."""
    low = orders(N) <= 2
    rows, split, labels = [], [], []
    for c in range(classes):
        pattern, memory = rng.normal(size=2**N), rng.normal(size=2**N)
        for part in ("train", "test"):
            for _ in range(per_split):
                own = rng.normal(size=2**N) * high_noise
                high = memory + 0.1 * own if (memorised and part == "train") else own
                rows.append(np.where(low, pattern + 0.1 * rng.normal(size=2**N), high))
                split.append(part)
                labels.append(c)
    return results_of(np.array(rows), labels, split, epoch)


@pytest.mark.parametrize("classes, per_split", [(10, 2), (2, 10)])
def test_jaccard_claim_null_and_planted(classes, per_split):
    """(10, 2): two samples per class (as in the studies), resampled by class; (2, 10):
    resampled within class."""
    rng = np.random.default_rng(0)
    first = jaccard_results(rng, classes, per_split, 0, memorised=False)
    # Null: nothing changes in training.
    result, extra = jaccard.jaccard_claim(first, first, n_boot=N_BOOT)
    assert result.verdict != YES, result
    assert extra["resampled"] == ("classes" if per_split < 10 else "samples within class")
    # Null: high orders are specific to each sample, in train and test alike; the Jaccard
    # falls with order (the old slope-against-initialisation rule said yes here), but train
    # and test are exchangeable, so the permutation null falls as much.
    alike = jaccard_results(rng, classes, per_split, 5, memorised=False)
    result, _ = jaccard.jaccard_claim(first, alike, n_boot=N_BOOT)
    assert result.effect > 0.3 and result.verdict != YES, result
    # Planted: the training samples of a class share strong high-order interactions; the
    # test samples have weak ones of their own.
    planted = jaccard_results(rng, classes, per_split, 5, memorised=True, high_noise=0.1)
    result, _ = jaccard.jaccard_claim(first, planted, n_boot=N_BOOT)
    assert result.verdict == YES, result


def iid_noise_interactions(rng, samples):
    return and_transform(rng.normal(size=(samples, 2**N)))


def test_spindle_claim_null_and_planted():
    rng = np.random.default_rng(0)
    # Planted: v is i.i.d. noise, the theory's own premise.
    I_and = np.asarray(iid_noise_interactions(rng, 20))
    first = results_of(I_and, np.zeros(20), ["train"] * 20, 0)
    assert theory.spindle_claim(first, n_boot=N_BOOT)[0].verdict == YES
    # Null: strength flat over orders.
    flat = planted_interactions(np.ones((20, N)) * rng.uniform(0.8, 1.2, (20, N)))
    first = results_of(flat, np.zeros(20), ["train"] * 20, 0)
    assert theory.spindle_claim(first, n_boot=N_BOOT)[0].verdict != YES


def ood_results(rng, epoch, flipped_mean, normal_mean=2.0, normal=20, flipped=20):
    strength = np.concatenate(
        [
            profile(normal_mean)[None, :] * np.exp(rng.normal(0, 0.3, (normal, N))),
            profile(flipped_mean)[None, :] * np.exp(rng.normal(0, 0.3, (flipped, N))),
        ]
    )
    split = ["train"] * normal + ["flipped"] * flipped
    return results_of(planted_interactions(strength), np.zeros(normal + flipped), split, epoch)


def test_ood_claim_null_and_planted():
    rng = np.random.default_rng(0)
    first = ood_results(rng, 0, 2.0)
    says_yes = sum(
        ood.ood_claim(first, ood_results(rng, 5, 2.0), n_boot=N_BOOT, seed=s)[0].verdict == YES
        for s in range(10)
    )
    assert says_yes == 0
    result, extra = ood.ood_claim(first, ood_results(rng, 5, 3.0), n_boot=N_BOOT)
    assert result.verdict == YES, result
    assert extra["samples_needed"] >= 2 and "80 %" in extra["power"]
    few = ood_results(rng, 5, 3.0, flipped=3)
    assert ood.ood_claim(ood_results(rng, 0, 2.0, flipped=3), few)[0].verdict == INCONCLUSIVE


def test_matched_random_coverage_is_the_mean_over_random_sets():
    rng = np.random.default_rng(0)
    width = 2 * 2**N
    omega1 = rng.random((3, width)) < 0.2
    omega2 = rng.random((3, width)) < 0.3
    omega1[:, [0, 2**N]] = omega2[:, [0, 2**N]] = False
    expected = similarity.matched_random_coverage(omega1, omega2, N)
    of_order, op = np.tile(orders(N), 2), np.repeat([0, 1], 2**N)
    draws = []
    for _ in range(2000):
        random = np.zeros_like(omega2)
        for o in (0, 1):
            for k in range(1, N + 1):
                column = np.flatnonzero((of_order == k) & (op == o))
                for x in range(3):
                    size = omega2[x, column].sum()
                    random[x, rng.choice(column, size, replace=False)] = True
        draws.append((omega1 & random).sum(axis=1) / omega1.sum(axis=1))
    assert np.allclose(np.mean(draws, axis=0), expected, atol=0.01)


def shared_table(excess_final, excess_init, samples=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for stage, excess in (("init", excess_init), ("final", excess_final)):
        for x in range(samples):
            matched = rng.uniform(0.2, 0.4)
            rows.append(
                {
                    "stage": stage,
                    "run_a": "a",
                    "run_b": "b",
                    "split": "train",
                    "sample_id": x,
                    "coverage": matched + excess + rng.normal(0, 0.05),
                    "random_matched": matched,
                    "random_uniform": 0.1,
                }
            )
    return pd.DataFrame(rows)


def test_shared_claim_against_untrained_pairs():
    # Untrained networks already share: the same excess at the end is no evidence.
    result, _ = similarity.shared_claims(shared_table(0.3, 0.3))["a"]
    assert result.verdict != YES
    result, _ = similarity.shared_claims(shared_table(0.0, 0.0))["a"]
    assert result.verdict != YES
    result, _ = similarity.shared_claims(shared_table(0.4, 0.1))["a"]
    assert result.verdict == YES


# --------------------------------------------------------------------------- scorecard


def run_epochs(rng, means, *, flipped=False, run="digits-lenet-s0-aaaaaaaaaaaa"):
    """A run's checkpoints with planted mean orders (train and test samples alike)."""
    labels = np.repeat(np.arange(5), 2)
    epochs = {}
    for epoch, m in enumerate(means):
        strength = profile(m)[None, :] * np.exp(rng.normal(0, 0.2, (20, N)))
        split = ["train"] * 10 + ["test"] * 10
        all_labels = np.concatenate([labels, labels])
        I_and = planted_interactions(strength) * rng.normal(1, 0.1, (20, 2**N))
        if flipped:
            shift = 1.5 * epoch / max(1, len(means) - 1)  # the OOD effect grows in training
            extra = profile(m + shift)[None, :] * np.exp(rng.normal(0, 0.2, (10, N)))
            I_and = np.concatenate([I_and, planted_interactions(extra)])
            split += ["flipped"] * 10
            all_labels = np.concatenate([all_labels, labels])
        epochs[epoch] = results_of(I_and, all_labels, split, epoch, run=run)
    return epochs


def test_scorecard_table_has_every_claim_with_effect_interval_null_and_rule(tmp_path):
    rng = np.random.default_rng(0)
    means = [3.5, 2.5, 1.8, 1.5, 1.6, 2.0, 2.4, 2.8]
    records = []
    for seed in (0, 1):
        run = f"digits-lenet-s{seed}-noise0.2-aaaaaaaaaaa{seed}"
        entries = scorecard.run_claims(
            run_epochs(rng, means, flipped=True, run=run), 5, n_boot=N_BOOT
        )
        records.append(
            {
                "run": run,
                "arch": "lenet",
                "dataset": "digits",
                "label_noise": 0.2,
                "seed": seed,
                "claims": entries,
            }
        )
    card = scorecard.scorecard(records)
    assert list(card.columns) == scorecard.COLUMNS
    assert len(card) == 2 * len(scorecard.CLAIMS)
    assert set(card.verdict) <= {"yes", "no", "inconclusive", "n/a"}
    assert (card.rule == card.key.map(scorecard.RULES)).all()
    decided = card[card.verdict != "n/a"]
    assert decided[["effect", "low", "high", "bound"]].notna().all().all()
    # Every effect and every null inside its own interval (by construction).
    assert (decided.low <= decided.effect).all() and (decided.effect <= decided.high).all()
    assert (decided.null_low <= decided["null"]).all()
    assert (decided["null"] <= decided.null_high).all()
    by_key = card[card.run == records[0]["run"]].set_index("key").verdict
    assert by_key["phase1_drop"] == "yes" and by_key["phase2_rise"] == "yes"
    assert by_key["ood_high_order"] == "yes"
    assert by_key["shared_interactions"] == "n/a"
    pooled = scorecard.pooled_scorecard(records, n_boot=N_BOOT)
    assert len(pooled) == len(scorecard.CLAIMS) and "2 seeds" in pooled.run.iloc[0]
    assert pooled.set_index("key").verdict["phase1_drop"] == "yes"


def test_scorecard_of_a_run_that_never_learns_says_no_yes_about_training():
    rng = np.random.default_rng(0)
    epochs = run_epochs(rng, [3.0], flipped=True)
    frozen = {e: epochs[0] for e in range(6)}
    frozen = {
        e: InteractionResults(**{**r.__dict__, "meta": {"model": {**r.meta["model"], "epoch": e}}})
        for e, r in frozen.items()
    }
    entries = scorecard.run_claims(frozen, 2, n_boot=N_BOOT)
    verdicts = {entry["key"]: entry["verdict"] for entry in entries}
    assert all(verdicts[key] != "yes" for key in verdicts if key in scorecard.TRAINING_CLAIMS)


def test_readme_section_is_written_from_the_tables_and_spliced():
    rows = []
    for run in ("digits-lenet-s0-aaaaaaaaaaaa", "digits-mlp-s0-bbbbbbbbbbbb"):
        for key in scorecard.CLAIMS:
            verdict = "n/a" if key == "ood_high_order" else "no"
            effect = np.nan if verdict == "n/a" else 0.123
            rows.append(
                {"run": run, "key": key, "verdict": verdict, "effect": effect, "low": 0.01,
                 "high": 0.2, "bound": 0.3}
            )  # fmt: skip
    card = pd.DataFrame(rows)
    section = scorecard.readme_markdown(
        card, pd.DataFrame(), study="default-x", figure="docs/f.png", command="cmd"
    )
    assert "no: 0.12 [0.01, 0.20] vs 0.30" in section and "`cmd`" in section
    claims = len(scorecard.CLAIMS)
    summary = f"2 runs × {claims} claims: 0 yes, {2 * (claims - 1)} no"
    assert section.count("\n| digits") == 2 and summary in section
    readme = f"intro\n{scorecard.README_BEGIN}\nold numbers\n{scorecard.README_END}\nrest\n"
    spliced = scorecard.splice_readme(readme, section)
    assert "old numbers" not in spliced and spliced.startswith("intro\n")
    assert spliced.endswith("rest\n") and spliced.count(scorecard.README_BEGIN) == 1
    with pytest.raises(ValueError, match="markers"):
        scorecard.splice_readme("no markers", section)
