"""Results files (HDF5, layout version 2; 1 is still read) and the shared store of runs.

A results file holds the interactions of a set of samples under one model checkpoint; the
layout is described in docs/hdf5-layout.md.  A store is a directory with one sub-directory
per training run, named by a readable label plus a hash of the run's settings.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# HDF5 reads this when a file is opened; shared filesystems (NFS, Lustre) often lack the
# locks HDF5 would otherwise take.  Set before h5py is imported so every open sees it.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from harsanyi import __version__  # noqa: E402
from harsanyi.io import atomic_write, canonical_json, is_temp_file, jsonable  # noqa: E402
from harsanyi.io import settings_hash as _settings_hash  # noqa: E402
from harsanyi.masks import check_n  # noqa: E402

LAYOUT_VERSION = 2
# Layout versions this library reads: 1 lacks the optimal face's ends (groups face_low and
# face_high, optional in 2 as well).
READABLE_LAYOUT_VERSIONS = (1, 2)
SPLITS = ("train", "test", "flipped")
VECTOR_DATASETS = ("v", "I_and", "I_or", "p", "q")
SAMPLE_DATASETS = ("sample_ids", "labels", "split")
# Per-sample certificate of the decomposition (absent from files written before it existed):
# its L1, a proven lower bound on the optimal L1, the relative gap (NaN: uncertified solver)
# and whether the gap is within the solver's tolerance.
CERTIFICATE_DATASETS = ("l1", "lower_bound", "gap", "certified")
# The two ends of the optimal face (harsanyi.face), each an HDF5 group face_<end> holding the
# end's decomposition (samples × 2^n) and its per-sample statistic, proven bound and gap.
FACE_ENDS = ("low", "high")
FACE_VECTOR_DATASETS = ("I_and", "I_or", "p", "q")
FACE_SAMPLE_DATASETS = ("l1", "weighted_order", "bound", "gap")
DECOMPOSITIONS = ("canonical", *FACE_ENDS)
JSON_ATTRS = ("players", "baseline", "output", "solver", "model", "extra")
STAMP_ATTRS = ("library_version", "created")
# JSON attributes files written before they existed lack: read back when present.
OPTIONAL_JSON_ATTRS = ("provenance",)
COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
RUN_MANIFEST = "run.json"
_SPLIT_DTYPE = f"S{max(len(s) for s in SPLITS)}"
_VERIFY_BLOCK_BYTES = 64 * 2**20


class ResultsFileError(ValueError):
    """A results file that cannot be used; the message always names the file."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# --------------------------------------------------------------------------- helpers


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- results files


@dataclass
class InteractionResults:
    """Interactions of a set of samples under one model checkpoint.

    Vector fields are (samples, 2^n) with mask indices as in docs/interactions.md.  `meta`
    holds the decoded JSON attributes (players, baseline, output, solver, model, extra) and,
    after reading, library_version and created.
    """

    v: np.ndarray
    I_and: np.ndarray
    I_or: np.ndarray
    p: np.ndarray
    q: np.ndarray
    sample_ids: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    n: int
    meta: dict
    player_positions: np.ndarray | None = None
    l1: np.ndarray | None = None
    lower_bound: np.ndarray | None = None
    gap: np.ndarray | None = None
    certified: np.ndarray | None = None
    # {"low" | "high": {dataset: array}} (FACE_VECTOR_DATASETS, FACE_SAMPLE_DATASETS), or None
    face: dict[str, dict[str, np.ndarray]] | None = None
    decomposition: str = "canonical"  # which optimum I_and and I_or hold (DECOMPOSITIONS)

    @property
    def n_samples(self) -> int:
        return int(np.shape(self.v)[0])

    @property
    def has_face(self) -> bool:
        return self.face is not None

    def at_end(self, which: str) -> InteractionResults:
        """The same samples decomposed at one end of the optimal face ("low": least, "high":
        most strength-weighted order), or the stored optimum itself for "canonical"."""
        if which not in DECOMPOSITIONS:
            raise ValueError(f"decomposition must be one of {DECOMPOSITIONS}, got {which!r}")
        if which == "canonical":
            return self
        if self.face is None:
            raise ValueError(
                "these results hold no optimal face (extracted without extraction.face_ends, "
                "with an uncertified solver, or before layout version 2)"
            )
        end = self.face[which]
        out = self._rows(np.ones(self.n_samples, bool))
        out.I_and, out.I_or, out.p, out.q = (np.asarray(end[k]) for k in FACE_VECTOR_DATASETS)
        out.face, out.decomposition = None, which
        return out

    def validate(self) -> None:
        """Raise ValueError naming the field if shapes, dtypes or values are inconsistent."""
        _checked_arrays(self)

    def subset(self, split: str) -> InteractionResults:
        """The samples whose split is `split` ("train", "test" or "flipped")."""
        _check_split_name(split)
        rows = np.asarray(self.split).astype(str) == split
        return self._rows(rows)

    def _rows(self, rows: np.ndarray) -> InteractionResults:
        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[rows]

        return InteractionResults(
            v=take(self.v),
            I_and=take(self.I_and),
            I_or=take(self.I_or),
            p=take(self.p),
            q=take(self.q),
            sample_ids=take(self.sample_ids),
            labels=take(self.labels),
            split=take(self.split),
            n=self.n,
            meta=copy.deepcopy(self.meta),
            player_positions=take(self.player_positions),
            **{name: take(getattr(self, name)) for name in CERTIFICATE_DATASETS},
            face=None
            if self.face is None
            else {
                end: {k: take(a) for k, a in arrays.items()} for end, arrays in self.face.items()
            },
            decomposition=self.decomposition,
        )


