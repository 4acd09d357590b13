"""Tests of the training loop: schedule, label noise, determinism, resume, metrics, errors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harsanyi.data import flip_labels, flip_order
from harsanyi.train import (
    TrainConfig,
    checkpoint_schedule,
    default_state_dir,
    learning_rate,
    train_run,
)

NUM_CLASSES = 3
FEATURES = 6


@dataclass
class TensorSplit:
    x: torch.Tensor
    y: torch.Tensor
    ids: np.ndarray
    attention_mask: torch.Tensor | None = None


def blobs(n: int, seed: int, first_id: int = 0) -> TensorSplit:
    """Three well separated Gaussian blobs: a planted, learnable problem."""
    g = torch.Generator().manual_seed(seed)
    centres = 3.0 * torch.eye(NUM_CLASSES, FEATURES)
    y = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    x = centres[y] + 0.7 * torch.randn(n, FEATURES, generator=g)
    return TensorSplit(x, y, np.arange(first_id, first_id + n))


TRAIN = blobs(160, seed=1)
TEST = blobs(80, seed=2, first_id=1000)


def mlp(init_seed: int = 7) -> nn.Module:
    torch.manual_seed(init_seed)
    # Dropout makes training depend on the global torch RNG, which resume must restore.
    return nn.Sequential(
        nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, NUM_CLASSES)
    )


def config(**overrides) -> TrainConfig:
    settings = dict(epochs=5, batch_size=16, lr=0.05, checkpoint_epochs=[0, 1, 2, 3, 5], seed=3)
    settings.update(overrides)
    return TrainConfig(**settings)


def run(out_dir: Path, cfg: TrainConfig, model: nn.Module | None = None, **kwargs) -> pd.DataFrame:
    return train_run(
        model if model is not None else mlp(),
        TRAIN,
        TEST,
        NUM_CLASSES,
        cfg,
        out_dir,
        meta={"arch": "mlp", "hidden": 16},
        progress=False,
        **kwargs,
    )


def checkpoint(out_dir: Path, epoch: int) -> dict:
    return torch.load(out_dir / "checkpoints" / f"epoch_{epoch:04d}.pt", weights_only=True)


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ---------------------------------------------------------------- checkpoint schedule


@pytest.mark.parametrize(
    "epochs, dense_until, dense_every, sparse_every",
    [
        (100, 10, 1, 10),
        (100, 12, 3, 25),
        (7, 20, 2, 5),
        (1, 0, 1, 1),
        (64, 16, 2, 8),
        (50, 0, 4, 7),
    ],
)
def test_checkpoint_schedule_matches_definition(epochs, dense_until, dense_every, sparse_every):
    expected = [
        e
        for e in range(epochs + 1)
        if e in (0, epochs)
        or (e <= dense_until and e % dense_every == 0)
        or (e > dense_until and e % sparse_every == 0)
    ]
    assert checkpoint_schedule(epochs, dense_until, dense_every, sparse_every) == expected


def test_checkpoint_schedule_example_and_errors():
    assert checkpoint_schedule(100, 10, 2, 25) == [0, 2, 4, 6, 8, 10, 25, 50, 75, 100]
    assert checkpoint_schedule(33, 4, 1, 10) == [0, 1, 2, 3, 4, 10, 20, 30, 33]
    with pytest.raises(ValueError, match="epochs"):
        checkpoint_schedule(0, 5)
    with pytest.raises(ValueError, match="dense_every"):
        checkpoint_schedule(10, 5, dense_every=0)
    with pytest.raises(ValueError, match="sparse_every"):
        checkpoint_schedule(10, 5, sparse_every=0)


# ---------------------------------------------------------------- label noise


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.15, 0.37, 0.5])
def test_flip_labels_flips_exact_fraction_to_wrong_classes(fraction):
    y = torch.randint(0, 5, (1001,), generator=torch.Generator().manual_seed(0))
    original = y.clone()
    noisy, flipped = flip_labels(y, 5, fraction, seed=11)
    assert torch.equal(y, original), "input labels must not be modified"
    assert len(flipped) == round(fraction * 1001) == len(np.unique(flipped))
    changed = np.flatnonzero((noisy != y).numpy())
    np.testing.assert_array_equal(changed, np.sort(flipped))
    assert ((noisy >= 0) & (noisy < 5)).all()


def test_flip_labels_is_seeded():
    y = torch.arange(400) % 4
    a, flipped_a = flip_labels(y, 4, 0.25, seed=1)
    b, flipped_b = flip_labels(y, 4, 0.25, seed=1)
    c, flipped_c = flip_labels(y, 4, 0.25, seed=2)
    assert torch.equal(a, b)
    np.testing.assert_array_equal(flipped_a, flipped_b)
    assert not np.array_equal(flipped_a, flipped_c)


def test_flip_labels_wrong_class_is_uniform():
    y = torch.zeros(30000, dtype=torch.long)
    noisy, flipped = flip_labels(y, 4, 0.5, seed=5)
    counts = np.bincount(noisy[flipped].numpy(), minlength=4)
    assert counts[0] == 0
    # 15000 draws over 3 classes: sd ≈ 58, so 400 is about 7 sd.
    assert np.all(np.abs(counts[1:] - 5000) < 400), counts


def test_flip_labels_rejects_bad_input():
    y = torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="label_noise"):
        flip_labels(y, 3, 1.0, seed=0)
    with pytest.raises(ValueError, match="num_classes"):
        flip_labels(y, 1, 0.1, seed=0)
    with pytest.raises(ValueError, match="num_classes"):
        flip_labels(y, 2, 0.1, seed=0)


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "overrides, key",
    [
        (dict(epochs=0, checkpoint_epochs=[0]), "epochs"),
        (dict(checkpoint_epochs=[0, 6]), "checkpoint_epochs"),
        (dict(checkpoint_epochs=[-1, 2]), "checkpoint_epochs"),
        (dict(checkpoint_epochs=[0, 3, 2]), "checkpoint_epochs"),
        (dict(checkpoint_epochs=[0, 2, 2]), "checkpoint_epochs"),
        (dict(label_noise=1.0), "label_noise"),
        (dict(label_noise=-0.1), "label_noise"),
        (dict(batch_size=0), "batch_size"),
        (dict(lr=0.0), "lr"),
        (dict(momentum=1.0), "momentum"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(lr_schedule="linear"), "lr_schedule"),
        (dict(seed=-1), "seed"),
    ],
)
def test_bad_config_names_the_key(overrides, key):
    with pytest.raises(ValueError, match=key):
        config(**overrides)


def test_default_checkpoints_every_epoch_and_lr_schedules():
    assert TrainConfig(epochs=3).checkpoint_epochs == [0, 1, 2, 3]
    cosine = TrainConfig(epochs=10, lr=0.2, lr_schedule="cosine")
    assert learning_rate(cosine, 1) == pytest.approx(0.2)
    assert learning_rate(cosine, 6) == pytest.approx(0.1)
    assert 0 < learning_rate(cosine, 10) < 0.01
    step = TrainConfig(epochs=10, lr=1.0, lr_schedule="step", lr_step=4, lr_gamma=0.5)
    assert [learning_rate(step, e) for e in (1, 4, 5, 8, 9)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert learning_rate(TrainConfig(epochs=10, lr=0.3), 7) == 0.3


def test_bad_splits_and_state_dir_are_rejected(tmp_path):
    bad_labels = TensorSplit(TRAIN.x, TRAIN.y + 5, TRAIN.ids)
    with pytest.raises(ValueError, match="train split"):
        train_run(mlp(), bad_labels, TEST, NUM_CLASSES, config(), tmp_path / "a", progress=False)
    short_ids = TensorSplit(TEST.x, TEST.y, TEST.ids[:-1])
    with pytest.raises(ValueError, match="test split"):
        train_run(mlp(), TRAIN, short_ids, NUM_CLASSES, config(), tmp_path / "b", progress=False)
    with pytest.raises(ValueError, match="state_dir"):
        run(tmp_path / "c", config(), state_dir=tmp_path / "c" / "state")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


# ---------------------------------------------------------------- outputs and metrics


def brute_force_metrics(model: nn.Module, split: TensorSplit, labels: torch.Tensor):
    model.eval()
    with torch.no_grad():
        logits = model(split.x)
    loss = F.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(1) == labels).double().mean().item(), logits.argmax(1)


def test_outputs_and_metrics_match_brute_force(tmp_path):
    cfg = config(label_noise=0.2, epochs=4, checkpoint_epochs=[0, 2, 4])
    metrics = run(tmp_path / "run", cfg)
    out = tmp_path / "run"

    table = pd.read_csv(out / "metrics.tsv", sep="\t")
    expected_columns = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "loss_gap"]
    assert list(table.columns) == expected_columns + ["train_clean_acc", "flipped_fit"]
    assert table["epoch"].tolist() == [0, 1, 2, 3, 4]
    pd.testing.assert_frame_equal(table, metrics, check_dtype=False)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch_0000.pt",
        "epoch_0002.pt",
        "epoch_0004.pt",
    ]
    assert not default_state_dir(out).exists(), "resume state must be deleted on success"

    noisy, flipped = flip_labels(TRAIN.y, NUM_CLASSES, 0.2, seed=cfg.seed)
    flipped_table = pd.read_csv(out / "flipped.tsv", sep="\t")
    assert list(flipped_table.columns) == ["sample_id", "original_label", "given_label"]
    np.testing.assert_array_equal(flipped_table["sample_id"], TRAIN.ids[flipped])
    np.testing.assert_array_equal(flipped_table["original_label"], TRAIN.y[flipped])
    np.testing.assert_array_equal(flipped_table["given_label"], noisy[flipped])
    assert (flipped_table["original_label"] != flipped_table["given_label"]).all()

    model = mlp()
    for epoch in cfg.checkpoint_epochs:
        saved = checkpoint(out, epoch)
        assert saved["epoch"] == epoch and saved["meta"] == {"arch": "mlp", "hidden": 16}
        assert saved["config"]["label_noise"] == 0.2
        model.load_state_dict(saved["state_dict"])
        row = table.set_index("epoch").loc[epoch]
        train_loss, train_acc, prediction = brute_force_metrics(model, TRAIN, noisy)
        test_loss, test_acc, _ = brute_force_metrics(model, TEST, TEST.y)
        clean_acc = (prediction == TRAIN.y).double().mean().item()
        fit = (prediction[flipped] == noisy[flipped]).double().mean().item()
        assert row["train_loss"] == pytest.approx(train_loss, rel=1e-5)
        assert row["test_loss"] == pytest.approx(test_loss, rel=1e-5)
        assert row["loss_gap"] == pytest.approx(test_loss - train_loss, rel=1e-4, abs=1e-6)
        assert row["train_acc"] == pytest.approx(train_acc)
        assert row["test_acc"] == pytest.approx(test_acc)
        assert row["train_clean_acc"] == pytest.approx(clean_acc)
        assert row["flipped_fit"] == pytest.approx(fit)
    assert table["test_acc"].iloc[-1] > 0.9, "the planted blobs must be learned"


def test_no_noise_gives_empty_flipped_table(tmp_path):
    metrics = run(tmp_path / "run", config(epochs=1, checkpoint_epochs=[1]))
    flipped = pd.read_csv(tmp_path / "run" / "flipped.tsv", sep="\t")
    assert list(flipped.columns) == ["sample_id", "original_label", "given_label"]
    assert len(flipped) == 0
    assert "train_clean_acc" not in metrics.columns
    assert metrics["epoch"].tolist() == [0, 1]


def test_text_splits_pass_the_attention_mask(tmp_path):
    class MaskedBag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(10, 8)
            self.head = nn.Linear(8, 2)

        def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            weights = attention_mask.unsqueeze(-1).float()
            pooled = (self.embed(tokens) * weights).sum(1) / weights.sum(1)
            return self.head(pooled)

    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 10, (64, 5), generator=g)
    mask = torch.ones(64, 5, dtype=torch.long)
    mask[:, 3:] = 0
    labels = (tokens[:, 0] >= 5).long()
    split = TensorSplit(tokens, labels, np.arange(64), mask)
    torch.manual_seed(0)
    metrics = train_run(
        MaskedBag(),
        split,
        split,
        2,
        config(epochs=2, checkpoint_epochs=[2]),
        tmp_path / "run",
        progress=False,
    )
    assert len(metrics) == 3


# ---------------------------------------------------------------- determinism and resume


def test_same_seed_same_weights_different_seed_different(tmp_path):
    run(tmp_path / "a", config())
    run(tmp_path / "b", config())
    run(tmp_path / "c", config(seed=4))
    for epoch in config().checkpoint_epochs:
        assert_same_weights(
            checkpoint(tmp_path / "a", epoch)["state_dict"],
            checkpoint(tmp_path / "b", epoch)["state_dict"],
        )
    a_tsv = (tmp_path / "a" / "metrics.tsv").read_bytes()
    assert a_tsv == (tmp_path / "b" / "metrics.tsv").read_bytes()
    for epoch in (1, 2, 3, 5):
        a, c = checkpoint(tmp_path / "a", epoch), checkpoint(tmp_path / "c", epoch)
        assert not torch.equal(a["state_dict"]["0.weight"], c["state_dict"]["0.weight"])


class Interrupt(KeyboardInterrupt):
    pass


def raise_after_epoch(k: int):
    def hook(epoch: int, row: dict) -> None:
        if epoch == k:
            raise Interrupt

    return hook


def raise_mid_epoch(model: nn.Module, after_calls: int) -> nn.Module:
    """Kill the run inside an epoch: the forward pass raises after `after_calls` training calls."""
    calls = 0

    def hook(module: nn.Module, inputs) -> None:
        nonlocal calls
        if module.training:
            calls += 1
            if calls > after_calls:
                raise Interrupt

    model.register_forward_pre_hook(hook)
    return model


def assert_runs_identical(a: Path, b: Path, epochs: list[int]) -> None:
    assert (a / "metrics.tsv").read_bytes() == (b / "metrics.tsv").read_bytes()
    assert (a / "flipped.tsv").read_bytes() == (b / "flipped.tsv").read_bytes()
    for epoch in epochs:
        name = f"checkpoints/epoch_{epoch:04d}.pt"
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
        ca, cb = checkpoint(a, epoch), checkpoint(b, epoch)
        assert_same_weights(ca["state_dict"], cb["state_dict"])
        assert ca["metrics"] == cb["metrics"] and ca["epoch"] == cb["epoch"] == epoch


@pytest.mark.parametrize(
    "overrides",
    [dict(label_noise=0.1), dict(optimizer="adam", lr=0.01, lr_schedule="cosine")],
    ids=["sgd-noise", "adam-cosine"],
)
@pytest.mark.parametrize("where", ["after-epoch-2", "mid-epoch-3", "after-epoch-0"])
def test_interrupted_run_resumes_to_identical_result(tmp_path, overrides, where):
    cfg = config(**overrides)
    reference = tmp_path / "reference"
    run(reference, cfg)

    out = tmp_path / "resumed" / "run"
    batches_per_epoch = -(-len(TRAIN.y) // cfg.batch_size)
    with pytest.raises(Interrupt):
        if where == "after-epoch-2":
            run(out, cfg, on_epoch_end=raise_after_epoch(2))
        elif where == "after-epoch-0":
            run(out, cfg, on_epoch_end=raise_after_epoch(0))
        else:
            run(out, cfg, model=raise_mid_epoch(mlp(), after_calls=2 * batches_per_epoch + 4))
    finished = {"after-epoch-2": 2, "mid-epoch-3": 2, "after-epoch-0": 0}[where]
    assert (default_state_dir(out) / "resume.pt").exists()
    assert not (out / "metrics.tsv").exists()

    # Snakemake deletes declared outputs before it reruns a job.
    for path in (out / "checkpoints").iterdir():
        path.unlink()

    epochs_trained: list[int] = []
    run(out, cfg, on_epoch_end=lambda epoch, row: epochs_trained.append(epoch))
    assert epochs_trained == list(range(finished + 1, cfg.epochs + 1)), "it must resume"
    assert_runs_identical(reference, out, cfg.checkpoint_epochs)
    assert not default_state_dir(out).exists()


def test_resume_state_of_another_config_is_ignored(tmp_path, caplog):
    state_dir = tmp_path / "state"
    out = tmp_path / "run"
    with pytest.raises(Interrupt):
        run(out, config(lr=0.05), state_dir=state_dir, on_epoch_end=raise_after_epoch(2))
    assert (state_dir / "resume.pt").exists()

    epochs_trained: list[int] = []
    with caplog.at_level(logging.WARNING, logger="harsanyi.train"):
        run(
            out,
            config(lr=0.02),
            state_dir=state_dir,
            on_epoch_end=lambda epoch, row: epochs_trained.append(epoch),
        )
    assert "different configuration" in caplog.text
    assert epochs_trained == [0, 1, 2, 3, 4, 5]
    run(tmp_path / "reference", config(lr=0.02))
    assert_runs_identical(tmp_path / "reference", out, config().checkpoint_epochs)
    assert not state_dir.exists()


def test_label_flips_are_nested_across_noise_levels():
    y = torch.arange(1000) % 7
    low, low_idx = flip_labels(y, 7, 0.1, seed=3)
    high, high_idx = flip_labels(y, 7, 0.3, seed=3)
    assert set(low_idx) < set(high_idx)
    assert torch.equal(low[low_idx], high[low_idx])  # same wrong class at both levels
    order = flip_order(1000, 3)
    assert set(high_idx) == set(order[:300].tolist())
    assert not set(order[500:].tolist()) & set(flip_labels(y, 7, 0.5, seed=3)[1].tolist())


def test_a_finished_training_leaves_no_resume_leftover_of_a_killed_write(tmp_path):
    from harsanyi.train import RESUME_FILE, _delete_resume_state

    state = tmp_path / ".resume" / "digits-lenet-s0-0123456789ab"
    (state / "checkpoints").mkdir(parents=True)
    (state / RESUME_FILE).write_bytes(b"state")
    (state / "checkpoints" / "epoch_0001.pt").write_bytes(b"c")
    (state / ".resume.tmp-0a1b2c3d.pt").write_bytes(b"half")  # a write killed midway
    (state / "notes.txt").write_text("the caller's")
    _delete_resume_state(state)
    assert sorted(p.name for p in state.iterdir()) == ["notes.txt"]
    (state / "notes.txt").unlink()
    (state / ".resume.tmp-0a1b2c3d.pt").write_bytes(b"half")
    _delete_resume_state(state)
    assert not state.exists()
