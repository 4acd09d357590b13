"""The public API that notebooks and checks rely on (stable from 0.1)."""

import numpy as np
import torch

import harsanyi
from harsanyi.store import InteractionResults, read_results, write_results


def test_top_level_names():
    for name in [
        "and_transform",
        "or_transform",
        "and_inverse",
        "or_inverse",
        "sparsify",
        "game_values",
        "__version__",
    ]:
        assert hasattr(harsanyi, name), name
    assert callable(harsanyi.sparsify)


def test_sparsify_on_an_array_returns_the_documented_fields():
    v = np.random.default_rng(0).normal(size=(3, 2**5))
    result = harsanyi.sparsify(v, qthres=0.02, lr=None, iters=50, solver="sgd")
    for field in ["I_and", "I_or", "p", "q", "loss"]:
        assert getattr(result, field).shape[0] == 3
    assert result.I_and.shape == (3, 32) and result.solver == "sgd"
    rebuilt = harsanyi.and_inverse(result.I_and) + harsanyi.or_inverse(result.I_or)
    np.testing.assert_allclose(rebuilt, v + result.q, atol=1e-9)


def test_transforms_accept_tensors_and_arrays_alike():
    v = np.random.default_rng(1).normal(size=(2, 16))
    np.testing.assert_allclose(
        harsanyi.and_transform(torch.from_numpy(v)).numpy(), harsanyi.and_transform(v)
    )


def test_hdf5_dataset_names_and_attributes(tmp_path):
    import h5py

    n, samples = 3, 2
    rng = np.random.default_rng(2)
    arrays = {k: rng.normal(size=(samples, 2**n)) for k in ["v", "I_and", "I_or", "p", "q"]}
    results = InteractionResults(
        **arrays,
        sample_ids=np.arange(samples),
        labels=np.zeros(samples, dtype=np.int64),
        split=np.array(["train", "test"]),
        n=n,
        meta={},
    )
    path = write_results(tmp_path / "r.h5", results)
    with h5py.File(path, "r") as h5:
        for name in ["v", "I_and", "I_or", "p", "q"]:
            assert h5[name].shape == (samples, 2**n)
        assert h5.attrs["n"] == n and h5.attrs["layout_version"] == 2
    np.testing.assert_array_equal(read_results(path).I_or, arrays["I_or"])