def _check_split_name(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def _checked_arrays(results: InteractionResults) -> dict[str, np.ndarray]:
    """Validated float64/int64/bytes arrays ready to be written, keyed by dataset name."""
    n = check_n(results.n)
    width = 2**n
    arrays: dict[str, np.ndarray] = {}
    n_samples: int | None = None
    for name in VECTOR_DATASETS:
        a = np.asarray(getattr(results, name))
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be real numbers, got dtype {a.dtype}")
        if a.ndim != 2 or a.shape[1] != width:
            raise ValueError(f"{name} must have shape (samples, 2^n = {width}), got {a.shape}")
        if n_samples is None:
            n_samples = a.shape[0]
        elif a.shape[0] != n_samples:
            raise ValueError(f"{name} has {a.shape[0]} samples, v has {n_samples}")
        arrays[name] = a.astype(np.float64, copy=False)
    assert n_samples is not None
    nan_rows = np.flatnonzero(np.isnan(arrays["v"]).any(axis=1))
    if nan_rows.size:
        raise ValueError(f"v contains NaN in samples {nan_rows[:10].tolist()}")
    for name in ("sample_ids", "labels"):
        a = np.asarray(getattr(results, name))
        if a.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
        if a.shape != (n_samples,):
            raise ValueError(f"{name} must have shape ({n_samples},), got {a.shape}")
        arrays[name] = a.astype(np.int64, copy=False)
    split = np.asarray(results.split)
    if split.shape != (n_samples,):
        raise ValueError(f"split must have shape ({n_samples},), got {split.shape}")
    split_str = split.astype(str)
    unknown = sorted(set(split_str.tolist()) - set(SPLITS))
    if unknown:
        raise ValueError(f"split has values {unknown}, allowed are {SPLITS}")
    arrays["split"] = split_str.astype(_SPLIT_DTYPE)
    if results.player_positions is not None:
        a = np.asarray(results.player_positions)
        if a.dtype.kind not in "iu" or a.shape != (n_samples, n):
            raise ValueError(
                f"player_positions must be integers of shape ({n_samples}, {n}), "
                f"got {a.dtype} {a.shape}"
            )
        arrays["player_positions"] = a.astype(np.int64, copy=False)
    present = [name for name in CERTIFICATE_DATASETS if getattr(results, name) is not None]
    if present and len(present) != len(CERTIFICATE_DATASETS):
        raise ValueError(f"certificate needs all of {CERTIFICATE_DATASETS}, got only {present}")
    for name in present:
        a = np.asarray(getattr(results, name))
        if a.shape != (n_samples,):
            raise ValueError(f"{name} must have shape ({n_samples},), got {a.shape}")
        arrays[name] = a.astype(bool if name == "certified" else np.float64, copy=False)
    if results.face is not None:
        if sorted(results.face) != sorted(FACE_ENDS):
            raise ValueError(f"face must hold the ends {FACE_ENDS}, got {sorted(results.face)}")
        for end in FACE_ENDS:
            for name in (*FACE_VECTOR_DATASETS, *FACE_SAMPLE_DATASETS):
                if name not in results.face[end]:
                    raise ValueError(f"face[{end!r}] lacks {name}")
                a = np.asarray(results.face[end][name])
                shape = (n_samples, width) if name in FACE_VECTOR_DATASETS else (n_samples,)
                if a.dtype.kind not in "fiu" or a.shape != shape:
                    raise ValueError(
                        f"face[{end!r}][{name!r}] must be real numbers of shape {shape}, "
                        f"got {a.dtype} {a.shape}"
                    )
                arrays[f"face_{end}/{name}"] = a.astype(np.float64, copy=False)
    return arrays


def _checked_meta(meta: dict) -> dict[str, str]:
    """JSON strings for the JSON attributes; unknown keys are an error."""
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    allowed = (*JSON_ATTRS, *OPTIONAL_JSON_ATTRS)
    unknown = sorted(set(meta) - set(allowed) - set(STAMP_ATTRS))
    if unknown:
        raise ValueError(f"meta has unknown keys {unknown}; allowed {allowed}, or put it in extra")
    keys = [*JSON_ATTRS, *(key for key in OPTIONAL_JSON_ATTRS if key in meta)]
    return {key: json.dumps(jsonable(meta.get(key), f"meta[{key!r}]")) for key in keys}


def _open_h5(path: Path, mode: str) -> h5py.File:
    try:
        return h5py.File(path, mode, locking=False)
    except (TypeError, ValueError):
        # h5py < 3.5 or an HDF5 build without the locking option: rely on the env variable.
        return h5py.File(path, mode)


def write_results(path: str | os.PathLike[str], results: InteractionResults) -> Path:
    """Write `results` to `path` (layout version 2), atomically.

    Everything is validated before the file is created; ValueError names the bad field.
    """
    arrays = _checked_arrays(results)
    attrs = _checked_meta(results.meta)
    return _write_h5(path, arrays, {"layout_version": LAYOUT_VERSION, "n": int(results.n)}, attrs)


def _write_h5(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], header: dict, attrs: dict
) -> Path:
    """Validated `arrays` (rows chunked one sample each, compressed) and attributes (`header`,
    the stamps, then the JSON `attrs`) as the HDF5 file `path`, atomically: the one writer of
    results and games files."""

    def write(temp: Path) -> None:
        with _open_h5(temp, "w") as h5:
            for name, data in arrays.items():
                if data.ndim == 2:
                    h5.create_dataset(
                        name,
                        data=data,
                        chunks=(1, data.shape[1]),
                        maxshape=(None, data.shape[1]),
                        **COMPRESSION,
                    )
                else:
                    h5.create_dataset(name, data=data, maxshape=(None,))
            for key, value in header.items():
                h5.attrs[key] = value
            h5.attrs["library_version"] = __version__
            h5.attrs["created"] = _utc_now()
            for key, text in attrs.items():
                h5.attrs[key] = text

    return atomic_write(path, write)


