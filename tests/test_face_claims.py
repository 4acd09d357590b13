"""Claims about orders scored at both ends of the optimal face (analyses.scorecard)."""

import copy

import numpy as np
from test_verdicts import N_BOOT, run_epochs

from harsanyi.analyses import scorecard

RISING = [3.5, 2.5, 1.8, 1.5, 1.6, 2.0, 2.4, 2.8]  # phase 1, then phase 2
FLAT = [3.5, 2.5, 1.8, 1.5, 1.5, 1.5, 1.5, 1.5]  # phase 1, no phase 2


def with_ends(canonical: dict, low: dict, high: dict) -> dict:
    """The canonical epochs, each holding the other two runs' interactions as its face."""
    out = {}
    for epoch, r in canonical.items():
        r = copy.deepcopy(r)
        zeros = np.zeros(r.n_samples)
        r.face = {
            end: {
                "I_and": src[epoch].I_and,
                "I_or": src[epoch].I_or,
                "p": src[epoch].p,
                "q": src[epoch].q,
                **{name: zeros for name in ("l1", "weighted_order", "bound", "gap")},
            }
            for end, src in (("low", low), ("high", high))
        }
        out[epoch] = r
    return out


def record(run, entries):
    return {
        "run": run,
        "arch": "lenet",
        "dataset": "digits",
        "label_noise": 0.2,
        "seed": int(run.split("-s")[1][0]),
        "claims": entries,
    }


def test_ends_that_disagree_give_depends_and_agreeing_ends_keep_the_verdict():
    rng = np.random.default_rng(0)
    rising, flat = run_epochs(rng, RISING), run_epochs(rng, FLAT)
    entries = scorecard.claims_at_both_ends(with_ends(rising, rising, flat), 5, n_boot=N_BOOT)
    by_key = {e["key"]: e for e in entries}
    rise = by_key["phase2_rise"]
    assert rise["canonical_verdict"] == "yes"
    assert rise["ends"]["low"]["verdict"] == "yes" and rise["ends"]["high"]["verdict"] != "yes"
    assert rise["verdict"] == scorecard.DEPENDS
    assert "low end yes" in rise["reason"]
    # Phase 1 is in both: the ends agree, and the verdict is theirs.
    drop = by_key["phase1_drop"]
    assert (
        drop["verdict"]
        == "yes"
        == drop["ends"]["low"]["verdict"]
        == drop["ends"]["high"]["verdict"]
    )
    assert drop["reason"].startswith("both ends")
    # Claims not about orders are scored on the canonical optimum alone.
    assert "ends" not in by_key["higher_orders_sensitive"]


def test_without_a_face_the_canonical_verdict_stands_and_says_so():
    rng = np.random.default_rng(1)
    rising = run_epochs(rng, RISING)
    entries = scorecard.claims_at_both_ends(rising, 5, n_boot=N_BOOT)
    plain = scorecard.run_claims(rising, 5, n_boot=N_BOOT)
    for entry, same in zip(entries, plain, strict=True):
        assert entry["verdict"] == same["verdict"]
        if entry["key"] in scorecard.ORDER_CLAIMS:
            assert entry["ends"] is None


def test_scorecard_pooled_and_readme_carry_both_ends():
    rng = np.random.default_rng(2)
    records = []
    for seed in (0, 1):
        run = f"digits-lenet-s{seed}-noise0.2-aaaaaaaaaaa{seed}"
        rising = run_epochs(rng, RISING, run=run)
        flat = run_epochs(rng, FLAT, run=run)
        entries = scorecard.claims_at_both_ends(with_ends(rising, rising, flat), 5, n_boot=N_BOOT)
        records.append(record(run, entries))
    card = scorecard.scorecard(records)
    assert list(card.columns) == scorecard.COLUMNS
    rise = card[card.key == "phase2_rise"]
    assert (rise.verdict == scorecard.DEPENDS).all()
    assert rise.low_end.str.startswith("yes").all() and rise.canonical_verdict.eq("yes").all()
    assert card[card.key == "shared_interactions"].low_end.isna().all()
    pooled = scorecard.pooled_scorecard(records, n_boot=N_BOOT).set_index("key")
    assert pooled.verdict["phase2_rise"] == scorecard.DEPENDS
    assert pooled.verdict["phase1_drop"] == "yes"
    assert pooled.low_end["phase2_rise"].startswith("yes")
    text = scorecard.readme_markdown(
        card, pooled.reset_index(), study="s", figure="f.png", command="c"
    )
    assert f"**{scorecard.DEPENDS}** (low end yes" in text
    pooled_line, runs_line = (line for line in text.splitlines() if " claims: " in line)
    depends = {name: int((t.verdict == scorecard.DEPENDS).sum()) for name, t in
               (("pooled", pooled), ("runs", card))}  # fmt: skip
    assert pooled_line.startswith("Pooled over seeds, 1 group × 8 claims")
    assert f"{depends['pooled']} {scorecard.DEPENDS}" in pooled_line
    assert runs_line.startswith("Scorecard, 2 runs") and depends["runs"] == 2
    assert f"2 {scorecard.DEPENDS}" in runs_line
    assert text.index(pooled_line) < text.index(runs_line)  # the pooled verdicts come first
