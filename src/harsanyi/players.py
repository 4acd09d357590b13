"""Players: which parts of an input are the n players of a game, in one vocabulary.

A description is a small typed object; its dict (`to_dict`, read back by
`Players.from_dict`) is the form stored in sample manifests (`players` of `sel-<hash>.json`)
and in the `players` attribute of every results file:

    {"type": "patches", "image_size": [H, W], "grid": [rows, cols], "cells": [[r, c], ...]}
    {"type": "features", "columns": [f, ...]}
    {"type": "tokens", "n": n, "positions": {split: [[p, ...] per sample], ...}}

Token players differ per sample; a results file keeps `{"type": "tokens", "n": n}` and
stores the positions as a dataset (`stored()` gives that form).

Each description type serves one input kind of `harsanyi.data` (`PLAYERS_FOR_INPUT`) and
knows how a config's `players` request for that kind is checked (`check_request`) and
turned into a description (`choose`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from harsanyi.masks import check_n


class PlayerRequestError(ValueError):
    """A config's players request that cannot be met; the message names the key."""


class Players(ABC):
    """The n players of one input kind, the same vocabulary everywhere."""

    type: ClassVar[str]  # the stored name: "patches", "features" or "tokens"
    input_kind: ClassVar[str]  # the DatasetSpec kind the players belong to
    aligned: ClassVar[bool]  # player j is the same part of every sample
    baselines: ClassVar[tuple[str, ...]]  # baseline types these players allow, default first
    fields: ClassVar[frozenset[str]]  # the keys of the stored dict besides "type"
    optional_fields: ClassVar[frozenset[str]] = frozenset()
    n: int  # the number of players

    @abstractmethod
    def to_dict(self) -> dict[str, Any]: ...

    @classmethod
    @abstractmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> Players: ...

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Players:
        """The description `data` (as `to_dict` writes it); `Players.from_dict` picks the
        type from data["type"], a subclass accepts only its own type."""
        if not isinstance(data, Mapping):
            raise TypeError(f"players must be a dict with a 'type', got {data!r}")
        name = data.get("type")
        if name not in PLAYER_TYPES:
            raise ValueError(
                f"players: unknown type {name!r} in {_short(data)}; known: {sorted(PLAYER_TYPES)}"
            )
        kind = PLAYER_TYPES[name]
        if not issubclass(kind, cls):
            raise ValueError(f"players: expected type {cls.type!r}, got {name!r}")
        keys = set(data) - {"type"}
        missing = sorted(kind.fields - kind.optional_fields - keys)
        unknown = sorted(keys - kind.fields)
        if missing or unknown:
            raise ValueError(
                f"players of type {name!r}: missing keys {missing}, unknown keys {unknown} "
                f"in {_short(data)}"
            )
        return kind._from_fields(data)

    def stored(self) -> Players:
        """The description a results file keeps."""
        return self

    @classmethod
    @abstractmethod
    def check_request(
        cls, request: Mapping[str, Any], input_shape: tuple[int, ...], key: str, dataset: str
    ) -> None:
        """Raise PlayerRequestError (naming `key`) if `request` cannot be met on inputs of
        `input_shape`."""

    @classmethod
    @abstractmethod
    def choose(
        cls,
        request: Mapping[str, Any],
        input_shape: tuple[int, ...],
        dataset: Any,
        samples: Mapping[str, Sequence[int]],
    ) -> Players:
        """The players a checked `request` asks for; `dataset` and `samples` (split name →
        positions of the explained samples) matter only for players chosen per sample."""

    def element_index(self, input_shape: tuple[int, ...]) -> torch.Tensor:
        """Feature mask of one input of `input_shape`: the player of every element, n for
        elements of no player.  Only for aligned players."""
        raise ValueError(
            f"{self.type!r} players differ per sample: they have no single element index"
        )


def _short(data: Mapping[str, Any], limit: int = 200) -> str:
    text = repr(dict(data))
    return text if len(text) <= limit else text[:limit] + "…"


