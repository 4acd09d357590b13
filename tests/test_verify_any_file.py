"""`store verify` survives any file: every problem named with its path, the whole store
checked, no hang on special files, results files checked against their place (issue #22)."""

from __future__ import annotations

import json
import os
import shutil

import h5py
import numpy as np
from test_store import SETTINGS, make_results, make_run

from harsanyi.io import settings_hash
from harsanyi.store import run_dirname, verify_store, write_manifest, write_results


def place_results(run_dir, epoch: int):
    """A results file where the workflow puts it, recording its run, epoch and extraction."""
    results = make_results(n=3, samples=3)
    settings = {"solver": "exact", "qthres": 0.02}
    xhash = settings_hash(settings)
    results.meta["model"] = {"run": run_dir.name, "epoch": epoch}
    results.meta["extra"] = {"extraction": settings}
    path = run_dir / "interactions" / f"x-{xhash}" / f"epoch_{epoch:04d}.h5"
    return write_results(path, results)


def test_malformed_files_are_each_one_problem_and_the_check_goes_on(tmp_path):
    root = tmp_path / "results"
    good = make_run(root, SETTINGS, epochs=1)
    other = make_run(root, {"dataset": "fashion", "arch": "resnet", "seed": 2}, epochs=1)
    huge = good / "huge.json"
    huge.write_text("1" * 5000)  # beyond Python's int-string conversion limit
    strings = other / "interactions" / "epoch_0000.h5"
    with h5py.File(strings, "r+") as h5:
        del h5["v"]
        h5["v"] = np.full((3, 8), b"x", dtype="S1")
    fifo = good / "pipe.json"
    os.mkfifo(fifo)
    crafted = make_run(root, {"dataset": "digits", "arch": "mlp", "seed": 5}, epochs=1)
    manifest = json.loads((crafted / "run.json").read_text())
    manifest["settings"]["checkpoint_epochs"] = ["zero", 1e999]
    (crafted / "run.json").write_text(json.dumps(manifest))
    outside = tmp_path / "elsewhere.json"
    outside.write_text("{}")
    (good / "linked.json").symlink_to(outside)

    problems = verify_store(root)  # returns: the FIFO is never opened
    for path, words in (
        (huge, "unreadable"),
        (strings, "dataset v holds"),
        (fifo, "not a regular file"),
        (crafted / "run.json", "checkpoint_epochs"),
        (good / "linked.json", "symbolic link out of the store"),
    ):
        found = [p for p in problems if p.startswith(f"{path}: ")]
        assert found and words in found[0], (path, problems)


def test_a_results_file_copied_or_renamed_is_named(tmp_path):
    root = tmp_path / "results"
    run_a = make_run(root, SETTINGS, epochs=1)
    run_b = make_run(root, {"dataset": "fashion", "arch": "resnet", "seed": 2}, epochs=1)
    for run_dir in (run_a, run_b):
        shutil.rmtree(run_dir / "interactions")
        place_results(run_dir, 0)
    assert verify_store(root) == []
    original = next((run_a / "interactions").glob("x-*/epoch_0000.h5"))
    copied = run_b / "interactions" / original.parent.name / "epoch_0000.h5"
    shutil.copyfile(original, copied)
    renamed = original.with_name("epoch_0007.h5")
    shutil.copyfile(original, renamed)
    moved = original.parent.with_name("x-ffffffffffff") / "epoch_0000.h5"
    moved.parent.mkdir()
    shutil.copyfile(original, moved)
    problems = verify_store(root)
    assert any(p.startswith(f"{copied}: ") and "run " in p for p in problems)
    assert any(p.startswith(f"{renamed}: ") and "epoch 0" in p for p in problems)
    assert any(p.startswith(f"{moved}: ") and "extraction settings" in p for p in problems)
    assert not any(p.startswith(f"{original}: ") for p in problems)


def test_a_manifest_that_breaks_the_hash_is_reported_not_raised(tmp_path):
    root = tmp_path / "results"
    run_dir = root / run_dirname(SETTINGS)
    write_manifest(run_dir, SETTINGS)
    (run_dir / "run.json").write_text('{"settings": {"seed": NaN}, "hash": 1}')
    problems = verify_store(root)
    assert problems and all(p.startswith(str(run_dir)) for p in problems)