def _open_results(path: str | os.PathLike[str]) -> tuple[Path, h5py.File]:
    """Open a results file read-only and check its structure (not its values)."""
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(path, "no such file")
    try:
        h5 = _open_h5(path, "r")
    except OSError as exc:
        raise ResultsFileError(
            path, f"not a readable HDF5 file (truncated or corrupt?): {exc}"
        ) from None
    try:
        _check_structure(path, h5)
    except BaseException:
        h5.close()
        raise
    return path, h5


def _check_structure(path: Path, h5: h5py.File) -> None:
    if "layout_version" not in h5.attrs:
        raise ResultsFileError(path, "no layout_version attribute: not a harsanyi results file")
    version = h5.attrs["layout_version"]
    if version not in READABLE_LAYOUT_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_LAYOUT_VERSIONS)
        raise ResultsFileError(
            path,
            f"layout version {version} found; this library (harsanyi {__version__}) "
            f"reads layout versions {readable}",
        )
    missing = [
        name
        for name in (*VECTOR_DATASETS, *SAMPLE_DATASETS)
        if not isinstance(h5.get(name), h5py.Dataset)
    ]
    missing += [key for key in ("n", *STAMP_ATTRS, *JSON_ATTRS) if key not in h5.attrs]
    if missing:
        raise ResultsFileError(path, f"missing datasets/attributes {missing}")
    n = int(h5.attrs["n"])
    for name in VECTOR_DATASETS:
        if h5[name].dtype.kind not in "fiu":
            raise ResultsFileError(path, f"dataset {name} holds {h5[name].dtype}, not numbers")
    n_samples = h5["v"].shape[0] if h5["v"].ndim == 2 else -1
    expected = {name: (n_samples, 2**n) for name in VECTOR_DATASETS}
    expected.update({name: (n_samples,) for name in SAMPLE_DATASETS})
    if "player_positions" in h5:
        expected["player_positions"] = (n_samples, n)
    expected.update({name: (n_samples,) for name in CERTIFICATE_DATASETS if name in h5})
    present = [end for end in FACE_ENDS if f"face_{end}" in h5]
    if present and len(present) != len(FACE_ENDS):
        raise ResultsFileError(path, f"face groups {present} without the others of {FACE_ENDS}")
    for end in present:
        for name in (*FACE_VECTOR_DATASETS, *FACE_SAMPLE_DATASETS):
            key = f"face_{end}/{name}"
            if not isinstance(h5.get(key), h5py.Dataset):
                raise ResultsFileError(path, f"missing dataset {key}")
            expected[key] = (n_samples, 2**n) if name in FACE_VECTOR_DATASETS else (n_samples,)
    for name, shape in expected.items():
        if h5[name].shape != shape:
            raise ResultsFileError(
                path, f"dataset {name} has shape {h5[name].shape}, expected {shape} (n = {n})"
            )
    for key in (*JSON_ATTRS, *(key for key in OPTIONAL_JSON_ATTRS if key in h5.attrs)):
        try:
            json.loads(h5.attrs[key])
        except (TypeError, ValueError) as exc:
            raise ResultsFileError(path, f"attribute {key} is not valid JSON: {exc}") from None


