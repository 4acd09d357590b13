"""No code from a file in a shared store or data root ever runs.

Each test plants a crafted pickle whose payload would create a marker file if unpickled
with a full pickle; the file must be refused by name and the marker must not appear.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from harsanyi.cli import main
from harsanyi.data import load_dataset
from harsanyi.extraction import extract_checkpoint
from harsanyi.models import CheckpointError, build_model, read_checkpoint, save_checkpoint
from harsanyi.store import run_dirname, write_manifest

SETTINGS = {"dataset": "digits", "arch": "mlp", "seed": 0, "label_noise": 0.0}


class Payload:
    """Unpickling this calls exec, which writes `marker`: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def crafted_checkpoint(path: Path, marker: Path) -> Path:
    model = build_model("mlp", (30,), 2, seed=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"state_dict": model.state_dict(), "meta": {"arch": "mlp"}, "x": Payload(marker)}, path
    )
    return path


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "payload-ran"


def test_the_payload_would_run_under_a_full_pickle(tmp_path, marker):
    """Guards the other tests: the crafted file really executes code when fully unpickled."""
    path = crafted_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_read_checkpoint_refuses_a_crafted_file_by_name(tmp_path, marker):
    path = crafted_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match="evil.pt"):
        read_checkpoint(path)
    assert not marker.exists()


def test_store_verify_names_a_crafted_checkpoint_and_exits_1(tmp_path, marker, capsys):
    run_dir = tmp_path / "store" / "digits" / "runs" / run_dirname(SETTINGS)
    write_manifest(run_dir, SETTINGS)
    good = run_dir / "checkpoints" / "epoch_0000.pt"
    save_checkpoint(
        build_model("mlp", (30,), 2, seed=0), good, arch="mlp", input_shape=(30,), num_classes=2
    )
    evil = crafted_checkpoint(run_dir / "checkpoints" / "epoch_0001.pt", marker)
    assert main(["store", "verify", str(tmp_path / "store")]) == 1
    out = capsys.readouterr().out
    assert str(evil) in out and str(good) not in out
    assert not marker.exists()


def test_harsanyi_extract_refuses_a_crafted_checkpoint(tmp_path, marker):
    evil = crafted_checkpoint(tmp_path / "run" / "checkpoints" / "epoch_0001.pt", marker)
    with pytest.raises(CheckpointError, match="epoch_0001.pt"):
        extract_checkpoint(evil, "breast_cancer", tmp_path / "out.h5")
    assert not marker.exists()
    assert (
        main(["extract", str(evil), "--dataset", "breast_cancer", "--out", str(tmp_path / "o.h5")])
        != 0
    )
    assert not marker.exists()


def test_a_corrupt_checkpoint_is_named(tmp_path):
    path = tmp_path / "epoch_0002.pt"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="epoch_0002.pt"):
        read_checkpoint(path)


def test_a_crafted_cifar_batch_is_refused(tmp_path, marker):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": batch[b"data"], b"labels": [0] * 4}))
    names = {b"label_names": [f"c{k}".encode() for k in range(10)], b"payload": Payload(marker)}
    (folder / "batches.meta").write_bytes(pickle.dumps(names))
    with pytest.raises(ValueError, match=r"batches.meta.*refusing global builtins.exec"):
        load_dataset("cifar10", tmp_path)
    assert not marker.exists()
