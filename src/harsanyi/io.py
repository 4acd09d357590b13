"""Writing files atomically, and the hash that names settings in the store.

Every file the library writes (HDF5 results, checkpoints, TSV tables, JSON, figures) goes
through `atomic_path`: the writer fills a temporary file in the target's directory, which is
fsynced and renamed onto the target, and removed if anything fails.  A reader (or a killed
job's rerun) therefore sees either the complete new file or the old one.

`settings_hash` names everything the store keeps by its settings: run directories
(`store.run_hash`), sample selections (`sel-`), extractions (`x-`) and studies.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# `atomic_path`'s temporary names, and ".<name>.<pid>.tmp", what training wrote before it.
_TEMP_NAME = re.compile(r"^\..+(\.tmp-[0-9a-f]{8}|\.[0-9]+\.tmp$)")


# --------------------------------------------------------------------------- atomic writes


def _temp_path_for(path: Path) -> Path:
    # Keep the suffix: some writers (matplotlib, numpy) choose the format from it.
    return path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")


def is_temp_file(path: str | os.PathLike[str]) -> bool:
    """Whether `path` has the name `atomic_path` gives its temporary files."""
    return bool(_TEMP_NAME.match(Path(path).name))


# Below this many free bytes a failed write is taken for a full disk: writers report one in
# their own words (torch: "file write failed", HDF5: "Can't write data"), often without errno.
DISK_FULL_MARGIN = 2**20


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    try:
        _fsync(directory)
    except OSError as error:
        if error.errno != errno.EINVAL:  # a file system that cannot sync directories
            raise


def _disk_full(error: BaseException, directory: Path) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(directory).free < DISK_FULL_MARGIN
    except OSError:
        return False


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success fsync it, move it onto `path` and
    fsync the directory, so that the rename survives a crash of the node.

    The temporary file is removed if the body raises, so `path` is either the complete new
    file or untouched.  A write that fails on a full disk (or quota) raises OSError(ENOSPC)
    naming `path`, whatever the writer's own error said.  Parent directories are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_path_for(target)
    try:
        yield temp
        if not temp.is_file():
            raise FileNotFoundError(f"writer for {target} produced no file at {temp}")
        _fsync(temp)
        os.replace(temp, target)
        # rename() of two hard links to one file does nothing and succeeds (POSIX), leaving
        # the temporary name behind: the case of a checkpoint linked again from resume state.
        temp.unlink(missing_ok=True)
        _fsync_directory(target.parent)
    except Exception as error:
        full = _disk_full(error, target.parent)
        temp.unlink(missing_ok=True)
        if full:
            raise OSError(
                errno.ENOSPC, f"No space left on device while writing {target}: {error}"
            ) from error
        raise
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], write_fn: Callable[[Path], object]) -> Path:
    """Call `write_fn(temp_path)` and move the result onto `path` atomically."""
    with atomic_path(path) as temp:
        write_fn(temp)
    return Path(path)


def write_text(text: str, path: str | os.PathLike[str]) -> Path:
    """`text` as the file `path`, atomically."""
    return atomic_write(path, lambda temp: temp.write_text(text))


def write_tsv(table: Any, path: str | os.PathLike[str]) -> Path:
    """A pandas DataFrame as a tab-separated file without the index, atomically."""
    return atomic_write(path, lambda temp: table.to_csv(temp, sep="\t", index=False))


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """`obj` as indented JSON (numbers JSON lacks, e.g. numpy's, as floats), atomically."""
    return write_text(json.dumps(obj, indent=1, default=float) + "\n", path)


def save_torch(obj: Any, path: str | os.PathLike[str]) -> Path:
    """`torch.save(obj)` to `path`, atomically (checkpoints and resume state).

    Saved through a file object: torch names the archive inside after a path it is given, so
    the random temporary name would make equal objects differ byte for byte.
    """
    import torch

    def save(temp: Path) -> None:
        with open(temp, "wb") as f:
            torch.save(obj, f)

    return atomic_write(path, save)


# --------------------------------------------------------------------------- settings hash


def jsonable(value: Any, where: str = "settings") -> Any:
    """`value` as plain JSON types, or a TypeError / ValueError naming where it sits."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not np.isfinite(value):
            raise ValueError(f"{where} is {value!r}; JSON needs finite numbers")
        return value
    if isinstance(value, np.generic):
        return jsonable(value.item(), where)
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), where)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has non-string key {key!r}")
            out[key] = jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"{where} = {value!r} of type {type(value).__name__} is not JSON data")


def canonical_json(settings: Any) -> str:
    """Settings as JSON with sorted keys and no whitespace: what `settings_hash` hashes."""
    return json.dumps(jsonable(settings), sort_keys=True, separators=(",", ":"))


def settings_hash(settings: Any, length: int = 12) -> str:
    """The first `length` hex digits of the sha256 of the settings' canonical JSON.

    The one hash of the store: run directories, `sel-` and `x-` ids and study ids.  For
    plain JSON data (what configs are) it equals both hashers it replaced, so every id in an
    existing store still resolves (tests/test_ids.py pins ids computed before the merge).
    """
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()[:length]