def _meta_of(h5: h5py.File) -> dict:
    keys = (*JSON_ATTRS, *(key for key in OPTIONAL_JSON_ATTRS if key in h5.attrs))
    meta = {key: json.loads(h5.attrs[key]) for key in keys}
    meta.update({key: str(h5.attrs[key]) for key in STAMP_ATTRS})
    return meta


def _read_rows(dataset: h5py.Dataset, rows: np.ndarray | None) -> np.ndarray:
    if rows is None:
        return dataset[()]
    if rows.size == 0:
        return np.empty((0, *dataset.shape[1:]), dtype=dataset.dtype)
    return dataset[rows]


def read_results(path: str | os.PathLike[str], *, split: str | None = None) -> InteractionResults:
    """Read a results file, optionally only the samples of one split."""
    if split is not None:
        _check_split_name(split)
    path, h5 = _open_results(path)
    with h5:
        all_splits = h5["split"].asstr()[()]
        rows = None if split is None else np.flatnonzero(all_splits == split)
        try:
            arrays = {
                name: _read_rows(h5[name], rows)
                for name in (*VECTOR_DATASETS, "sample_ids", "labels")
            }
            positions = (
                _read_rows(h5["player_positions"], rows) if "player_positions" in h5 else None
            )
            certificate = {
                name: _read_rows(h5[name], rows) if name in h5 else None
                for name in CERTIFICATE_DATASETS
            }
            face = None
            if "face_low" in h5:
                face = {
                    end: {
                        name: _read_rows(h5[f"face_{end}/{name}"], rows)
                        for name in (*FACE_VECTOR_DATASETS, *FACE_SAMPLE_DATASETS)
                    }
                    for end in FACE_ENDS
                }
        except OSError as exc:
            raise ResultsFileError(
                path, f"unreadable data (truncated or corrupt?): {exc}"
            ) from None
        return InteractionResults(
            **arrays,
            split=all_splits if rows is None else all_splits[rows],
            n=int(h5.attrs["n"]),
            meta=_meta_of(h5),
            player_positions=positions,
            **certificate,
            face=face,
        )


def read_sample(path: str | os.PathLike[str], index: int) -> dict[str, np.ndarray]:
    """One sample's vectors (v, I_and, I_or, p, q) and its sample_id, label, split.

    `index` is the row in the file (negative counts from the end), not the sample id.
    """
    path, h5 = _open_results(path)
    with h5:
        n_samples = h5["v"].shape[0]
        if not -n_samples <= index < n_samples:
            raise IndexError(f"{path}: sample index {index} outside [0, {n_samples})")
        index = index % n_samples
        try:
            sample = {name: h5[name][index] for name in VECTOR_DATASETS}
            sample["sample_id"] = np.asarray(h5["sample_ids"][index])
            sample["label"] = np.asarray(h5["labels"][index])
            sample["split"] = np.asarray(h5["split"].asstr()[index])
            if "player_positions" in h5:
                sample["player_positions"] = h5["player_positions"][index]
        except OSError as exc:
            raise ResultsFileError(
                path, f"unreadable data (truncated or corrupt?): {exc}"
            ) from None
        return sample


