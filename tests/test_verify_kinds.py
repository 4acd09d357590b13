"""`store verify` reads back every kind of file the workflow lays down, and atomic writes
fsync, clean up and name the path on a full disk."""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harsanyi import io as harsanyi_io  # noqa: E402
from harsanyi.io import save_torch, write_json, write_tsv  # noqa: E402
from harsanyi.joint import extract_joint, write_joint  # noqa: E402
from harsanyi.models import build_model, save_checkpoint  # noqa: E402
from harsanyi.store import run_dirname, verify_store, write_manifest  # noqa: E402

SETTINGS = {
    "dataset": "breast_cancer",
    "arch": "mlp",
    "seed": 0,
    "label_noise": 0.0,
    "training": {"epochs": 2},
    "checkpoint_epochs": [0, 1, 2],
}


def table(rows: int) -> pd.DataFrame:
    return pd.DataFrame({"epoch": range(rows), "train_loss": [0.5] * rows, "run": ["r"] * rows})


def figure(path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    fig.savefig(path)
    plt.close(fig)


@pytest.fixture
def store(tmp_path) -> Path:
    """A small store with one file of every kind the workflow writes."""
    root = tmp_path / "results"
    run_dir = root / "breast_cancer" / "runs" / run_dirname(SETTINGS)
    model = build_model("mlp", (30,), 2, seed=0)
    for epoch in SETTINGS["checkpoint_epochs"]:
        save_checkpoint(
            model,
            run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt",
            arch="mlp",
            input_shape=(30,),
            num_classes=2,
        )
    write_tsv(table(3), run_dir / "metrics.tsv")
    write_tsv(pd.DataFrame(columns=["sample_id"]), run_dir / "flipped.tsv")
    write_manifest(run_dir, SETTINGS)
    write_json({"selection_id": "sel-0", "train": {}}, root / "breast_cancer/samples/sel-0.json")
    analysis = run_dir / "analysis" / "x-000000000000" / "a-000000000000"
    write_tsv(table(5), analysis / "order_strength.tsv")
    write_json({"phase2_start": 1}, analysis / "two_phase.json")
    study = root / "studies" / "tiny-000000000000" / "a-000000000000"
    write_tsv(table(4), study / "two_phase.tsv")
    study.mkdir(parents=True, exist_ok=True)
    figure(study / "two_phase.png")
    figure(study / "two_phase.pdf")
    (root / "logs" / "train").mkdir(parents=True)
    (root / "logs" / "train" / "x.log").write_text("partial log line without newline")
    games = np.random.default_rng(0).normal(size=(2, 2, 8))  # a joint extraction, K = 2, n = 3
    write_joint(root / "breast_cancer/joint/j-000000000000/epoch_0002.h5", extract_joint(games))
    return root


def cut(path: Path, keep: int) -> Path:
    os.truncate(path, keep)
    return path


def test_a_complete_store_has_no_problems(store):
    assert verify_store(store) == []


def test_every_truncated_or_leftover_file_is_named(store):
    run_dir = next(store.glob("*/runs/*"))
    study = next(store.glob("studies/*/a-*"))
    analysis = next(run_dir.glob("analysis/x-*/a-*"))
    damaged = [
        cut(store / "breast_cancer/samples/sel-0.json", 10),
        cut(run_dir / "metrics.tsv", 30),
        cut(analysis / "order_strength.tsv", 25),
        cut(analysis / "two_phase.json", 5),
        cut(study / "two_phase.tsv", 40),
        cut(study / "two_phase.png", 100),
        cut(study / "two_phase.pdf", 200),
        cut(next(store.glob("*/joint/j-*/epoch_0002.h5")), 500),
    ]
    legacy_temp = run_dir / "checkpoints" / ".epoch_0003.pt.4242.tmp"
    legacy_temp.write_bytes(b"half a checkpoint")
    damaged.append(legacy_temp)
    resume = store / "breast_cancer" / "resume" / run_dir.name
    (resume / "checkpoints").mkdir(parents=True)
    damaged.append(resume)
    problems = verify_store(store)
    for path in damaged:
        assert sum(problem.startswith(f"{path}: ") for problem in problems) >= 1, (path, problems)
    assert not any("/logs/" in problem for problem in problems)


def test_a_table_cut_at_a_line_end_is_caught_by_its_row_count(store):
    run_dir = next(store.glob("*/runs/*"))
    metrics = run_dir / "metrics.tsv"
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(lines[:-1]))  # one epoch lost, still well-formed
    (run_dir / "checkpoints" / "epoch_0002.pt").unlink()
    problems = verify_store(store)
    assert any(p.startswith(f"{metrics}: 2 epochs, run.json says 2") for p in problems), problems
    assert any("missing checkpoints of epochs [2]" in p for p in problems), problems


def test_a_full_disk_names_the_path_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    def fail_like_torch(obj, f):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(torch, "save", fail_like_torch)
    monkeypatch.setattr(harsanyi_io.shutil, "disk_usage", lambda path: usage(100, 100, 0))
    target = tmp_path / "checkpoints" / "epoch_0003.pt"
    with pytest.raises(OSError, match=f"No space left on device while writing {target}") as info:
        save_torch({"x": 1}, target)
    assert info.value.errno == errno.ENOSPC
    assert list(target.parent.iterdir()) == []


def test_other_write_errors_keep_their_own_type(tmp_path, monkeypatch):
    def fail(obj, f):
        raise RuntimeError("not a disk problem")

    monkeypatch.setattr(torch, "save", fail)
    assert shutil.disk_usage(tmp_path).free > harsanyi_io.DISK_FULL_MARGIN
    with pytest.raises(RuntimeError, match="not a disk problem"):
        save_torch({"x": 1}, tmp_path / "a.pt")
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_fsync_the_file_and_its_directory(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def record(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    monkeypatch.setattr(harsanyi_io.os, "fsync", record)
    target = tmp_path / "run" / "epoch_0001.pt"
    save_torch({"x": torch.zeros(2)}, target)
    assert synced[-1] == target.parent
    assert synced[0].parent == target.parent and synced[0].name.startswith(".epoch_0001.tmp-")