def _int_list(values: Any, what: str) -> list[int]:
    if isinstance(values, (np.ndarray, torch.Tensor)) and values.ndim == 1:
        values = values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{what} must be a list of integers, got {values!r}")
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{what} must be a list of integers, got {values!r}")
        out.append(int(value))
    return out


def _pair(values: Any, what: str) -> tuple[int, int]:
    pair = _int_list(values, what)
    if len(pair) != 2:
        raise ValueError(f"{what} must be two integers, got {values!r}")
    return pair[0], pair[1]


# ----------------------------------------------------------------------------- image patches


def _cell_of_pixels(pixels: int, cells: int) -> torch.Tensor:
    """Grid index of every pixel along one axis: cell k starts at pixel k·pixels//cells."""
    starts = torch.arange(1, cells) * pixels // cells
    return torch.bucketize(torch.arange(pixels), starts, right=True)


@dataclass
class PatchGrid(Players):
    """Image players: cells (row, col) of a grid × grid partition, the same for every sample.

    Cell (r, c) covers pixel rows [r·H//gh, (r+1)·H//gh) and columns [c·W//gw, (c+1)·W//gw).
    A grid equal to the image size makes every cell one pixel.
    """

    type: ClassVar[str] = "patches"
    input_kind: ClassVar[str] = "image"
    aligned: ClassVar[bool] = True
    baselines: ClassVar[tuple[str, ...]] = ("zero", "mean", "feature_map")
    fields: ClassVar[frozenset[str]] = frozenset({"image_size", "grid", "cells"})

    image_size: tuple[int, int]
    grid: tuple[int, int]
    cells: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image_size = _pair(self.image_size, "image_size")
        self.grid = _pair(self.grid, "grid")
        self.cells = [_pair(cell, "a cell") for cell in self.cells]
        (height, width), (rows, cols) = self.image_size, self.grid
        if height < 1 or width < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if not (1 <= rows <= height and 1 <= cols <= width):
            raise ValueError(f"grid {self.grid} must lie within image_size {self.image_size}")
        for cell in self.cells:
            if not (0 <= cell[0] < rows and 0 <= cell[1] < cols):
                raise ValueError(f"cell {cell} lies outside the {rows}x{cols} grid")
        if len(set(self.cells)) != len(self.cells):
            raise ValueError(f"cells must be distinct, got {self.cells}")
        check_n(len(self.cells))

    @property
    def n(self) -> int:
        return len(self.cells)

    @classmethod
    def random(
        cls, image_size: tuple[int, int], grid: tuple[int, int], n: int, seed: int
    ) -> PatchGrid:
        """n distinct cells drawn with `seed`, sorted row-major."""
        total = int(grid[0]) * int(grid[1])
        if not 0 <= n <= total:
            raise ValueError(f"cannot choose n={n} cells from a {grid[0]}x{grid[1]} grid")
        chosen = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
        cells = [(int(i) // int(grid[1]), int(i) % int(grid[1])) for i in chosen]
        return cls(image_size, grid, cells)

    def pixel_masks(self) -> torch.Tensor:
        """(n, H, W) bool: pixel_masks[j] marks the pixels of player j."""
        (height, width), (rows, cols) = self.image_size, self.grid
        r = torch.tensor([cell[0] for cell in self.cells], dtype=torch.long)
        c = torch.tensor([cell[1] for cell in self.cells], dtype=torch.long)
        pixel_row = _cell_of_pixels(height, rows)
        pixel_col = _cell_of_pixels(width, cols)
        in_row = pixel_row[None, :] == r[:, None]
        in_col = pixel_col[None, :] == c[:, None]
        return in_row[:, :, None] & in_col[:, None, :]

    def element_index(self, input_shape: tuple[int, ...]) -> torch.Tensor:
        if len(input_shape) < 2 or tuple(input_shape[-2:]) != self.image_size:
            raise ValueError(
                f"inputs of shape {tuple(input_shape)} do not match the players' image_size "
                f"{self.image_size}"
            )
        regions = self.pixel_masks()
        index = torch.full(regions.shape[1:], self.n, dtype=torch.long)
        for j in range(self.n):
            index[regions[j]] = j
        return index.expand(input_shape).clone()

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "image_size": list(self.image_size),
            "grid": list(self.grid),
            "cells": [list(cell) for cell in self.cells],
        }

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> PatchGrid:
        cells = data["cells"]
        if not isinstance(cells, Sequence):
            raise ValueError(f"players.cells must be a list of [row, col], got {cells!r}")
        return cls(data["image_size"], data["grid"], list(cells))

    @classmethod
    def check_request(
        cls, request: Mapping[str, Any], input_shape: tuple[int, ...], key: str, dataset: str
    ) -> None:
        n = request["n"]
        grid = request.get("grid")
        if grid is None:
            raise PlayerRequestError(f"{key}.grid is required for image dataset {dataset!r}")
        height, width = input_shape[-2:]
        if grid[0] > height or grid[1] > width:
            raise PlayerRequestError(f"{key}.grid {grid} is finer than the {height}×{width} image")
        cells = request.get("cells")
        if cells is not None:
            if len(cells) != n:
                raise PlayerRequestError(f"{key}.cells lists {len(cells)} cells but n is {n}")
            for cell in cells:
                if not (0 <= cell[0] < grid[0] and 0 <= cell[1] < grid[1]):
                    raise PlayerRequestError(
                        f"{key}.cells: cell {cell} lies outside the {grid} grid"
                    )
            if len({tuple(c) for c in cells}) != n:
                raise PlayerRequestError(f"{key}.cells has repeated cells")
        elif n > grid[0] * grid[1]:
            raise PlayerRequestError(
                f"{key}.n = {n} exceeds the {grid[0] * grid[1]} cells of grid {grid}"
            )

    @classmethod
    def choose(
        cls,
        request: Mapping[str, Any],
        input_shape: tuple[int, ...],
        dataset: Any,
        samples: Mapping[str, Sequence[int]],
    ) -> PatchGrid:
        image_size = (input_shape[-2], input_shape[-1])
        if request.get("cells") is not None:
            return cls(image_size, request["grid"], request["cells"])
        return cls.random(image_size, request["grid"], request["n"], request["seed"])


# ----------------------------------------------------------------------------- tabular columns


@dataclass
class FeatureColumns(Players):
    """Tabular players: columns of (B, F) inputs, the same for every sample."""

    type: ClassVar[str] = "features"
    input_kind: ClassVar[str] = "tabular"
    aligned: ClassVar[bool] = True
    baselines: ClassVar[tuple[str, ...]] = ("zero", "mean")
    fields: ClassVar[frozenset[str]] = frozenset({"columns"})

    columns: list[int]

    def __post_init__(self) -> None:
        self.columns = _int_list(self.columns, "feature columns")
        if any(c < 0 for c in self.columns):
            raise ValueError(f"feature columns must be non-negative, got {self.columns}")
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"feature players must be distinct, got {self.columns}")
        check_n(len(self.columns))

    @property
    def n(self) -> int:
        return len(self.columns)

    def check_width(self, width: int) -> None:
        """Raise if a column lies outside inputs of `width` features."""
        for column in self.columns:
            if column >= width:
                raise ValueError(f"feature player {column} outside the {width} columns")

    def element_index(self, input_shape: tuple[int, ...]) -> torch.Tensor:
        if len(input_shape) != 1:
            raise ValueError(f"tabular inputs are (F,) per sample, got {tuple(input_shape)}")
        self.check_width(input_shape[0])
        index = torch.full(input_shape, self.n, dtype=torch.long)
        index[torch.as_tensor(self.columns, dtype=torch.long)] = torch.arange(self.n)
        return index

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "columns": list(self.columns)}

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> FeatureColumns:
        return cls(data["columns"])

    @classmethod
    def check_request(
        cls, request: Mapping[str, Any], input_shape: tuple[int, ...], key: str, dataset: str
    ) -> None:
        n = request["n"]
        features = request.get("features")
        count = input_shape[0]
        if features is not None:
            if len(features) != n:
                raise PlayerRequestError(
                    f"{key}.features lists {len(features)} columns but n is {n}"
                )
            bad = [f for f in features if not 0 <= f < count]
            if bad:
                raise PlayerRequestError(
                    f"{key}.features {bad} outside the {count} columns of {dataset!r}"
                )
            if len(set(features)) != n:
                raise PlayerRequestError(f"{key}.features has repeated columns: {features}")
        elif n > count:
            raise PlayerRequestError(f"{key}.n = {n} exceeds the {count} features of {dataset!r}")

    @classmethod
    def choose(
        cls,
        request: Mapping[str, Any],
        input_shape: tuple[int, ...],
        dataset: Any,
        samples: Mapping[str, Sequence[int]],
    ) -> FeatureColumns:
        features = request.get("features")
        if features is None:
            rng = np.random.default_rng(request["seed"])
            features = sorted(rng.choice(input_shape[0], size=request["n"], replace=False).tolist())
        return cls(features)


