"""Samples without a certificate are kept and counted in every per-checkpoint table."""

import numpy as np

from harsanyi import sparsify
from harsanyi.analyses.jaccard import jaccard_table
from harsanyi.analyses.ood import ood_tables
from harsanyi.analyses.two_phase import order_strength_table
from harsanyi.store import InteractionResults, write_results


def results_file(path, gap_tol, certificate=True):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(9, 2**4))
    solved = sparsify(v, gap_tol=gap_tol)
    results = InteractionResults(
        v=v,
        I_and=solved.I_and,
        I_or=solved.I_or,
        p=solved.p,
        q=solved.q,
        sample_ids=np.arange(9),
        labels=np.array([0, 1, 2] * 3),
        split=np.array(["train"] * 3 + ["test"] * 3 + ["flipped"] * 3),
        n=4,
        meta={"model": {"run": "r", "arch": "mlp", "dataset": "digits", "epoch": 1}},
    )
    if certificate:
        results.l1 = solved.l1_final
        results.lower_bound = solved.lower_bound
        results.gap = solved.gap
        results.certified = solved.certified
    return write_results(path, results)


def test_uncertified_samples_are_counted_not_dropped(tmp_path):
    proven = results_file(tmp_path / "a.h5", gap_tol=0.005)
    flagged = results_file(tmp_path / "b.h5", gap_tol=0.0)  # the tie-break leaves gaps ~1e-5
    old = results_file(tmp_path / "c.h5", gap_tol=0.005, certificate=False)
    for path, expected in ((proven, 0), (flagged, 3)):
        strength = order_strength_table([path])
        assert (strength.uncertified == expected).all()
        assert (strength.samples == 3).all()
        jaccard = jaccard_table([path])
        assert (jaccard.uncertified == 2 * expected).all()
        ood = ood_tables([path])[0]
        assert (ood.uncertified == expected).all()
    assert order_strength_table([old]).uncertified.isna().all()