def verify_results(path: str | os.PathLike[str]) -> None:
    """Check a results file fully: structure, readable data, known splits, no NaN in v.

    Raises ResultsFileError naming the file and the first problem found.
    """
    path, h5 = _open_results(path)
    with h5:
        try:
            splits = h5["split"].asstr()[()]
            for name in (
                *VECTOR_DATASETS,
                "sample_ids",
                "labels",
                "player_positions",
                *CERTIFICATE_DATASETS,
                *(
                    f"face_{end}/{name}"
                    for end in FACE_ENDS
                    for name in (*FACE_VECTOR_DATASETS, *FACE_SAMPLE_DATASETS)
                ),
            ):
                if name not in h5:
                    continue
                dataset = h5[name]
                row_bytes = max(1, dataset.dtype.itemsize * int(np.prod(dataset.shape[1:])))
                block = max(1, _VERIFY_BLOCK_BYTES // row_bytes)
                for start in range(0, dataset.shape[0], block):
                    data = dataset[start : start + block]
                    if name == "v" and np.isnan(data).any():
                        rows = start + np.flatnonzero(np.isnan(data).any(axis=1))
                        raise ResultsFileError(path, f"v contains NaN in samples {rows[:10]}")
        except OSError as exc:
            raise ResultsFileError(
                path, f"unreadable data (truncated or corrupt?): {exc}"
            ) from None
        unknown = sorted(set(splits.tolist()) - set(SPLITS))
        if unknown:
            raise ResultsFileError(path, f"split has values {unknown}, allowed are {SPLITS}")


# --------------------------------------------------------------------------- games files

# A games file holds v of the explained samples of one checkpoint on every mask (rule games:
# the only step of an extraction that runs the model); the decompositions are computed from it
# on CPUs (rules extract, redecompose, joint_extract).  Layout in docs/hdf5-layout.md.
GAMES_LAYOUT = "games"
GAMES_LAYOUT_VERSION = 1
GAMES_JSON_ATTRS = ("players", "baseline", "output", "model", "provenance", "extra")


@dataclass
class StoredGames:
    """v (samples × 2^n) of a set of samples under one checkpoint, with what identifies them:
    sample ids, labels, splits, token positions of text players, and `meta` (players,
    baseline, output, model, provenance, extra; extra["games"]: the games settings)."""

    v: np.ndarray
    sample_ids: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    n: int
    meta: dict
    player_positions: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        return int(np.shape(self.v)[0])


def write_games(path: str | os.PathLike[str], games: StoredGames) -> Path:
    """Write `games` to `path` (games layout version 1), atomically; ValueError names the bad
    field before anything is written."""
    arrays = _checked_arrays(
        InteractionResults(
            v=games.v,
            I_and=games.v,
            I_or=games.v,
            p=games.v,
            q=games.v,
            sample_ids=games.sample_ids,
            labels=games.labels,
            split=games.split,
            n=games.n,
            meta={},
            player_positions=games.player_positions,
        )
    )
    for name in ("I_and", "I_or", "p", "q"):
        del arrays[name]
    unknown = sorted(set(games.meta) - set(GAMES_JSON_ATTRS))
    if unknown:
        raise ValueError(f"games meta has unknown keys {unknown}; allowed {GAMES_JSON_ATTRS}")
    attrs = {
        key: json.dumps(jsonable(games.meta.get(key), f"meta[{key!r}]")) for key in GAMES_JSON_ATTRS
    }
    header = {
        "layout": GAMES_LAYOUT,
        "games_layout_version": GAMES_LAYOUT_VERSION,
        "n": int(games.n),
    }
    return _write_h5(path, arrays, header, attrs)


def games_of(results: InteractionResults) -> StoredGames:
    """The games a results file stores beside its decomposition."""
    return StoredGames(
        v=results.v,
        sample_ids=results.sample_ids,
        labels=results.labels,
        split=np.asarray(results.split).astype(str),
        n=results.n,
        meta={key: results.meta.get(key) for key in GAMES_JSON_ATTRS},
        player_positions=results.player_positions,
    )


def is_games_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a games file (else a results file, or not ours)."""
    return _h5_layout(Path(path)) == GAMES_LAYOUT


def read_games(path: str | os.PathLike[str]) -> StoredGames:
    """The games of a games file, or those a results file stores beside its decomposition
    (results files hold v too: a store written before games files existed is read alike).
    ResultsFileError names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(path, "no such file")
    if _h5_layout(path) != GAMES_LAYOUT:
        return games_of(read_results(path))
    try:
        h5 = _open_h5(path, "r")
    except OSError as exc:
        raise ResultsFileError(path, f"not a readable HDF5 file: {exc}") from None
    with h5:
        version = h5.attrs.get("games_layout_version")
        if version != GAMES_LAYOUT_VERSION:
            raise ResultsFileError(
                path,
                f"games layout version {version}; this library (harsanyi {__version__}) reads "
                f"version {GAMES_LAYOUT_VERSION}",
            )
        missing = [
            name for name in ("v", *SAMPLE_DATASETS) if not isinstance(h5.get(name), h5py.Dataset)
        ]
        missing += [key for key in ("n", *GAMES_JSON_ATTRS) if key not in h5.attrs]
        if missing:
            raise ResultsFileError(path, f"missing datasets/attributes {missing}")
        try:
            n = check_n(int(h5.attrs["n"]))
            v = h5["v"][()]
            sample_ids, labels = h5["sample_ids"][()], h5["labels"][()]
            split = h5["split"].asstr()[()]
            positions = h5["player_positions"][()] if "player_positions" in h5 else None
            meta = {key: json.loads(h5.attrs[key]) for key in GAMES_JSON_ATTRS}
        except (OSError, TypeError, ValueError) as exc:
            raise ResultsFileError(
                path, f"unreadable data (truncated or corrupt?): {exc}"
            ) from None
    if v.dtype.kind not in "fiu" or v.ndim != 2 or v.shape[1] != 2**n:
        raise ResultsFileError(
            path, f"v has {v.dtype} {v.shape}, expected numbers (samples, 2^{n})"
        )
    rows = v.shape[0]
    for name, a in (("sample_ids", sample_ids), ("labels", labels), ("split", split)):
        if a.shape != (rows,):
            raise ResultsFileError(path, f"dataset {name} has shape {a.shape}, expected ({rows},)")
    if np.isnan(v).any():
        raise ResultsFileError(path, "v contains NaN")
    unknown = sorted(set(split.tolist()) - set(SPLITS))
    if unknown:
        raise ResultsFileError(path, f"split has values {unknown}, allowed are {SPLITS}")
    if positions is not None and positions.shape != (rows, n):
        raise ResultsFileError(
            path, f"player_positions has shape {positions.shape}, expected ({rows}, {n})"
        )
    return StoredGames(
        v=v.astype(np.float64, copy=False),
        sample_ids=sample_ids.astype(np.int64, copy=False),
        labels=labels.astype(np.int64, copy=False),
        split=split,
        n=n,
        meta=meta,
        player_positions=positions,
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (for the checkpoint identity in meta["model"])."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_identity(
    checkpoint: str | os.PathLike[str], *, arch: str, run: str, epoch: int, dataset: str
) -> dict:
    """The `model` meta entry: arch, run id, checkpoint name and sha256, epoch, dataset."""
    checkpoint = Path(checkpoint)
    return {
        "arch": arch,
        "run": run,
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": file_sha256(checkpoint),
        "epoch": int(epoch),
        "dataset": dataset,
    }


# --------------------------------------------------------------------------- run store


def _setting_name(settings: dict, key: str) -> Any:
    """settings[key], or its "name" when it is a dict of options; None when absent."""
    value = settings.get(key)
    if isinstance(value, dict):
        value = value.get("name")
    return value


def _label_part(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:g}"
    return re.sub(r"[^A-Za-z0-9._]+", "_", str(value)).strip("_")


def run_label(settings: dict) -> str:
    """Readable label from dataset, arch, seed, label_noise: "digits-lenet-s0-noise0.15".

    Parts missing from `settings` are left out, and so is a label noise of 0.
    """
    parts = []
    for key, prefix in (("dataset", ""), ("arch", ""), ("seed", "s"), ("label_noise", "noise")):
        value = _setting_name(settings, key)
        if value is None or (key == "label_noise" and value == 0):
            continue
        parts.append(prefix + _label_part(value))
        if key == "arch" and isinstance(settings.get("model"), dict):
            size = settings["model"]
            if "width" in size:  # a resized architecture reads as such: "vgg11w0.25"
                parts[-1] += "w" + _label_part(float(size["width"]))
    return "-".join(part for part in parts if part) or "run"


def run_hash(settings: dict) -> str:
    """First 12 hex digits of the sha256 of the settings' canonical JSON."""
    if not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict, got {type(settings).__name__}")
    return _settings_hash(settings)


def run_dirname(settings: dict) -> str:
    """The directory name of a run in the store: `<run_label>-<run_hash>`."""
    return f"{run_label(settings)}-{run_hash(settings)}"


def short_name(run: str) -> str:
    """A run directory name without its settings hash: "digits-lenet-s0-noise0.15"."""
    head, _, tail = run.rpartition("-")
    return head if head and len(tail) == 12 else run


def write_manifest(
    run_dir: str | os.PathLike[str], settings: dict, provenance: dict | None = None
) -> Path:
    """Write run_dir/run.json (settings, hash, label, library_version, created and, when
    given, the provenance of the training: `harsanyi.provenance.provenance`) atomically."""
    manifest = {
        "run": Path(run_dir).name,
        "label": run_label(settings),
        "hash": run_hash(settings),
        "settings": json.loads(canonical_json(settings)),
        "library_version": __version__,
        "created": _utc_now(),
    }
    if provenance is not None:
        manifest["provenance"] = jsonable(provenance, "provenance")
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    return atomic_write(Path(run_dir) / RUN_MANIFEST, lambda temp: temp.write_text(text))


def read_manifest(run_dir: str | os.PathLike[str]) -> dict:
    """run_dir/run.json, checked to hold a settings dict; ValueError names the file."""
    path = Path(run_dir) / RUN_MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable run manifest: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
        raise ValueError(f"{path}: run manifest has no settings object")
    return manifest


_RUN_NAME = re.compile(r"-[0-9a-f]{12}$")


def run_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """Run directories of a store: `<label>-<hash>` (or holding a run.json) directly under the
    root or under `<root>/<dataset>/runs/`, the layout the workflow writes."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"results root {root} is not a directory")
    candidates = [*root.iterdir(), *root.glob("*/runs/*")]
    return sorted(
        p
        for p in candidates
        if p.is_dir()
        and not p.name.startswith(".")
        and (_RUN_NAME.search(p.name) or (p / RUN_MANIFEST).exists())
    )


def _run_files(run_dir: Path, pattern: str) -> list[Path]:
    return sorted(p for p in run_dir.glob(pattern) if not is_temp_file(p))


CATALOG_COLUMNS = [
    "run",
    "label",
    "hash",
    "dataset",
    "arch",
    "seed",
    "label_noise",
    "n_checkpoints",
    "n_interaction_files",
    "settings",
]


def catalog(root: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per run directory with a valid run.json (others are skipped with a warning)."""
    rows = []
    for run_dir in run_dirs(Path(root)):
        if not (run_dir / RUN_MANIFEST).exists():
            continue
        try:
            manifest = read_manifest(run_dir)
        except ValueError as exc:
            warnings.warn(str(exc), stacklevel=2)
            continue
        settings = manifest["settings"]
        rows.append(
            {
                "run": run_dir.name,
                "label": manifest.get("label", run_label(settings)),
                "hash": manifest.get("hash", run_hash(settings)),
                "dataset": _setting_name(settings, "dataset"),
                "arch": _setting_name(settings, "arch"),
                "seed": _setting_name(settings, "seed"),
                "label_noise": _setting_name(settings, "label_noise"),
                "n_checkpoints": len(_run_files(run_dir, "checkpoints/*.pt")),
                "n_interaction_files": len(_run_files(run_dir, "interactions/**/*.h5")),
                "settings": canonical_json(settings),
            }
        )
    return pd.DataFrame(rows, columns=CATALOG_COLUMNS)


def _manifest_problems(run_dir: Path) -> list[str]:
    path = run_dir / RUN_MANIFEST
    if not path.exists():
        return [f"{path}: missing run manifest"]
    try:
        manifest = read_manifest(run_dir)
    except ValueError as exc:
        return [str(exc)]
    expected = run_hash(manifest["settings"])
    problems = []
    if manifest.get("hash") != expected:
        problems.append(f"{path}: hash {manifest.get('hash')!r} != hash of settings {expected}")
    if not run_dir.name.endswith(expected):
        problems.append(f"{path}: directory name does not end with settings hash {expected}")
    return problems


# Directories of a results root that hold no results: job logs and benchmark timings.
UNVERIFIED_DIRS = ("logs", "benchmarks")
_PNG_END = b"IEND\xaeB`\x82"


def _tsv_problem(path: Path) -> str | None:
    data = path.read_bytes()
    if not data:
        return "empty table (no header)"
    if not data.endswith(b"\n"):
        return "truncated table: the last line has no newline"
    try:
        rows = list(csv.reader(io.StringIO(data.decode()), delimiter="\t"))
    except (UnicodeDecodeError, csv.Error) as exc:
        return f"unreadable table: {exc}"
    width = len(rows[0])
    uneven = [number for number, row in enumerate(rows, start=1) if len(row) != width]
    if uneven:
        return f"lines {uneven[:5]} do not have the header's {width} columns (truncated?)"
    return None


def _h5_layout(path: Path) -> str | None:
    """The `layout` attribute of an HDF5 file (None: none, or unreadable here)."""
    try:
        with _open_h5(path, "r") as h5:
            layout = h5.attrs.get("layout")
    except OSError:
        return None
    return layout.decode() if isinstance(layout, bytes) else layout


_EPOCH_FILE = re.compile(r"^epoch_(\d{4,})\.h5$")
_EXTRACTION_DIR = re.compile(r"^([xg])-([0-9a-f]{12})$")
_SETTINGS_KEY = {"x": "extraction", "g": "games"}
_FILES_DIR = {"x": "interactions", "g": "games"}


def _identity_problem(path: Path) -> str | None:
    """A run's results file (`<run>/interactions/x-<hash>/epoch_XXXX.h5`) or games file
    (`<run>/games/g-<hash>/epoch_XXXX.h5`) whose recorded run, epoch or settings are not those
    of its place: copied or renamed."""
    epoch, extraction = _EPOCH_FILE.match(path.name), _EXTRACTION_DIR.match(path.parent.name)
    if epoch is None or extraction is None:
        return None
    kind, place_hash = extraction.groups()
    if path.parent.parent.name != _FILES_DIR[kind]:
        return None
    run = path.parent.parent.parent.name
    with _open_h5(path, "r") as h5:
        model = json.loads(h5.attrs["model"]) or {}
        extra = json.loads(h5.attrs["extra"]) or {}
    found = []
    if isinstance(model, dict) and model.get("run") != run:
        found.append(f"run {model.get('run')!r}")
    if isinstance(model, dict) and model.get("epoch") != int(epoch.group(1)):
        found.append(f"epoch {model.get('epoch')!r}")
    settings = extra.get(_SETTINGS_KEY[kind]) if isinstance(extra, dict) else None
    if isinstance(settings, dict) and _settings_hash(settings) != place_hash:
        found.append(f"{_SETTINGS_KEY[kind]} settings of {kind}-{_settings_hash(settings)}")
    if not found:
        return None
    return (
        f"{path}: the file records {', '.join(found)}, not those of its place (run {run}, "
        f"{path.parent.name}, epoch {int(epoch.group(1))}): copied or renamed?"
    )


def _file_problem(path: Path, root: Path | None = None) -> str | None:
    """What is wrong with one file of a results root (None: nothing found)."""
    from harsanyi.models import CheckpointError, read_checkpoint  # imports torch: slow

    if is_temp_file(path):
        return f"{path}: leftover temporary file of an interrupted write"
    if path.is_symlink():
        target = path.resolve()
        if root is not None and not target.is_relative_to(root.resolve()):
            return f"{path}: symbolic link out of the store (to {target}); not read"
    if not path.is_file():  # a FIFO, socket or device would block or mean nothing here
        return f"{path}: not a regular file; not read"
    suffix = path.suffix
    try:
        if suffix == ".h5":
            layout = _h5_layout(path)
            if layout == GAMES_LAYOUT:
                read_games(path)
                return _identity_problem(path)
            if layout == "joint":
                from harsanyi.joint import read_joint  # a joint extraction (rule joint_extract)

                try:
                    read_joint(path)
                except ValueError as exc:  # names the file
                    return str(exc)
            else:
                verify_results(path)
                return _identity_problem(path)
        elif suffix == ".pt":
            read_checkpoint(path)
        elif suffix == ".json":
            json.loads(path.read_text())
        elif suffix == ".tsv":
            problem = _tsv_problem(path)
            return f"{path}: {problem}" if problem else None
        elif suffix == ".png":
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - len(_PNG_END)))
                if f.read() != _PNG_END:
                    return f"{path}: truncated PNG (no IEND chunk at the end)"
        elif suffix == ".pdf":
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - 1024))
                if b"%%EOF" not in f.read():
                    return f"{path}: truncated PDF (no %%EOF at the end)"
    except (ResultsFileError, CheckpointError) as exc:
        return str(exc)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{path}: unreadable ({type(exc).__name__}: {exc})"
    return None


