"""The null study end to end: networks that never learn (learning rate 1e-9; two
architectures, two seeds, with and without label noise) must not score "yes" on any claim
about training.  The positive controls, where every effect is present by construction, are
in test_verdicts.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_reruns import REPO, snakemake

from harsanyi.analyses.common import read_tsv
from harsanyi.analyses.scorecard import CLAIMS, TRAINING_CLAIMS

NULL_STUDY = REPO / "tests" / "data" / "null_study.yaml"
# The same study decomposed by the exact solver instead of the shipped adam.
NULL_STUDY_EXACT = REPO / "tests" / "data" / "null_study_exact.yaml"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One working directory and results store for both null studies: they differ only in
    their extraction, so the second reuses the first's samples, trainings and games."""
    return tmp_path_factory.mktemp("null-studies")


@pytest.mark.slow
def test_networks_that_never_learn_score_no_yes_about_training(store):
    # 112 jobs: a few minutes alone on 2 cores, much longer on a shared machine.
    check_null_study(store, NULL_STUDY, "never_learns")


@pytest.mark.slow
def test_null_study_with_the_exact_solver_scores_no_yes_about_training(store):
    # The study above with `solver: exact` (the exact solver at n = 6 takes well under a
    # second per checkpoint; the analyses dominate).
    check_null_study(store, NULL_STUDY_EXACT, "never_learns_exact")


def check_null_study(workdir: Path, config: Path, study: str) -> None:
    other_ran = any((workdir / "results" / "studies").glob("never_learns*-*/a-*/scorecard.tsv"))
    output = snakemake(workdir, "--cores", "2", "scorecard", config=config, timeout=2400)
    if other_ran:  # the trainings and games are the other study's, not redone
        assert "rule train:" not in output and "rule games:" not in output
    study_dir = next((workdir / "results" / "studies").glob(f"{study}-*/a-*"))
    card = read_tsv(study_dir / "scorecard.tsv")
    runs = card.run.unique()
    assert len(runs) == 12 and len(card) == 12 * len(CLAIMS)
    training = card[card.key.isin(TRAINING_CLAIMS)]
    said_yes = training[training.verdict == "yes"]
    assert said_yes.empty, said_yes[["run", "key", "measured", "reason"]].to_string()
    pooled = read_tsv(study_dir / "scorecard_seeds.tsv")
    assert len(pooled) == 6 * len(CLAIMS)  # 3 architectures × 2 noise levels, 2 seeds each
    pooled_yes = pooled[pooled.key.isin(TRAINING_CLAIMS) & (pooled.verdict == "yes")]
    assert pooled_yes.empty, pooled_yes[["run", "key", "measured", "reason"]].to_string()
    # Every decided claim carries its numbers, and every row its rule.
    decided = card[card.verdict != "n/a"]
    assert decided[["effect", "low", "high", "bound"]].notna().all().all()
    assert card.rule.str.len().gt(0).all()
    assert Path(study_dir / "scorecard.png").exists()