# ----------------------------------------------------------------------------- token positions


def token_counts(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None, special_ids: Sequence[int]
) -> torch.Tensor:
    """(B,) long: the attended, non-special tokens of each sample (those players can be)."""
    specials = torch.as_tensor(list(special_ids), dtype=input_ids.dtype)
    candidate = ~torch.isin(input_ids.cpu(), specials)
    if attention_mask is not None:
        candidate &= attention_mask.cpu().bool()
    return candidate.sum(dim=1)


def choose_token_players(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    special_ids: Sequence[int],
    n: int,
    seed: int,
) -> torch.Tensor:
    """(B, n) long: n distinct positions per sample, drawn with `seed` among the attended,
    non-special tokens, sorted in text order."""
    check_n(n)
    specials = torch.as_tensor(list(special_ids), dtype=input_ids.dtype)
    candidate = ~torch.isin(input_ids.cpu(), specials)
    if attention_mask is not None:
        candidate &= attention_mask.cpu().bool()
    counts = candidate.sum(dim=1)
    short = (counts < n).nonzero()
    if len(short):
        sample = int(short[0, 0])
        raise ValueError(
            f"sample {sample} has only {int(counts[sample])} non-special tokens, fewer than n={n}"
        )
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(input_ids.shape, generator=generator)
    scores[~candidate] = float("inf")
    chosen = scores.topk(n, dim=1, largest=False).indices
    return chosen.sort(dim=1).values


