"""Dataset loaders on tiny files written in the published formats, and on Debian's
Fashion-MNIST; checked against the raw values they were written from."""

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harsanyi import data
from harsanyi.data import (
    DATASETS,
    INTENSIFIERS,
    NEGATIONS,
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    load_dataset,
    minilm_tokenizer,
    stratified_subset,
)

# --------------------------------------------------------------------------- helpers


def channel_stats(raw_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (unbiased) std of raw (N, C, H, W) training images."""
    mean = raw_train.mean(axis=(0, 2, 3), keepdims=True)
    std = raw_train.std(axis=(0, 2, 3), keepdims=True, ddof=1)
    return mean, std


def check_images(split_x: torch.Tensor, raw: np.ndarray, mean, std, atol=1e-4) -> None:
    expected = (raw - mean) / std
    np.testing.assert_allclose(split_x.numpy(), expected, atol=atol)


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def make_idx_root(root: Path, n_train=40, n_test=20, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        suffix = ".gz" if compress else ""
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        arrays[prefix] = (images, labels)
    return arrays


def check_class_proportions(labels: np.ndarray, subset: np.ndarray, size: int) -> None:
    classes, counts = np.unique(labels, return_counts=True)
    picked = labels[subset]
    for c, count in zip(classes, counts, strict=True):
        share = count * size / len(labels)
        assert np.floor(share) <= (picked == c).sum() <= np.ceil(share)


# --------------------------------------------------------------------------- subsets


def test_stratified_subset_is_reproducible_stratified_and_exact():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    a = stratified_subset(labels, 37, seed=3)
    b = stratified_subset(labels, 37, seed=3)
    c = stratified_subset(labels, 37, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(a) == 37 and len(np.unique(a)) == 37
    check_class_proportions(labels, a, 37)
    np.testing.assert_array_equal(stratified_subset(labels, None, 0), np.arange(100))
    np.testing.assert_array_equal(stratified_subset(labels, 500, 0), np.arange(100))


# --------------------------------------------------------------------------- registry errors


def test_registry_names_and_argument_errors(tmp_path):
    assert set(DATASETS) == {
        "digits", "breast_cancer", "wine", "sentiment", "mnist", "fashion_mnist",
        "cifar10", "cifar100", "cub200", "tiny_imagenet", "sst2",
        "planted_tabular_and", "planted_tabular_or", "planted_image_and", "planted_image_or",
    }  # fmt: skip
    with pytest.raises(ValueError, match="imagenet_full.*known"):
        load_dataset("imagenet_full")
    with pytest.raises(ValueError, match="max_train"):
        load_dataset("digits", max_train=0)
    with pytest.raises(ValueError, match="colour"):
        load_dataset("digits", colour=True)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset("mnist", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="root"):
        load_dataset("cifar10")


def test_fashion_mnist_default_root_missing_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN_ROOT", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist")


# --------------------------------------------------------------------------- scikit-learn


def test_digits_split_and_normalisation():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", seed=1)
    assert (len(ds.train), len(ds.test)) == (1197, 600)
    assert ds.input_shape == (1, 8, 8) and ds.kind == "image"
    assert not set(ds.train.ids) & set(ds.test.ids)
    raw = load_digits().images[:, None].astype(np.float64) / 16
    labels = load_digits().target
    mean, std = channel_stats(raw[ds.train.ids])
    check_images(ds.train.x, raw[ds.train.ids], mean, std)
    check_images(ds.test.x, raw[ds.test.ids], mean, std)
    np.testing.assert_array_equal(ds.train.y.numpy(), labels[ds.train.ids])
    torch.testing.assert_close(ds.feature_mean, ds.train.x.mean(0))
    check_class_proportions(labels, ds.test.ids, 600)
    again = load_dataset("digits", seed=1)
    np.testing.assert_array_equal(again.test.ids, ds.test.ids)
    assert not np.array_equal(load_dataset("digits", seed=2).test.ids, ds.test.ids)
    small = load_dataset("digits", seed=1, max_train=100, max_test=50)
    assert set(small.train.ids) <= set(ds.train.ids) and len(small.test) == 50
    assert small.summary()["train_class_counts"] == np.bincount(labels[small.train.ids]).tolist()


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_tabular_standardised_with_train_statistics(name):
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    ds = load_dataset(name, seed=0)
    assert ds.kind == "tabular" and ds.input_shape == (bunch.data.shape[1],)
    assert len(ds.train) + len(ds.test) == len(bunch.data)
    train_raw = bunch.data[ds.train.ids]
    mean, std = train_raw.mean(0), train_raw.std(0)
    np.testing.assert_allclose(ds.train.x.numpy(), (train_raw - mean) / std, atol=1e-4)
    np.testing.assert_allclose(ds.test.x.numpy(), (bunch.data[ds.test.ids] - mean) / std, atol=1e-4)
    np.testing.assert_array_equal(ds.test.y.numpy(), bunch.target[ds.test.ids])
    assert ds.feature_mean.abs().max() < 1e-5
    check_class_proportions(bunch.target, ds.test.ids, len(ds.test))


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("compress, subfolder", [(True, ""), (False, "raw")])
def test_mnist_idx_files(tmp_path, compress, subfolder):
    arrays = make_idx_root(tmp_path / subfolder, compress=compress)
    ds = load_dataset("mnist", tmp_path, max_train=20, seed=5)
    images, labels = arrays["train"]
    assert ds.input_shape == (1, 28, 28) and len(ds.train) == 20 and len(ds.test) == 20
    assert np.bincount(ds.train.y.numpy()).tolist() == [2] * 10
    raw_train = images[ds.train.ids][:, None] / 255.0
    mean, std = channel_stats(raw_train)
    check_images(ds.train.x, raw_train, mean, std)
    test_images, test_labels = arrays["t10k"]
    check_images(ds.test.x, test_images[ds.test.ids][:, None] / 255.0, mean, std)
    np.testing.assert_array_equal(ds.train.y.numpy(), labels[ds.train.ids])
    np.testing.assert_array_equal(ds.test.ids, np.arange(20))


def test_idx_malformed_files_are_named(tmp_path):
    make_idx_root(tmp_path)
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, 3) + struct.pack(">3I", 40, 28, 28) + b"\0" * 9)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*promises"):
        load_dataset("mnist", tmp_path)
    with gzip.open(bad, "wb") as f:
        f.write(b"\x12\x34\x08\x03" + b"\0" * 100)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*magic"):
        load_dataset("mnist", tmp_path)
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz"):
        load_dataset("mnist", tmp_path)
    make_idx_root(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(7, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz"):
        load_dataset("mnist", tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_dataset("mnist", tmp_path)


@pytest.mark.skipif(
    not data.FASHION_MNIST_DEBIAN_ROOT.is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_fashion_mnist_debian_files():
    ds = load_dataset("fashion_mnist", max_train=200, max_test=100, seed=0)
    assert ds.classes[9] == "Ankle boot" and ds.input_shape == (1, 28, 28)
    assert np.bincount(ds.train.y.numpy()).tolist() == [20] * 10
    assert np.bincount(ds.test.y.numpy()).tolist() == [10] * 10
    assert ds.train.ids.max() < 60000 and ds.test.ids.max() < 10000
    root = data.FASHION_MNIST_DEBIAN_ROOT
    with gzip.open(root / "train-images-idx3-ubyte.gz", "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(root / "train-labels-idx1-ubyte.gz", "rb") as f:
        raw_labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    assert len(raw) == 60000
    raw_train = raw[ds.train.ids][:, None] / 255.0
    mean, std = channel_stats(raw_train)
    check_images(ds.train.x, raw_train, mean, std)
    np.testing.assert_array_equal(ds.train.y.numpy(), raw_labels[ds.train.ids])
    again = load_dataset("fashion_mnist", max_train=200, max_test=100, seed=0)
    np.testing.assert_array_equal(again.train.ids, ds.train.ids)
    other = load_dataset("fashion_mnist", max_train=200, max_test=100, seed=1)
    assert not np.array_equal(other.train.ids, ds.train.ids)


# --------------------------------------------------------------------------- CIFAR


def dump(path: Path, content: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(content, f)


def make_cifar10(root: Path, per_batch=6, n_test=10, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = []
    for i in range(1, 6):
        batch = {
            b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, size=per_batch)],
        }
        dump(folder / f"data_batch_{i}", batch)
        batches.append(batch)
    test = {b"data": rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)}
    test[b"labels"] = list(range(n_test))
    dump(folder / "test_batch", test)
    names = [f"class{k}".encode() for k in range(10)]
    dump(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    return {"batches": batches, "test": test}


def test_cifar10_pickles(tmp_path):
    written = make_cifar10(tmp_path)
    all_data = np.concatenate([b[b"data"] for b in written["batches"]])
    all_labels = np.concatenate([b[b"labels"] for b in written["batches"]])
    ds = load_dataset("cifar10", tmp_path, max_train=12, seed=0)
    assert ds.classes == [f"class{k}" for k in range(10)] and ds.input_shape == (3, 32, 32)
    assert len(ds.train) == 12 and len(ds.test) == 10
    check_class_proportions(all_labels, ds.train.ids, 12)
    raw_train = all_data[ds.train.ids].reshape(-1, 3, 32, 32) / 255.0
    mean, std = channel_stats(raw_train)
    check_images(ds.train.x, raw_train, mean, std)
    raw_test = written["test"][b"data"].reshape(-1, 3, 32, 32) / 255.0
    check_images(ds.test.x, raw_test[ds.test.ids], mean, std)
    np.testing.assert_array_equal(ds.train.y.numpy(), all_labels[ds.train.ids])


def test_cifar100_pickles_and_malformed(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train = {
        b"data": rng.integers(0, 256, size=(20, 3072), dtype=np.uint8),
        b"fine_labels": [k % 5 for k in range(20)],
        b"coarse_labels": [0] * 20,
    }
    test = {b"data": train[b"data"][:5], b"fine_labels": [4, 3, 2, 1, 0], b"coarse_labels": [0] * 5}
    dump(folder / "train", train)
    dump(folder / "test", test)
    dump(folder / "meta", {b"fine_label_names": [b"a", b"b", b"c", b"d", b"e"]})
    ds = load_dataset("cifar100", tmp_path)
    assert ds.classes == ["a", "b", "c", "d", "e"]
    np.testing.assert_array_equal(ds.test.y.numpy(), [4, 3, 2, 1, 0])
    np.testing.assert_array_equal(ds.train.y.numpy(), train[b"fine_labels"])
    del test[b"fine_labels"]
    dump(folder / "test", test)
    with pytest.raises(ValueError, match=r"cifar-100-python/test.*fine_labels"):
        load_dataset("cifar100", tmp_path)
    (folder / "test").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"cifar-100-python/test"):
        load_dataset("cifar100", tmp_path)


def test_cifar10_missing_batch_is_named(tmp_path):
    make_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_dataset("cifar10", tmp_path)


# --------------------------------------------------------------------------- image folders

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def save_solid(path: Path, colour, size=12) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)


def label_of_colour(split: data.Split) -> np.ndarray:
    """Recover the class of each solid-colour image from its dominant channel."""
    return split.x.mean(dim=(2, 3)).argmax(dim=1).numpy()


def test_cub200_image_folders(tmp_path):
    for k, name in enumerate(["001.Albatross", "002.Auklet", "003.Blackbird"]):
        for i in range(4):
            save_solid(tmp_path / "train" / name / f"img{i}.jpg", COLOURS[k])
        save_solid(tmp_path / "test" / name / "img.png", COLOURS[k])
    ds = load_dataset("cub200", tmp_path, image_size=8, max_train=6, seed=0)
    assert ds.classes == ["001.Albatross", "002.Auklet", "003.Blackbird"]
    assert ds.input_shape == (3, 8, 8) and len(ds.train) == 6 and len(ds.test) == 3
    np.testing.assert_array_equal(label_of_colour(ds.train), ds.train.y.numpy())
    np.testing.assert_array_equal(label_of_colour(ds.test), ds.test.y.numpy())
    assert np.bincount(ds.train.y.numpy()).tolist() == [2, 2, 2]
    (tmp_path / "test" / "004.Unknown").mkdir()
    save_solid(tmp_path / "test" / "004.Unknown" / "x.png", (9, 9, 9))
    with pytest.raises(ValueError, match="004.Unknown"):
        load_dataset("cub200", tmp_path, image_size=8)


def test_cub200_published_layout(tmp_path):
    lines = {"images.txt": [], "train_test_split.txt": [], "image_class_labels.txt": []}
    image_id = 0
    for k in range(3):
        for i in range(3):
            image_id += 1
            rel = f"{k + 1:03d}.bird{k}/b{i}.jpg"
            save_solid(tmp_path / "images" / rel, COLOURS[k])
            lines["images.txt"].append(f"{image_id} {rel}")
            lines["train_test_split.txt"].append(f"{image_id} {int(i < 2)}")
            lines["image_class_labels.txt"].append(f"{image_id} {k + 1}")
    lines["classes.txt"] = [f"{k + 1} {k + 1:03d}.bird{k}" for k in range(3)]
    for name, rows in lines.items():
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    ds = load_dataset("cub200", tmp_path, image_size=4)
    assert ds.classes == ["001.bird0", "002.bird1", "003.bird2"]
    assert (len(ds.train), len(ds.test)) == (6, 3)
    np.testing.assert_array_equal(label_of_colour(ds.test), ds.test.y.numpy())
    np.testing.assert_array_equal(label_of_colour(ds.train), ds.train.y.numpy())


def make_tiny_imagenet(root: Path) -> list[str]:
    wnids = ["n01443537", "n01629819", "n01641577"]
    annotations = []
    for k, wnid in enumerate(wnids):
        for i in range(3):
            save_solid(root / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", COLOURS[k])
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("ignored\n")
    # val labels deliberately not in class order, so that annotations must be read
    for j, k in enumerate([2, 0, 1, 1, 2, 0]):
        save_solid(root / "val" / "images" / f"val_{j}.JPEG", COLOURS[k])
        annotations.append(f"val_{j}.JPEG\t{wnids[k]}\t0\t0\t11\t11")
    (root / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    (root / "words.txt").write_text(
        "n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n"
        "n01641577\tbullfrog, Rana catesbeiana\nn99999999\tunused\n"
    )
    return wnids


def test_tiny_imagenet_layout(tmp_path):
    make_tiny_imagenet(tmp_path)
    ds = load_dataset("tiny_imagenet", tmp_path, image_size=8)
    assert ds.classes == ["goldfish", "European fire salamander", "bullfrog"]
    assert (len(ds.train), len(ds.test)) == (9, 6)
    np.testing.assert_array_equal(ds.test.y.numpy(), [2, 0, 1, 1, 2, 0])
    np.testing.assert_array_equal(label_of_colour(ds.test), ds.test.y.numpy())
    np.testing.assert_array_equal(label_of_colour(ds.train), ds.train.y.numpy())
    channel_mean = ds.train.x.mean(dim=(0, 2, 3))
    assert channel_mean.abs().max() < 1e-5


def test_tiny_imagenet_malformed_files_are_named(tmp_path):
    make_tiny_imagenet(tmp_path)
    annotations = tmp_path / "val" / "val_annotations.txt"
    annotations.write_text("val_0.JPEG\tn00000000\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match=r"val_annotations\.txt:1.*n00000000"):
        load_dataset("tiny_imagenet", tmp_path, image_size=8)
    annotations.write_text("val_0.JPEG\tn01443537\t0\t0\t1\t1\n")
    (tmp_path / "val" / "images" / "val_0.JPEG").write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match=r"val_0\.JPEG"):
        load_dataset("tiny_imagenet", tmp_path, image_size=8)


# --------------------------------------------------------------------------- text


def decode(ids: torch.Tensor) -> list[str]:
    return minilm_tokenizer().batch_decode(ids, skip_special_tokens=True)


def test_sentiment_labels_follow_the_planted_rule():
    ds = load_dataset("sentiment", n_train=400, n_test=100, seed=3)
    assert ds.kind == "text" and ds.input_shape == (16,)
    assert ds.train.x.dtype == torch.int64 and ds.train.attention_mask is not None
    tokenizer = minilm_tokenizer()
    assert tokenizer.mask_token_id in ds.special_token_ids
    assert torch.all(ds.feature_mean == tokenizer.mask_token_id)
    seen = {"negated": 0, "intensified": 0}
    for split in (ds.train, ds.test):
        for sentence, label in zip(decode(split.x), split.y.tolist(), strict=True):
            words = sentence.split()
            adjectives = [w for w in words if w in POSITIVE_WORDS or w in NEGATIVE_WORDS]
            assert len(adjectives) == 1
            negated = any(w in NEGATIONS for w in words)
            expected = (adjectives[0] in POSITIVE_WORDS) != negated
            assert label == int(expected), sentence
            seen["negated"] += negated
            seen["intensified"] += any(w in INTENSIFIERS for w in words)
        assert (split.attention_mask.sum(1) < 16).all()  # nothing truncated
    assert 100 < seen["negated"] < 400 and 100 < seen["intensified"] < 400
    assert 0.35 < ds.train.y.float().mean() < 0.65
    again = load_dataset("sentiment", n_train=400, n_test=100, seed=3)
    assert torch.equal(again.train.x, ds.train.x)
    subset = load_dataset("sentiment", n_train=400, n_test=100, seed=3, max_train=50)
    assert torch.equal(subset.train.x, ds.train.x[np.searchsorted(ds.train.ids, subset.train.ids)])


def test_sst2_tsv(tmp_path):
    train = [("a gripping , funny film", 1), ("dull and lifeless", 0), ("it 's a mess", 0)]
    train += [("pure joy", 1)]
    dev = [("wonderfully acted", 1), ("a tedious bore", 0)]
    for name, rows in (("train.tsv", train), ("dev.tsv", dev)):
        text = "sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in rows)
        (tmp_path / name).write_text(text)
    ds = load_dataset("sst2", tmp_path, max_length=12)
    assert ds.input_shape == (12,) and ds.classes == ["negative", "positive"]
    assert decode(ds.test.x) == [s for s, _ in dev]
    np.testing.assert_array_equal(ds.train.y.numpy(), [y for _, y in train])
    expected = minilm_tokenizer()([s for s, _ in train], padding="max_length", max_length=12)
    assert ds.train.x.tolist() == expected["input_ids"]
    (tmp_path / "dev.tsv").write_text("sentence\tlabel\nfine\t1\nbroken\tmaybe\n")
    with pytest.raises(ValueError, match=r"dev\.tsv:3"):
        load_dataset("sst2", tmp_path)
    (tmp_path / "dev.tsv").write_text("text\ty\nfine\t1\n")
    with pytest.raises(ValueError, match=r"dev\.tsv.*header"):
        load_dataset("sst2", tmp_path)
    (tmp_path / "dev.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"dev\.tsv"):
        load_dataset("sst2", tmp_path)
