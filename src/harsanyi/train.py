"""Seeded, deterministic, resumable training of one run (dataset × architecture × seed × noise).

`train_run` writes into ``out_dir``:

- ``checkpoints/epoch_{e:04d}.pt`` for every scheduled epoch (0 = initialisation): a dict with
  ``state_dict`` (CPU tensors), ``epoch``, ``meta`` (given by the caller), ``config`` and
  ``metrics`` (that epoch's row);
- ``metrics.tsv``: one row per epoch including epoch 0, all metrics measured in eval mode
  with the weights at the end of the epoch;
- ``flipped.tsv``: the training samples whose labels were flipped (header only without noise).

After every epoch the full training state is saved atomically to a resume directory outside
``out_dir`` (Snakemake deletes declared outputs before rerunning a job), together with hard
links (or copies) of the checkpoints written so far.  A rerun with the same configuration
continues after the last finished epoch and produces the same weights and metrics as an
uninterrupted run; the resume state is deleted on success.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from harsanyi.data import flip_labels, load_configured
from harsanyi.io import atomic_write, is_temp_file, save_torch, write_tsv
from harsanyi.jobs import configure_gpu_numerics, device_name, pick_device
from harsanyi.models import build_model
from harsanyi.provenance import provenance, utc_now
from harsanyi.store import write_manifest

logger = logging.getLogger(__name__)

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "loss_gap"]
NOISE_COLUMNS = ["train_clean_acc", "flipped_fit"]
FLIPPED_COLUMNS = ["sample_id", "original_label", "given_label"]
RESUME_FILE = "resume.pt"


class Split(Protocol):
    """What `train_run` needs from a data split (``harsanyi.data.Split`` fits)."""

    x: torch.Tensor
    y: torch.Tensor
    ids: Any
    attention_mask: torch.Tensor | None


@dataclass
class TrainConfig:
    """Everything that determines a training run's result (hashed to validate resume state).

    ``checkpoint_epochs`` None means every epoch 0..epochs.  ``noise_seed`` None uses ``seed``.
    ``lr_schedule``: "constant", "cosine" (to 0 at the last epoch) or "step" (multiply by
    ``lr_gamma`` every ``lr_step`` epochs).
    ``mask_players``: the probability with which every input element that can be a player
    (a token position: attended, not a special token; a tabular feature) is replaced by its
    baseline in each training batch, drawn afresh every epoch, labels kept; 0 (default) trains
    on the data as it is.  It lets the baseline mean "absent" to the model (`Masking`).
    """

    epochs: int
    checkpoint_epochs: list[int] | None = None
    batch_size: int = 64
    eval_batch_size: int = 512
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr_schedule: Literal["constant", "cosine", "step"] = "constant"
    lr_step: int = 30
    lr_gamma: float = 0.1
    seed: int = 0
    label_noise: float = 0.0
    noise_seed: int | None = None
    mask_players: float = 0.0

    def __post_init__(self) -> None:
        _require_int("epochs", self.epochs, minimum=1)
        if self.checkpoint_epochs is None:
            self.checkpoint_epochs = list(range(self.epochs + 1))
        self.checkpoint_epochs = [int(e) for e in self.checkpoint_epochs]
        epochs = self.checkpoint_epochs
        if any(not 0 <= e <= self.epochs for e in epochs):
            raise ValueError(
                f"checkpoint_epochs must lie in [0, epochs={self.epochs}], got {epochs}"
            )
        if epochs != sorted(set(epochs)):
            raise ValueError(f"checkpoint_epochs must be strictly increasing, got {epochs}")
        _require_int("batch_size", self.batch_size, minimum=1)
        _require_int("eval_batch_size", self.eval_batch_size, minimum=1)
        _require_int("lr_step", self.lr_step, minimum=1)
        _require_int("seed", self.seed, minimum=0)
        if self.noise_seed is not None:
            _require_int("noise_seed", self.noise_seed, minimum=0)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not 0 < self.lr_gamma <= 1:
            raise ValueError(f"lr_gamma must lie in (0, 1], got {self.lr_gamma!r}")
        if not 0 <= self.label_noise < 1:
            raise ValueError(f"label_noise must lie in [0, 1), got {self.label_noise!r}")
        if isinstance(self.mask_players, bool) or not 0 <= self.mask_players < 1:
            raise ValueError(f"mask_players must lie in [0, 1), got {self.mask_players!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.lr_schedule not in ("constant", "cosine", "step"):
            raise ValueError(
                f"lr_schedule must be 'constant', 'cosine' or 'step', got {self.lr_schedule!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if not self.mask_players:
            del out["mask_players"]  # runs without masking keep their checkpoints' config
        return out


@dataclass
class Masking:
    """What `TrainConfig.mask_players` puts in place of a masked input element.

    `baseline`: one input of the split's shape holding the baseline (for text the [MASK]
    token id at every position, `Dataset.feature_mean`; for tabular data the training mean,
    which both tabular baselines of extraction are in the normalised input space).
    `protected`: token ids never masked (text: the special tokens).
    """

    baseline: torch.Tensor
    protected: tuple[int, ...] = ()

    def apply(
        self, x: torch.Tensor, attention_mask: torch.Tensor | None, drawn: torch.Tensor
    ) -> torch.Tensor:
        """`x` with the elements where `drawn` (bool, x's shape) is set replaced by the
        baseline, except padding and protected tokens."""
        replace = drawn.to(x.device)
        if attention_mask is not None:
            replace &= attention_mask.bool()
        if self.protected:
            protected = torch.as_tensor(self.protected, dtype=x.dtype, device=x.device)
            replace &= ~torch.isin(x, protected)
        return torch.where(replace, self.baseline.to(device=x.device, dtype=x.dtype), x)


def _require_int(key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")


def checkpoint_schedule(
    epochs: int, dense_until: int, dense_every: int = 1, sparse_every: int = 10
) -> list[int]:
    """Epoch 0, every ``dense_every`` epochs up to ``dense_until``, then the multiples of
    ``sparse_every`` beyond it, and always ``epochs`` itself; sorted, without duplicates."""
    _require_int("epochs", epochs, minimum=1)
    _require_int("dense_until", dense_until, minimum=0)
    _require_int("dense_every", dense_every, minimum=1)
    _require_int("sparse_every", sparse_every, minimum=1)
    dense_end = min(dense_until, epochs)
    chosen = {0, epochs, *range(dense_every, dense_end + 1, dense_every)}
    first_sparse = (dense_end // sparse_every + 1) * sparse_every
    chosen.update(range(first_sparse, epochs + 1, sparse_every))
    return sorted(chosen)


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Learning rate used for the updates of ``epoch`` (1-based)."""
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / config.epochs))
    if config.lr_schedule == "step":
        return config.lr * config.lr_gamma ** ((epoch - 1) // config.lr_step)
    return config.lr


def default_state_dir(out_dir: Path) -> Path:
    return out_dir.parent / ".resume" / out_dir.name


def train_run(
    model: nn.Module,
    train: Split,
    test: Split,
    num_classes: int,
    config: TrainConfig,
    out_dir: Path,
    *,
    meta: dict[str, Any] | None = None,
    state_dir: Path | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    log: logging.Logger = logger,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    masking: Masking | None = None,
) -> pd.DataFrame:
    """Train ``model`` (already initialised by the caller) and write checkpoints and metrics.

    ``on_epoch_end(epoch, row)`` is called after each epoch's state has been saved (also for
    epoch 0); raising from it interrupts the run like a kill would.  ``masking`` is required
    when ``config.mask_players`` > 0.  Returns the metrics table.
    """
    out_dir = Path(out_dir)
    state_dir = Path(state_dir) if state_dir is not None else default_state_dir(out_dir)
    if state_dir.resolve().is_relative_to(out_dir.resolve()):
        raise ValueError(f"state_dir {state_dir} must lie outside out_dir {out_dir}")
    _require_int("num_classes", num_classes, minimum=2)
    _check_split("train", train, num_classes)
    _check_split("test", test, num_classes)
    if config.mask_players > 0:
        if masking is None:
            raise ValueError(
                f"mask_players = {config.mask_players} needs a Masking (the baseline input)"
            )
        if tuple(masking.baseline.shape) != tuple(train.x.shape[1:]):
            raise ValueError(
                f"masking baseline of shape {tuple(masking.baseline.shape)} does not match "
                f"inputs of shape {tuple(train.x.shape[1:])}"
            )
    meta = dict(meta or {})
    device = pick_device() if device is None else torch.device(device)
    if device.type == "cuda":
        configure_gpu_numerics()  # TF32 off, deterministic cuDNN (pick_device does it too)
    log.info("training on %s", device_name(device))

    clean_y = train.y.detach().cpu().long()
    flipped = np.zeros(0, dtype=np.int64)
    train_y = clean_y
    if config.label_noise > 0:
        noise_seed = config.seed if config.noise_seed is None else config.noise_seed
        train_y, flipped = flip_labels(clean_y, num_classes, config.label_noise, noise_seed)
        log.info("flipped %d of %d training labels", len(flipped), len(train_y))
    flipped_table = pd.DataFrame(
        {
            "sample_id": _as_numpy(train.ids)[flipped],
            "original_label": clean_y.numpy()[flipped],
            "given_label": train_y.numpy()[flipped],
        },
        columns=FLIPPED_COLUMNS,
    )

    previous_determinism = torch.are_deterministic_algorithms_enabled()
    previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        rows = _train(
            model=model.to(device),
            train=_Tensors.of(train, train_y, device),
            test=_Tensors.of(test, test.y.detach().long(), device),
            clean_y=clean_y.to(device),
            flipped=torch.from_numpy(flipped).to(device),
            config=config,
            out_dir=out_dir,
            state_dir=state_dir,
            fingerprint=_fingerprint(config, meta, model, train, test, num_classes),
            meta=meta,
            progress=progress,
            log=log,
            on_epoch_end=on_epoch_end,
            masking=masking if config.mask_players > 0 else None,
        )
    finally:
        torch.use_deterministic_algorithms(previous_determinism, warn_only=previous_warn_only)

    columns = METRIC_COLUMNS + (NOISE_COLUMNS if config.label_noise > 0 else [])
    metrics = pd.DataFrame(rows, columns=columns)
    write_tsv(metrics, out_dir / "metrics.tsv")
    write_tsv(flipped_table, out_dir / "flipped.tsv")
    _delete_resume_state(state_dir)
    log.info("finished %d epochs; wrote %s", config.epochs, out_dir)
    return metrics


@dataclass
class _Tensors:
    x: torch.Tensor
    y: torch.Tensor
    attention_mask: torch.Tensor | None

    @classmethod
    def of(cls, split: Split, y: torch.Tensor, device: torch.device) -> _Tensors:
        mask = getattr(split, "attention_mask", None)
        return cls(split.x.to(device), y.to(device), None if mask is None else mask.to(device))

    def __len__(self) -> int:
        return len(self.y)

    def logits(self, model: nn.Module, index: torch.Tensor | slice) -> torch.Tensor:
        if self.attention_mask is None:
            out = model(self.x[index])
        else:
            out = model(self.x[index], self.attention_mask[index])
        return out.logits if hasattr(out, "logits") else out

    def masked(self, masked: _MaskedEpoch, index: torch.Tensor) -> _Tensors:
        """The samples `index` with this epoch's masking applied."""
        mask = None if self.attention_mask is None else self.attention_mask[index]
        return _Tensors(masked.apply(self.x[index], mask), self.y[index], mask)


class _MaskedEpoch:
    """One epoch's masking: its own generator, seeded by (seed, epoch), so a resumed run
    draws the same masks and the shuffling and weight initialisation are unaffected."""

    def __init__(self, masking: Masking, config: TrainConfig, epoch: int) -> None:
        self.masking = masking
        self.probability = config.mask_players
        seed = np.random.SeedSequence([config.seed, epoch, 0x6D61736B]).generate_state(1)[0]
        self.generator = torch.Generator().manual_seed(int(seed))

    def apply(self, x: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        drawn = torch.rand(x.shape, generator=self.generator) < self.probability
        return self.masking.apply(x, attention_mask, drawn)


def _train(
    *,
    model: nn.Module,
    train: _Tensors,
    test: _Tensors,
    clean_y: torch.Tensor,
    flipped: torch.Tensor,
    config: TrainConfig,
    out_dir: Path,
    state_dir: Path,
    fingerprint: str,
    meta: dict[str, Any],
    progress: bool,
    log: logging.Logger,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None,
    masking: Masking | None = None,
) -> list[dict[str, float]]:
    optimizer = _optimizer(model, config)
    shuffle = torch.Generator()
    schedule = set(config.checkpoint_epochs or [])
    for directory in (out_dir / "checkpoints", state_dir / "checkpoints"):
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob(".*"):  # from a run killed while writing
            # ".<name>.<pid>.tmp" is what versions before harsanyi.io left behind
            if is_temp_file(leftover) or leftover.suffix == ".tmp":
                leftover.unlink()

    state = _load_resume_state(state_dir, fingerprint, schedule, log)
    if state is None:
        _seed_everything(config.seed)
        shuffle.manual_seed(config.seed)
        rows = [_evaluate(model, train, test, clean_y, flipped, config, epoch=0)]
        _end_epoch(
            0,
            model,
            optimizer,
            shuffle,
            rows,
            config,
            meta,
            out_dir,
            state_dir,
            fingerprint,
            schedule,
        )
        if on_epoch_end is not None:
            on_epoch_end(0, rows[-1])
        start = 1
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        _set_rng_state(state["rng"])
        shuffle.set_state(state["shuffle"])
        rows = list(state["rows"])
        start = int(state["epoch"]) + 1
        for epoch in sorted(e for e in schedule if e < start):
            _link_or_copy(_checkpoint_path(state_dir, epoch), _checkpoint_path(out_dir, epoch))
        log.info("resuming from %s after epoch %d", state_dir, start - 1)

    epochs = tqdm(
        range(start, config.epochs + 1),
        disable=not progress,
        desc="epochs",
        initial=start - 1,
        total=config.epochs,
    )
    for epoch in epochs:
        lr = learning_rate(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        masked = None if masking is None else _MaskedEpoch(masking, config, epoch)
        _train_epoch(model, optimizer, train, config.batch_size, shuffle, masked)
        rows.append(_evaluate(model, train, test, clean_y, flipped, config, epoch=epoch))
        _end_epoch(
            epoch,
            model,
            optimizer,
            shuffle,
            rows,
            config,
            meta,
            out_dir,
            state_dir,
            fingerprint,
            schedule,
        )
        row = rows[-1]
        epochs.set_postfix(train_loss=f"{row['train_loss']:.4f}", test_acc=f"{row['test_acc']:.3f}")
        log.info(
            "epoch %d/%d lr %.3g: train loss %.4f acc %.4f, test loss %.4f acc %.4f",
            epoch,
            config.epochs,
            lr,
            row["train_loss"],
            row["train_acc"],
            row["test_loss"],
            row["test_acc"],
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    return rows


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: _Tensors,
    batch_size: int,
    shuffle: torch.Generator,
    masked: _MaskedEpoch | None = None,
) -> None:
    model.train()
    # The order is drawn on the CPU (the same order on every device, and the generator's state
    # is what resume files store); the data and the index live on the device, so an epoch
    # moves one index vector to the device and no batch passes through the host.
    order = torch.randperm(len(train), generator=shuffle).to(train.y.device)
    for batch in order.split(batch_size):
        if masked is None:
            logits = train.logits(model, batch)
        else:
            logits = train.masked(masked, batch).logits(model, slice(None))
        loss = F.cross_entropy(logits, train.y[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def _evaluate(
    model: nn.Module,
    train: _Tensors,
    test: _Tensors,
    clean_y: torch.Tensor,
    flipped: torch.Tensor,
    config: TrainConfig,
    epoch: int,
) -> dict[str, float]:
    model.eval()
    train_pred, train_loss = _predict(model, train, config.eval_batch_size)
    test_pred, test_loss = _predict(model, test, config.eval_batch_size)
    row: dict[str, float] = {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_acc": _mean(train_pred == train.y),
        "test_loss": test_loss,
        "test_acc": _mean(test_pred == test.y),
        "loss_gap": test_loss - train_loss,
    }
    if config.label_noise > 0:
        row["train_clean_acc"] = _mean(train_pred == clean_y)
        row["flipped_fit"] = _mean(train_pred[flipped] == train.y[flipped])
    return row


def _predict(model: nn.Module, split: _Tensors, batch_size: int) -> tuple[torch.Tensor, float]:
    """Predicted classes and the mean cross-entropy over the split.

    The loss is summed on the split's device in float64 (each batch's float32 sum widened
    exactly, as Python floats did before), so a GPU waits for no host transfer per batch."""
    predictions = []
    loss_sum = torch.zeros((), dtype=_SUM_DTYPE.get(split.y.device.type, torch.float64))
    loss_sum = loss_sum.to(split.y.device)
    for start in range(0, len(split), batch_size):
        index = slice(start, start + batch_size)
        logits = split.logits(model, index)
        loss_sum += F.cross_entropy(logits, split.y[index], reduction="sum").to(loss_sum.dtype)
        predictions.append(logits.argmax(dim=1))
    return torch.cat(predictions), loss_sum.item() / len(split)


_SUM_DTYPE = {"mps": torch.float32}  # MPS has no float64


def _mean(hits: torch.Tensor) -> float:
    return hits.double().mean().item() if hits.numel() else float("nan")


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )


def _end_epoch(
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    shuffle: torch.Generator,
    rows: list[dict[str, float]],
    config: TrainConfig,
    meta: dict[str, Any],
    out_dir: Path,
    state_dir: Path,
    fingerprint: str,
    schedule: set[int],
) -> None:
    """Write the epoch's checkpoint (if scheduled) and then the resume state."""
    if epoch in schedule:
        checkpoint = {
            "state_dict": _cpu_state(model),
            "epoch": epoch,
            "meta": meta,
            "config": config.to_dict(),
            "metrics": rows[-1],
        }
        path = _checkpoint_path(out_dir, epoch)
        save_torch(checkpoint, path)
        _link_or_copy(path, _checkpoint_path(state_dir, epoch))
    state = {
        "fingerprint": fingerprint,
        "epoch": epoch,
        "model": _cpu_state(model),
        "optimizer": optimizer.state_dict(),
        "rng": _rng_state(),
        "shuffle": shuffle.get_state(),
        "rows": rows,
    }
    save_torch(state, state_dir / RESUME_FILE)


def _load_resume_state(
    state_dir: Path, fingerprint: str, schedule: set[int], log: logging.Logger
) -> dict[str, Any] | None:
    path = state_dir / RESUME_FILE
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a corrupt file must not stop a fresh start
        log.warning("ignoring unreadable resume state %s: %s", path, error)
        return None
    if state.get("fingerprint") != fingerprint:
        log.warning("ignoring resume state %s: it belongs to a different configuration", path)
        return None
    missing = [
        e for e in schedule if e <= state["epoch"] and not _checkpoint_path(state_dir, e).exists()
    ]
    if missing:
        log.warning("ignoring resume state %s: checkpoints %s are missing", path, missing)
        return None
    return state


def _delete_resume_state(state_dir: Path) -> None:
    (state_dir / RESUME_FILE).unlink(missing_ok=True)
    shutil.rmtree(state_dir / "checkpoints", ignore_errors=True)
    for leftover in state_dir.glob(".*"):  # temporary files of a killed earlier write
        if is_temp_file(leftover) and leftover.is_file():
            leftover.unlink(missing_ok=True)
    try:
        state_dir.rmdir()
    except OSError:
        pass  # not empty: the caller keeps other things there


def _checkpoint_path(directory: Path, epoch: int) -> Path:
    return directory / "checkpoints" / f"epoch_{epoch:04d}.pt"


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), pos, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fingerprint(
    config: TrainConfig,
    meta: dict[str, Any],
    model: nn.Module,
    train: Split,
    test: Split,
    num_classes: int,
) -> str:
    """Hash of everything a resume state must agree with: config, meta, architecture, data."""
    description = {
        "config": config.to_dict(),
        "meta": meta,
        "num_classes": num_classes,
        "parameters": [(k, list(v.shape)) for k, v in model.state_dict().items()],
        "train": [list(train.x.shape), int(train.y.long().sum())],
        "test": [list(test.x.shape), int(test.y.long().sum())],
    }
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_split(name: str, split: Split, num_classes: int) -> None:
    for key in ("x", "y", "ids"):
        if getattr(split, key, None) is None:
            raise ValueError(f"{name} split has no {key!r}")
    n = len(split.y)
    if n == 0:
        raise ValueError(f"{name} split is empty")
    if len(split.x) != n or len(split.ids) != n:
        raise ValueError(
            f"{name} split: x, y and ids must have the same length, "
            f"got {len(split.x)}, {n}, {len(split.ids)}"
        )
    mask = getattr(split, "attention_mask", None)
    if mask is not None and len(mask) != n:
        raise ValueError(f"{name} split: attention_mask has length {len(mask)}, y has {n}")
    if split.y.ndim != 1 or split.y.dtype.is_floating_point:
        raise ValueError(f"{name} split: y must be a 1-d integer tensor, got {split.y.dtype}")
    if split.y.min() < 0 or split.y.max() >= num_classes:
        raise ValueError(f"{name} split: labels must lie in [0, num_classes={num_classes})")


def _as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (a copy across file systems), replacing atomically."""

    def link(temp: Path) -> None:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)

    atomic_write(target, link)


def train_from_settings(
    settings: dict,
    root: str | None,
    run_dir: str | Path,
    state_dir: str | Path,
    device: str = "auto",
    progress: bool = True,
) -> None:
    """Train one run of a study from its settings (`config.Run.settings`): checkpoints,
    metrics.tsv, flipped.tsv and run.json in `run_dir`."""
    start = utc_now()
    run_dir = Path(run_dir)
    dataset = load_configured(settings["dataset"], settings["data"], root)
    num_classes = len(dataset.classes)
    training = settings["training"]
    config = TrainConfig(
        epochs=training["epochs"],
        checkpoint_epochs=settings["checkpoint_epochs"],
        batch_size=training["batch_size"],
        lr=training["lr"],
        momentum=training["momentum"],
        weight_decay=training["weight_decay"],
        optimizer=training["optimizer"],
        seed=settings["seed"],
        label_noise=settings["label_noise"],
        noise_seed=settings["noise_seed"],
        mask_players=training.get("mask_players", 0.0),
    )
    masking = None
    if config.mask_players > 0:
        if dataset.kind not in ("text", "tabular"):
            raise ValueError(
                f"training.mask_players is for text and tabular datasets, not {dataset.kind} "
                f"dataset {settings['dataset']!r}"
            )
        masking = Masking(dataset.feature_mean, tuple(dataset.special_token_ids or ()))
    model = build_model(
        settings["arch"],
        dataset.input_shape,
        num_classes,
        seed=settings["seed"],
        **settings.get("model", {}),
    )
    meta = {
        "arch": settings["arch"],
        "dataset": settings["dataset"],
        "run": run_dir.name,
        "input_shape": list(dataset.input_shape),
        "num_classes": num_classes,
    }
    train_run(
        model,
        dataset.train,
        dataset.test,
        num_classes,
        config,
        run_dir,
        meta=meta,
        state_dir=Path(state_dir),
        device=pick_device(device),
        progress=progress,
        masking=masking,
    )
    write_manifest(run_dir, settings, provenance(pick_device(device), start=start))


__all__ = [
    "Masking",
    "TrainConfig",
    "checkpoint_schedule",
    "default_state_dir",
    "learning_rate",
    "train_from_settings",
    "train_run",
]