@dataclass
class TokenPositions(Players):
    """Text players: n token positions per sample, chosen per sample.

    `positions` maps a split name to one row of n positions per explained sample of that
    split, in the manifest's order; a results file keeps only n (`stored()`).
    """

    type: ClassVar[str] = "tokens"
    input_kind: ClassVar[str] = "text"
    aligned: ClassVar[bool] = False
    baselines: ClassVar[tuple[str, ...]] = ("mask_token", "pad_token")
    fields: ClassVar[frozenset[str]] = frozenset({"n", "positions"})
    optional_fields: ClassVar[frozenset[str]] = frozenset({"positions"})

    n: int
    positions: dict[str, list[list[int]]] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)):
            raise ValueError(f"token players: n must be an integer, got {self.n!r}")
        self.n = check_n(int(self.n))
        if self.positions is None:
            return
        if not isinstance(self.positions, Mapping):
            raise ValueError(
                f"token players: positions must map split → rows, got {self.positions!r}"
            )
        table = {}
        for split, rows in self.positions.items():
            table[split] = [_int_list(row, f"token positions of split {split!r}") for row in rows]
            for i, row in enumerate(table[split]):
                if len(row) != self.n or len(set(row)) != self.n or any(p < 0 for p in row):
                    raise ValueError(
                        f"token players: sample {i} of split {split!r} has positions {row}, "
                        f"not {self.n} distinct non-negative ones"
                    )
        self.positions = table

    def stored(self) -> TokenPositions:
        return TokenPositions(self.n)

    def of_samples(
        self, split: str, split_samples: Sequence[int], samples: Sequence[int]
    ) -> torch.Tensor:
        """(len(samples), n) long: the players of `samples`, positions in the dataset split
        whose explained samples are `split_samples` (the rows of `positions[split]`)."""
        if self.positions is None or split not in self.positions:
            have = sorted(self.positions or {})
            raise KeyError(f"token players hold no positions for split {split!r}; have {have}")
        rows = self.positions[split]
        if len(rows) != len(split_samples):
            raise ValueError(
                f"token players of split {split!r}: {len(rows)} rows for "
                f"{len(split_samples)} samples"
            )
        of_sample = dict(zip(split_samples, rows, strict=True))
        missing = [s for s in samples if s not in of_sample]
        if missing:
            raise KeyError(f"token players of split {split!r} hold no row for samples {missing}")
        chosen = [of_sample[s] for s in samples]
        return torch.as_tensor(chosen, dtype=torch.long).reshape(len(samples), self.n)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "n": self.n}
        if self.positions is not None:
            out["positions"] = {
                split: [list(r) for r in rows] for split, rows in self.positions.items()
            }
        return out

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> TokenPositions:
        return cls(data["n"], data.get("positions"))

    @classmethod
    def check_request(
        cls, request: Mapping[str, Any], input_shape: tuple[int, ...], key: str, dataset: str
    ) -> None:
        n = request["n"]
        positions = request.get("positions")
        if positions is not None:
            if len(positions) != n:
                raise PlayerRequestError(
                    f"{key}.positions lists {len(positions)} positions but n is {n}"
                )
            bad = [p for p in positions if not 0 <= p < input_shape[0]]
            if bad:
                raise PlayerRequestError(
                    f"{key}.positions {bad} outside the {input_shape[0]} tokens of a sequence"
                )
            if len(set(positions)) != n:
                raise PlayerRequestError(f"{key}.positions has repeated positions: {positions}")
        if n > input_shape[0] - 2:
            raise PlayerRequestError(
                f"{key}.n = {n} exceeds the {input_shape[0] - 2} tokens of a sequence"
            )

    @classmethod
    def choose(
        cls,
        request: Mapping[str, Any],
        input_shape: tuple[int, ...],
        dataset: Any,
        samples: Mapping[str, Sequence[int]],
    ) -> TokenPositions:
        table: dict[str, list[list[int]]] = {}
        for split_name, rows in samples.items():
            split = dataset.test if split_name == "test" else dataset.train
            if request.get("positions") is not None:
                table[split_name] = [list(request["positions"]) for _ in rows]
                continue
            index = torch.as_tensor(rows, dtype=torch.long)
            chosen = choose_token_players(
                split.x[index],
                split.attention_mask[index],
                dataset.special_token_ids,
                request["n"],
                request["seed"],
            )
            table[split_name] = chosen.tolist()
        return cls(request["n"], table)


PLAYER_TYPES: dict[str, type[Players]] = {
    kind.type: kind for kind in (PatchGrid, FeatureColumns, TokenPositions)
}
PLAYERS_FOR_INPUT: dict[str, type[Players]] = {
    kind.input_kind: kind for kind in PLAYER_TYPES.values()
}


def players_for_input(input_kind: str) -> type[Players]:
    """The description type of the players of inputs of `input_kind` (a DatasetSpec kind)."""
    if input_kind not in PLAYERS_FOR_INPUT:
        raise ValueError(
            f"no players for inputs of kind {input_kind!r}; known: {sorted(PLAYERS_FOR_INPUT)}"
        )
    return PLAYERS_FOR_INPUT[input_kind]


def as_players(players: Players | Mapping[str, Any]) -> Players:
    """`players` as a description, reading a stored dict."""
    return players if isinstance(players, Players) else Players.from_dict(players)