def _run_content_problems(run_dir: Path) -> list[str]:
    """Checkpoints and metrics.tsv against what run.json says the training wrote."""
    try:
        settings = read_manifest(run_dir)["settings"]
    except ValueError:
        return []  # reported by _manifest_problems
    problems = []
    epochs = settings.get("checkpoint_epochs")
    if isinstance(epochs, list) and not all(
        isinstance(e, int) and not isinstance(e, bool) and 0 <= e < 10**8 for e in epochs
    ):
        return [f"{run_dir / RUN_MANIFEST}: checkpoint_epochs holds other than epoch numbers"]
    if isinstance(epochs, list):
        missing = [
            e for e in epochs if not (run_dir / "checkpoints" / f"epoch_{e:04d}.pt").is_file()
        ]
        if missing:
            problems.append(f"{run_dir / 'checkpoints'}: missing checkpoints of epochs {missing}")
    trained = (settings.get("training") or {}).get("epochs")
    metrics = run_dir / "metrics.tsv"
    if isinstance(trained, int) and not isinstance(trained, bool):
        if not metrics.is_file():
            problems.append(f"{metrics}: missing")
        elif _tsv_problem(metrics) is None:
            rows = metrics.read_bytes().count(b"\n") - 1
            if rows != trained + 1:
                problems.append(
                    f"{metrics}: {rows} epochs, run.json says {trained} (+ epoch 0): truncated?"
                )
    return problems


