"""Results files (HDF5 layouts 1 and 2) and the run store."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import harsanyi
from harsanyi.io import atomic_path, atomic_write
from harsanyi.store import (
    LAYOUT_VERSION,
    InteractionResults,
    ResultsFileError,
    catalog,
    checkpoint_identity,
    read_results,
    read_sample,
    run_dirname,
    run_hash,
    run_label,
    verify_results,
    verify_store,
    write_manifest,
    write_results,
)

VECTORS = ("v", "I_and", "I_or", "p", "q")


def make_results(n: int = 4, samples: int = 7, positions: bool = True, seed: int = 0):
    rng = np.random.default_rng(seed)
    width = 2**n
    return InteractionResults(
        **{name: rng.normal(size=(samples, width)) for name in VECTORS},
        sample_ids=rng.permutation(1000)[:samples],
        labels=rng.integers(0, 10, samples),
        split=np.array(["train", "test", "flipped"] * samples)[:samples],
        n=n,
        meta={
            "players": {"kind": "pixels", "positions": [[0, 1], [2, 3]]},
            "baseline": {"kind": "zero"},
            "output": "log_odds",
            "solver": {"name": "lp", "settings": {"qthres": 0.02}},
            "model": {"arch": "lenet", "run": "r1", "epoch": 3},
            "extra": {"note": "ünïcode"},
        },
        player_positions=rng.integers(0, 50, (samples, n)) if positions else None,
    )


def assert_same_rows(read: InteractionResults, expected: InteractionResults, rows) -> None:
    for name in (*VECTORS, "sample_ids", "labels", "player_positions"):
        np.testing.assert_array_equal(
            getattr(read, name), np.asarray(getattr(expected, name))[rows]
        )
    assert read.split.tolist() == np.asarray(expected.split)[rows].tolist()


# --------------------------------------------------------------------------- round trip


def test_round_trip_all_datasets_and_meta(tmp_path):
    results = make_results()
    path = write_results(tmp_path / "sub" / "epoch_0003.h5", results)
    assert path == tmp_path / "sub" / "epoch_0003.h5"
    read = read_results(path)
    assert read.n == results.n
    assert_same_rows(read, results, slice(None))
    for name in VECTORS:
        assert getattr(read, name).dtype == np.float64
    assert read.sample_ids.dtype == np.int64 and read.labels.dtype == np.int64
    for key, value in results.meta.items():
        assert read.meta[key] == value
    assert read.meta["library_version"] == harsanyi.__version__
    created = datetime.fromisoformat(read.meta["created"])
    assert created.tzinfo is not None and created.utcoffset().total_seconds() == 0
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 3600
    with h5py.File(path, "r") as h5:
        assert h5.attrs["layout_version"] == LAYOUT_VERSION
        assert json.loads(h5.attrs["solver"]) == results.meta["solver"]


def test_round_trip_without_positions_and_missing_meta(tmp_path):
    results = make_results(positions=False)
    results.meta = {"output": "log_odds"}
    read = read_results(write_results(tmp_path / "r.h5", results))
    assert read.player_positions is None
    assert read.meta["output"] == "log_odds" and read.meta["model"] is None


@pytest.mark.parametrize("split", ["train", "test", "flipped"])
def test_split_filter_and_subset(tmp_path, split):
    results = make_results(samples=8)
    path = write_results(tmp_path / "r.h5", results)
    rows = np.flatnonzero(results.split == split)
    assert_same_rows(read_results(path, split=split), results, rows)
    assert_same_rows(results.subset(split), results, rows)


def test_split_filter_with_no_matching_sample(tmp_path):
    results = make_results(samples=2)  # train, test
    read = read_results(write_results(tmp_path / "r.h5", results), split="flipped")
    assert read.v.shape == (0, 16) and read.split.shape == (0,)


def test_unknown_split_name_is_rejected(tmp_path):
    path = write_results(tmp_path / "r.h5", make_results())
    with pytest.raises(ValueError, match="valid"):
        read_results(path, split="valid")


def test_read_sample_matches_each_row(tmp_path):
    results = make_results()
    path = write_results(tmp_path / "r.h5", results)
    for index in (0, 3, 6, -1):
        sample = read_sample(path, index)
        for name in VECTORS:
            np.testing.assert_array_equal(sample[name], getattr(results, name)[index])
        assert int(sample["sample_id"]) == results.sample_ids[index]
        assert int(sample["label"]) == results.labels[index]
        assert str(sample["split"]) == results.split[index]
        np.testing.assert_array_equal(sample["player_positions"], results.player_positions[index])
    with pytest.raises(IndexError, match="r.h5"):
        read_sample(path, 7)


def test_chunking_and_compression_are_set(tmp_path):
    results = make_results(n=5)
    path = write_results(tmp_path / "r.h5", results)
    with h5py.File(path, "r") as h5:
        for name in VECTORS:
            assert h5[name].chunks == (1, 32), name
            assert h5[name].compression == "gzip", name
            assert h5[name].shuffle, name


def test_empty_sample_set_round_trips(tmp_path):
    results = make_results(samples=0)
    read = read_results(write_results(tmp_path / "r.h5", results))
    assert read.v.shape == (0, 16) and read.n_samples == 0


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: setattr(r, "v", r.v[:, :8]), "v must have shape"),
        (lambda r: setattr(r, "q", r.q[:5]), "q has 5 samples"),
        (lambda r: setattr(r, "labels", r.labels[:3]), "labels"),
        (lambda r: setattr(r, "sample_ids", r.sample_ids.astype(float)), "sample_ids"),
        (lambda r: setattr(r, "split", np.array(["train"] * 6 + ["valid"])), "valid"),
        (lambda r: r.v.__setitem__((2, 5), np.nan), "NaN in samples \\[2\\]"),
        (lambda r: setattr(r, "player_positions", r.player_positions[:, :2]), "player_pos"),
        (lambda r: r.meta.__setitem__("colour", "red"), "colour"),
        (lambda r: r.meta.__setitem__("extra", {"f": object()}), "meta\\['extra'\\]\\['f'\\]"),
        (lambda r: setattr(r, "n", 3), "2\\^n = 8"),
    ],
)
def test_bad_input_is_rejected_before_writing(tmp_path, change, message):
    results = make_results()
    change(results)
    with pytest.raises((ValueError, TypeError), match=message):
        write_results(tmp_path / "r.h5", results)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_leaves_nothing_when_writer_raises(tmp_path):
    def failing_writer(temp: Path) -> None:
        temp.write_text("half written")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(tmp_path / "out.txt", failing_writer)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_keeps_old_file_when_writer_raises(tmp_path):
    target = tmp_path / "r.h5"
    write_results(target, make_results(seed=1))
    before = target.read_bytes()
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        assert temp.parent == tmp_path and temp.suffix == ".h5" and not temp.exists()
        temp.write_bytes(b"partial")
        raise RuntimeError("killed")
    assert target.read_bytes() == before
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_replaces_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write(target, lambda temp: temp.write_text("new"))
    assert target.read_text() == "new"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_without_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="out.txt"):
        atomic_write(tmp_path / "out.txt", lambda temp: None)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- verification


@pytest.fixture
def good_file(tmp_path) -> Path:
    return write_results(tmp_path / "good.h5", make_results(n=6, samples=20))


def check_rejected(path: Path, *fragments: str) -> None:
    for action in (verify_results, read_results, lambda p: read_sample(p, 0)):
        with pytest.raises(ResultsFileError) as info:
            action(path)
        assert str(path) in str(info.value)
        assert info.value.path == path
        for fragment in fragments:
            assert fragment in str(info.value)


def test_verify_accepts_a_good_file(good_file):
    verify_results(good_file)


@pytest.mark.parametrize("fraction", [0.95, 0.5, 0.05])
def test_truncated_file(good_file, fraction):
    data = good_file.read_bytes()
    bad = good_file.with_name("truncated.h5")
    bad.write_bytes(data[: int(len(data) * fraction)])
    check_rejected(bad)


def test_random_bytes_file(tmp_path):
    bad = tmp_path / "random.h5"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    check_rejected(bad, "HDF5")


def test_missing_file(tmp_path):
    check_rejected(tmp_path / "absent.h5", "no such file")


def with_face(results: InteractionResults, seed: int = 1) -> InteractionResults:
    rng = np.random.default_rng(seed)
    shape = results.v.shape
    results.face = {
        end: {
            **{name: rng.normal(size=shape) for name in ("I_and", "I_or", "p", "q")},
            **{
                name: rng.normal(size=shape[0]) for name in ("l1", "weighted_order", "bound", "gap")
            },
        }
        for end in ("low", "high")
    }
    return results


def test_face_ends_round_trip_subset_and_at_end(tmp_path):
    results = with_face(make_results())
    path = write_results(tmp_path / "face.h5", results)
    read = read_results(path)
    for end in ("low", "high"):
        for name, data in results.face[end].items():
            np.testing.assert_array_equal(read.face[end][name], data)
    high = read.at_end("high")
    assert high.decomposition == "high" and high.face is None
    np.testing.assert_array_equal(high.I_and, results.face["high"]["I_and"])
    np.testing.assert_array_equal(high.v, results.v)
    assert read.at_end("canonical") is read
    rows = read.split.astype(str) == "test"
    test = read_results(path, split="test")
    np.testing.assert_array_equal(test.face["low"]["gap"], results.face["low"]["gap"][rows])
    np.testing.assert_array_equal(read.subset("test").at_end("low").I_or, test.at_end("low").I_or)
    verify_results(path)
    with pytest.raises(ValueError, match="decomposition must be one of"):
        read.at_end("middle")


def test_version_1_files_without_a_face_are_still_read(tmp_path):
    path = write_results(tmp_path / "old.h5", make_results())
    with h5py.File(path, "r+") as h5:
        h5.attrs["layout_version"] = 1
    read = read_results(path)
    assert read.face is None and not read.has_face
    with pytest.raises(ValueError, match="no optimal face"):
        read.at_end("low")


def test_a_face_group_without_its_partner_is_rejected(tmp_path):
    path = write_results(tmp_path / "face.h5", with_face(make_results()))
    with h5py.File(path, "r+") as h5:
        del h5["face_high"]
    check_rejected(path, "face groups")
    bad = with_face(make_results())
    bad.face["low"]["I_and"] = bad.face["low"]["I_and"][:, :3]
    with pytest.raises(ValueError, match=r"face\['low'\]\['I_and'\]"):
        write_results(tmp_path / "bad.h5", bad)


def test_foreign_hdf5(tmp_path):
    bad = tmp_path / "foreign.h5"
    with h5py.File(bad, "w") as h5:
        h5["images"] = np.zeros((3, 4))
    check_rejected(bad, "layout_version")


def test_future_layout_version(good_file):
    with h5py.File(good_file, "r+") as h5:
        h5.attrs["layout_version"] = LAYOUT_VERSION + 1
    check_rejected(good_file, f"layout version {LAYOUT_VERSION + 1} found", f"{LAYOUT_VERSION}")


def test_missing_dataset(good_file):
    with h5py.File(good_file, "r+") as h5:
        del h5["I_or"]
    check_rejected(good_file, "I_or")


def test_wrong_shaped_dataset(good_file):
    with h5py.File(good_file, "r+") as h5:
        del h5["p"]
        h5["p"] = np.zeros((20, 32))
    check_rejected(good_file, "dataset p has shape (20, 32)")


def test_wrong_n_attribute(good_file):
    with h5py.File(good_file, "r+") as h5:
        h5.attrs["n"] = 5
    check_rejected(good_file, "n = 5")


def test_nan_in_v_is_found_by_verify(good_file):
    with h5py.File(good_file, "r+") as h5:
        h5["v"][13, 7] = np.nan
    with pytest.raises(ResultsFileError, match="NaN") as info:
        verify_results(good_file)
    assert str(good_file) in str(info.value) and "13" in str(info.value)


# --------------------------------------------------------------------------- run identity

SETTINGS = {"dataset": "digits", "arch": "lenet", "seed": 0, "label_noise": 0.15, "lr": 0.01}


def test_run_hash_is_sha256_of_canonical_json():
    canonical = '{"arch":"lenet","dataset":"digits","label_noise":0.15,"lr":0.01,"seed":0}'
    assert run_hash(SETTINGS) == hashlib.sha256(canonical.encode()).hexdigest()[:12]


def test_run_hash_stable_under_key_order():
    nested = {"train": {"epochs": 8, "opt": {"lr": 0.1, "momentum": 0.9}}, **SETTINGS}
    reordered = dict(reversed(list(nested.items())))
    reordered["train"] = {"opt": {"momentum": 0.9, "lr": 0.1}, "epochs": 8}
    assert list(reordered) != list(nested)
    assert run_hash(reordered) == run_hash(nested)
    assert run_hash({**SETTINGS, "seed": np.int64(0)}) == run_hash(SETTINGS)


@pytest.mark.parametrize(
    "other",
    [
        {**SETTINGS, "seed": 1},
        {**SETTINGS, "label_noise": 0.2},
        {**SETTINGS, "extra": None},
        {k: v for k, v in SETTINGS.items() if k != "lr"},
    ],
)
def test_run_hash_differs_for_different_settings(other):
    assert run_hash(other) != run_hash(SETTINGS)


def test_run_hash_rejects_unserialisable_settings():
    with pytest.raises(TypeError, match="settings\\['model'\\]"):
        run_hash({"model": object()})


def test_run_label_and_dirname():
    assert run_label(SETTINGS) == "digits-lenet-s0-noise0.15"
    assert run_label({**SETTINGS, "label_noise": 0}) == "digits-lenet-s0"
    assert run_label({"dataset": {"name": "fashion mnist", "size": 600}}) == "fashion_mnist"
    assert run_label({}) == "run"
    assert run_dirname(SETTINGS) == f"digits-lenet-s0-noise0.15-{run_hash(SETTINGS)}"


def test_write_manifest(tmp_path):
    run_dir = tmp_path / run_dirname(SETTINGS)
    path = write_manifest(run_dir, SETTINGS)
    manifest = json.loads(path.read_text())
    assert path == run_dir / "run.json"
    assert manifest["settings"] == SETTINGS
    assert manifest["hash"] == run_hash(SETTINGS)
    assert manifest["library_version"] == harsanyi.__version__
    assert datetime.fromisoformat(manifest["created"]).utcoffset().total_seconds() == 0
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]


def test_checkpoint_identity(tmp_path):
    checkpoint = tmp_path / "epoch_0002.pt"
    checkpoint.write_bytes(b"weights")
    identity = checkpoint_identity(checkpoint, arch="lenet", run="r", epoch=2, dataset="digits")
    assert identity["checkpoint"] == "epoch_0002.pt"
    assert identity["checkpoint_sha256"] == hashlib.sha256(b"weights").hexdigest()


# --------------------------------------------------------------------------- store


def make_run(root: Path, settings: dict, epochs: int) -> Path:
    run_dir = root / run_dirname(settings)
    write_manifest(run_dir, settings)
    (run_dir / "checkpoints").mkdir()
    for epoch in range(epochs):
        torch.save({"w": torch.ones(2) * epoch}, run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt")
        write_results(
            run_dir / "interactions" / f"epoch_{epoch:04d}.h5", make_results(n=3, samples=3)
        )
    (run_dir / "metrics.tsv").write_text("epoch\tloss\n0\t1.0\n")
    return run_dir


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "results"
    make_run(root, SETTINGS, epochs=3)
    make_run(root, {"dataset": "fashion", "arch": "resnet", "seed": 2}, epochs=1)
    return root


def test_catalog(store):
    table = catalog(store)
    assert len(table) == 2
    row = table.set_index("run").loc[run_dirname(SETTINGS)]
    assert row["label"] == "digits-lenet-s0-noise0.15"
    assert row["hash"] == run_hash(SETTINGS)
    assert (row["dataset"], row["arch"], row["seed"], row["label_noise"]) == (
        "digits",
        "lenet",
        0,
        0.15,
    )
    assert row["n_checkpoints"] == 3 and row["n_interaction_files"] == 3
    assert json.loads(row["settings"]) == SETTINGS
    other = table[table["arch"] == "resnet"].iloc[0]
    assert other["n_checkpoints"] == 1 and other["seed"] == 2


def test_catalog_skips_non_runs_and_empty_root(store, tmp_path):
    (store / "scratch").mkdir()
    assert len(catalog(store)) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert catalog(empty).empty and "n_checkpoints" in catalog(empty).columns
    with pytest.raises(FileNotFoundError, match="nowhere"):
        catalog(tmp_path / "nowhere")


def test_verify_store_clean(store):
    assert verify_store(store) == []


def test_verify_store_reports_each_problem_by_file(store):
    run_dir = store / run_dirname(SETTINGS)
    truncated = run_dir / "interactions" / "epoch_0001.h5"
    truncated.write_bytes(truncated.read_bytes()[:500])
    bad_checkpoint = run_dir / "checkpoints" / "epoch_0002.pt"
    bad_checkpoint.write_bytes(b"not a checkpoint")
    leftover = run_dir / "interactions" / ".epoch_0009.tmp-0123abcd.h5"
    leftover.write_bytes(b"")
    no_manifest = store / "orphan-000000000000"
    no_manifest.mkdir()
    other = next(p for p in store.iterdir() if "resnet" in p.name)
    manifest = json.loads((other / "run.json").read_text())
    manifest["settings"]["seed"] = 3
    (other / "run.json").write_text(json.dumps(manifest))
    broken = store / "broken-111111111111"
    broken.mkdir()
    (broken / "run.json").write_text("{not json")

    problems = verify_store(store)
    expected_files = [
        truncated,
        bad_checkpoint,
        leftover,
        no_manifest / "run.json",
        other / "run.json",
        broken / "run.json",
    ]
    for path in expected_files:
        assert any(problem.startswith(f"{path}: ") for problem in problems), path
    # the hand-edited run.json has two problems: hash and directory name no longer match
    assert len(problems) == len(expected_files) + 1


def test_verify_store_missing_root(tmp_path):
    problems = verify_store(tmp_path / "nowhere")
    assert len(problems) == 1 and "nowhere" in problems[0]


def test_file_locking_disabled_at_import():
    env = {k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"}
    code = "import os, harsanyi.store; print(os.environ['HDF5_USE_FILE_LOCKING'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "FALSE"


def test_certificate_round_trips_and_is_all_or_nothing(tmp_path):
    results = make_results(samples=5)
    results.l1 = np.linspace(1.0, 2.0, 5)
    results.lower_bound = results.l1 * 0.999
    results.gap = np.full(5, 0.001)
    results.gap[3] = np.nan
    results.certified = np.array([True, True, True, False, True])
    write_results(tmp_path / "c.h5", results)
    read = read_results(tmp_path / "c.h5")
    assert np.array_equal(read.certified, results.certified)
    assert np.allclose(read.lower_bound, results.lower_bound)
    assert np.isnan(read.gap[3]) and read.gap[0] == 0.001
    part = read.subset(str(read.split[3]))
    assert len(part.certified) == part.n_samples
    verify_results(tmp_path / "c.h5")
    results.gap = None
    with pytest.raises(ValueError, match="certificate needs all of"):
        write_results(tmp_path / "d.h5", results)
    old = make_results(samples=2)
    write_results(tmp_path / "old.h5", old)
    assert read_results(tmp_path / "old.h5").certified is None


def test_atomic_write_of_a_second_hard_link_leaves_no_temporary_file(tmp_path):
    source = tmp_path / "state.pt"
    source.write_bytes(b"weights")
    target = tmp_path / "epoch_0000.pt"
    os.link(source, target)  # the checkpoint already links the resume state
    atomic_write(target, lambda temp: os.link(source, temp))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0000.pt", "state.pt"]