def _store_files(root: Path) -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(root):
        here = Path(directory)
        subdirectories[:] = sorted(
            name
            for name in subdirectories
            if not name.startswith(".")
            and not (here == root and name in UNVERIFIED_DIRS)
            and not (name == "resume" and here.parent == root)
        )
        files += [here / name for name in names]
    return sorted(files)


def resume_leftovers(root: str | os.PathLike[str]) -> list[Path]:
    """Resume states under `<root>/<dataset>/resume/`: trainings interrupted, or running now."""
    return sorted(p for p in Path(root).glob("*/resume/*") if p.is_dir())


def verify_store(root: str | os.PathLike[str]) -> list[str]:
    """Problems found under a results root, one string per problem, each naming its file.

    Every file kind the workflow lays down is read back: results files, checkpoints
    (weights-only), run manifests against their hashes, sample manifests and other JSON,
    tables (complete lines, one column count), figures (complete PNG/PDF), metrics.tsv and
    checkpoints against run.json, results files' recorded run, epoch and extraction against
    their place; leftover temporary files, resume states, links out of the store and files
    that are not regular files (FIFOs, sockets: never opened) are problems.  A malformed file
    is reported with its path and the check goes on.  Job logs and benchmarks are not checked.
    """
    root = Path(root)
    try:
        runs = run_dirs(root)
    except FileNotFoundError as exc:
        return [str(exc)]
    problems = []
    for run_dir in runs:
        for check in (_manifest_problems, _run_content_problems):
            try:
                problems += check(run_dir)
            except Exception as exc:  # a crafted manifest must not stop the other runs' checks
                problems.append(f"{run_dir / RUN_MANIFEST}: {type(exc).__name__}: {exc}")
    problems += [
        f"{path}: resume state of an interrupted (or running) training; rerun the study to "
        "finish it, or remove it with `harsanyi store gc --apply`"
        for path in resume_leftovers(root)
    ]
    manifests = {run_dir / RUN_MANIFEST for run_dir in runs}  # checked above
    for path in _store_files(root):
        if path in manifests:
            continue
        try:
            problem = _file_problem(path, root)
        except Exception as exc:  # any file, however malformed, is one problem, not the end
            problem = f"{path}: unreadable ({type(exc).__name__}: {exc})"
        if problem is not None:
            problems.append(problem)
    return problems
