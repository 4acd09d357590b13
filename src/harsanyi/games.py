"""Games from models: v(x_S) on all 2^n coalitions of a batch of samples.

A *masker* knows the players of an input kind (image patches, feature-map patches, tabular
columns, token positions) and how to replace absent players by the baseline.  `game_values`
flattens the B·2^n (sample, coalition) pairs into rows, sample-major, and runs them through
the model in chunks whose size comes from a memory budget; the masked inputs of a chunk are
built with one gather and one `torch.where`, never a Python loop over coalitions.  Because
chunks may split one sample's 2^n masks, only a single masked input (plus its activations)
must fit in the budget.

Row r of the flat order holds sample r // 2^n under coalition r % 2^n, with the mask-index
convention of `harsanyi.masks` (player j present iff bit n-1-j is set).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harsanyi.masks import check_n, coalition_matrix

OutputFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ----------------------------------------------------------------------------- outputs


def log_odds(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) log-odds of class y: z_y − logsumexp_{j≠y} z_j, computed stably."""
    if logits.shape[-1] < 2:
        raise ValueError(f"log_odds needs at least 2 classes, logits have {logits.shape[-1]}")
    target = logits.gather(-1, y[:, None])[:, 0]
    others = logits.scatter(-1, y[:, None], float("-inf"))
    return target - torch.logsumexp(others, dim=-1)


def logit(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) raw logit z_y."""
    return logits.gather(-1, y[:, None])[:, 0]


def log_softmax(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) log p(y | x)."""
    return torch.log_softmax(logits, dim=-1).gather(-1, y[:, None])[:, 0]


OUTPUTS: dict[str, OutputFn] = {"log_odds": log_odds, "logit": logit, "log_softmax": log_softmax}


# ----------------------------------------------------------------------------- players


class Players(Protocol):
    """A fixed set of n players with a JSON-able description."""

    @property
    def n(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


def _cell_of_pixels(pixels: int, cells: int) -> torch.Tensor:
    """Grid index of every pixel along one axis: cell k starts at pixel k·pixels//cells."""
    starts = torch.arange(1, cells) * pixels // cells
    return torch.bucketize(torch.arange(pixels), starts, right=True)


@dataclass
class PatchGrid:
    """Image players: cells (row, col) of a grid × grid partition, the same for every sample.

    Cell (r, c) covers pixel rows [r·H//gh, (r+1)·H//gh) and columns [c·W//gw, (c+1)·W//gw).
    A grid equal to the image size makes every cell one pixel.
    """

    image_size: tuple[int, int]
    grid: tuple[int, int]
    cells: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.image_size = (int(self.image_size[0]), int(self.image_size[1]))
        self.grid = (int(self.grid[0]), int(self.grid[1]))
        self.cells = [(int(r), int(c)) for r, c in self.cells]
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "patch_grid",
            "image_size": list(self.image_size),
            "grid": list(self.grid),
            "cells": [list(cell) for cell in self.cells],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PatchGrid:
        if data.get("kind", "patch_grid") != "patch_grid":
            raise ValueError(f"not a patch_grid description: kind={data.get('kind')!r}")
        return cls(
            tuple(data["image_size"]), tuple(data["grid"]), [tuple(c) for c in data["cells"]]
        )


# ----------------------------------------------------------------------------- maskers


class Masker(Protocol):
    """How one kind of input is masked and fed to the model.

    `forward` receives the samples a chunk touches (`x`, `attention_mask`, and where they
    sit in the whole batch, `samples`), which sample each row uses (`rows`, indices into x)
    and each row's coalition (`masks`, (R,) mask indices), and returns the (R, C) logits.
    """

    @property
    def n(self) -> int: ...

    def check(self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        """Validate the inputs cheaply, before any forward pass."""
        ...

    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        """Bytes the masked input of one row takes while a chunk is built."""
        ...

    def attached(self, model: nn.Module) -> Any:
        """Context manager holding whatever hooks the masker needs during extraction."""
        ...

    def forward(
        self,
        model: nn.Module,
        x: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor,
        attention_mask: torch.Tensor | None,
        samples: slice,
    ) -> torch.Tensor: ...

    def to_dict(self) -> dict[str, Any]: ...


def _present(masks: torch.Tensor, n: int) -> torch.Tensor:
    """(R, n) bool rows of `coalition_matrix(n)` for the mask indices `masks`."""
    shifts = torch.arange(n - 1, -1, -1, device=masks.device)
    return ((masks[:, None] >> shifts) & 1).bool()


def _keep_map(present: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """(R, *region shape) bool: True where no absent player's region covers the element.

    Elements outside every player always stay; an element shared by a present and an
    absent player (possible after pooling to a coarse map) is removed.
    """
    absent = (~present).to(torch.float32)
    covered = absent @ regions.flatten(1).to(torch.float32)
    return (covered == 0).view(present.shape[0], *regions.shape[1:])


KEEP_TABLE_LIMIT = 2**26  # elements; larger keep tables are built chunk by chunk


class _KeepMasks:
    """Keep masks of players' regions (n, *shape) for rows of mask indices, from a table
    of all 2^n coalitions (built once per device) when it is small enough."""

    def __init__(self, regions: torch.Tensor) -> None:
        self.regions = regions
        self._tables: dict[torch.device, torch.Tensor] = {}

    def _table(self, device: torch.device) -> torch.Tensor | None:
        n = self.regions.shape[0]
        if 2**n * self.regions[0].numel() > KEEP_TABLE_LIMIT:
            return None
        if device not in self._tables:
            self._tables[device] = _keep_map(coalition_matrix(n, device), self.regions.to(device))
        return self._tables[device]

    def rows(self, masks: torch.Tensor) -> torch.Tensor:
        table = self._table(masks.device)
        if table is None:
            return _keep_map(_present(masks, self.regions.shape[0]), self.regions.to(masks.device))
        return table[masks]

    def apply(
        self, x: torch.Tensor, rows: torch.Tensor, masks: torch.Tensor, baseline: torch.Tensor
    ) -> torch.Tensor:
        """Row r: x[rows[r]] with the regions outside coalition masks[r] set to baseline.
        The regions cover the last dimensions of x; dimensions between stay whole."""
        size, shape = 2 ** self.regions.shape[0], self.regions.shape[1:]
        middle = [1] * (x.dim() - 1 - len(shape))
        table = self._table(x.device)
        if table is not None and rows.shape[0] == x.shape[0] * size:
            # the chunk holds whole samples, all coalitions in order: broadcast, no gathers
            keep = table.view(size, *middle, *shape)
            return torch.where(keep, x[:, None], baseline).flatten(0, 1)
        keep = self.rows(masks).view(rows.shape[0], *middle, *shape)
        return torch.where(keep, x[rows], baseline)


def _baseline_tensor(
    baseline: str | torch.Tensor, mean: torch.Tensor | None, what: str
) -> torch.Tensor | None:
    """Tensor baseline, or None for zero."""
    if isinstance(baseline, torch.Tensor):
        return baseline
    if baseline == "zero":
        return None
    if baseline == "mean":
        if mean is None:
            raise ValueError(f"{what}: baseline='mean' needs the mean tensor (mean=...)")
        return torch.as_tensor(mean)
    raise ValueError(f"{what}: baseline must be 'zero', 'mean' or a tensor, got {baseline!r}")


class ImageMasker:
    """Patches of the input image set to a baseline: zero in model input space, a given
    per-channel mean ((C,) tensor), or any tensor broadcastable to one sample."""

    def __init__(
        self,
        players: PatchGrid,
        baseline: Literal["zero", "mean"] | torch.Tensor = "zero",
        mean: torch.Tensor | None = None,
    ) -> None:
        self.players = players
        self.baseline_name = baseline if isinstance(baseline, str) else "tensor"
        self.baseline = _baseline_tensor(baseline, mean, "ImageMasker")
        self.keep = _KeepMasks(players.pixel_masks())

    @property
    def n(self) -> int:
        return self.players.n

    def _baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.baseline is None:
            return torch.zeros((), dtype=x.dtype, device=x.device)
        b = self.baseline.to(device=x.device, dtype=x.dtype)
        if b.dim() == 1 and x.dim() == 4 and b.shape[0] == x.shape[1]:
            b = b.view(-1, 1, 1)  # per-channel mean
        return b

    def check(self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        if x.dim() < 3 or tuple(x.shape[-2:]) != self.players.image_size:
            raise ValueError(
                f"images of shape {tuple(x.shape)} do not match the players' image_size "
                f"{self.players.image_size} (expected (B, [C,] H, W))"
            )
        b = self._baseline_for(x[:1])
        try:
            torch.broadcast_shapes(b.shape, x.shape[1:])
        except RuntimeError as err:
            raise ValueError(
                f"baseline of shape {tuple(b.shape)} does not broadcast to one image "
                f"{tuple(x.shape[1:])}"
            ) from err

    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        pixels = self.players.image_size[0] * self.players.image_size[1]
        return 2 * x[0].numel() * x.element_size() + pixels  # gathered + masked + keep mask

    def attached(self, model: nn.Module) -> Any:
        return nullcontext()

    def forward(
        self,
        model: nn.Module,
        x: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor,
        attention_mask: torch.Tensor | None,
        samples: slice,
    ) -> torch.Tensor:
        return model(self.keep.apply(x, rows, masks, self._baseline_for(x)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "masker": "image",
            "baseline": self.baseline_name,
            "players": self.players.to_dict(),
        }


def _module_named(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name in modules:
        return modules[name]
    names = [n for n in modules if n]
    near = difflib.get_close_matches(name, names, n=8, cutoff=0.5) or names[:20]
    raise KeyError(f"model has no module named {name!r}; nearby names: {near}")


def _resize_regions(regions: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(n, H, W) bool pixel masks → (n, h, w) bool: adaptive max pooling when shrinking
    (a map cell belongs to a player if any of its pixels does), nearest when growing."""
    r = regions.to(torch.float32)[:, None]
    if size[0] <= r.shape[-2] and size[1] <= r.shape[-1]:
        r = F.adaptive_max_pool2d(r, size)
    else:
        r = F.interpolate(r, size=size, mode="nearest")
    return r[:, 0] > 0


class FeatureMapMasker:
    """Patches masked on the (B, C, h, w) output of a named module, e.g. "features.3" after
    a ReLU, with baseline zero on that map.  Each sample is fed unchanged, once per row; a
    forward hook multiplies the module's output by the row's keep mask, the pixel masks
    pooled to (h, w)."""

    def __init__(self, players: PatchGrid, layer: str) -> None:
        self.players = players
        self.layer = layer
        self.regions = players.pixel_masks()
        self._masks: torch.Tensor | None = None
        self._keep: dict[tuple[int, int], _KeepMasks] = {}

    @property
    def n(self) -> int:
        return self.players.n

    def check(self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        _module_named(model, self.layer)
        if x.dim() < 3 or tuple(x.shape[-2:]) != self.players.image_size:
            raise ValueError(
                f"images of shape {tuple(x.shape)} do not match the players' image_size "
                f"{self.players.image_size}"
            )

    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        return x[0].numel() * x.element_size()

    def map_regions(self, size: tuple[int, int]) -> torch.Tensor:
        """(n, h, w) bool: the players' regions at the feature map's resolution."""
        if size not in self._keep:
            self._keep[size] = _KeepMasks(_resize_regions(self.regions, size))
        return self._keep[size].regions

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
        masks = self._masks
        if masks is None:
            return output
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ValueError(f"layer {self.layer!r} must output (B, C, h, w), got {shape}")
        if output.shape[0] != masks.shape[0]:
            raise ValueError(
                f"layer {self.layer!r} output batch {output.shape[0]} != rows {masks.shape[0]}"
            )
        size = (output.shape[-2], output.shape[-1])
        self.map_regions(size)
        keep = self._keep[size].rows(masks.to(output.device))[:, None]
        return output * keep.to(output.dtype)

    @contextmanager
    def attached(self, model: nn.Module) -> Iterator[None]:
        handle = _module_named(model, self.layer).register_forward_hook(self._hook)
        try:
            yield
        finally:
            handle.remove()
            self._masks = None

    def forward(
        self,
        model: nn.Module,
        x: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor,
        attention_mask: torch.Tensor | None,
        samples: slice,
    ) -> torch.Tensor:
        self._masks = masks
        try:
            return model(x[rows])
        finally:
            self._masks = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "masker": "feature_map",
            "layer": self.layer,
            "baseline": "zero",
            "players": self.players.to_dict(),
        }


class TabularMasker:
    """Players are feature columns of (B, F) inputs; baseline zero or a given mean vector."""

    def __init__(
        self,
        features: Sequence[int],
        baseline: Literal["zero", "mean"] | torch.Tensor = "zero",
        mean: torch.Tensor | None = None,
    ) -> None:
        self.features = [int(f) for f in features]
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"feature players must be distinct, got {self.features}")
        check_n(len(self.features))
        self.baseline_name = baseline if isinstance(baseline, str) else "tensor"
        self.baseline = _baseline_tensor(baseline, mean, "TabularMasker")
        self._keep: _KeepMasks | None = None

    @property
    def n(self) -> int:
        return len(self.features)

    def check(self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        if x.dim() != 2:
            raise ValueError(f"tabular inputs must be (B, F), got shape {tuple(x.shape)}")
        for f in self.features:
            if not 0 <= f < x.shape[1]:
                raise ValueError(f"feature player {f} outside the {x.shape[1]} columns")
        if self.baseline is not None and self.baseline.shape not in ((), (x.shape[1],)):
            raise ValueError(
                f"baseline of shape {tuple(self.baseline.shape)} must be a scalar or "
                f"({x.shape[1]},)"
            )

    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        return 2 * x[0].numel() * x.element_size()

    def attached(self, model: nn.Module) -> Any:
        return nullcontext()

    def forward(
        self,
        model: nn.Module,
        x: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor,
        attention_mask: torch.Tensor | None,
        samples: slice,
    ) -> torch.Tensor:
        if self._keep is None or self._keep.regions.shape[1] != x.shape[1]:
            columns = torch.zeros(self.n, x.shape[1], dtype=torch.bool)
            columns[torch.arange(self.n), self.features] = True
            self._keep = _KeepMasks(columns)
        base = (
            torch.zeros((), dtype=x.dtype, device=x.device)
            if self.baseline is None
            else self.baseline.to(device=x.device, dtype=x.dtype)
        )
        return model(self._keep.apply(x, rows, masks, base))

    def to_dict(self) -> dict[str, Any]:
        return {"masker": "tabular", "baseline": self.baseline_name, "features": self.features}


class TextMasker:
    """Players are token positions, (B, n) long, possibly different per sample.  Absent
    tokens get the input embedding of the baseline token ([MASK] by default: the model's
    `mask_token_id`).  The model must provide `embed(input_ids) -> (B, L, d)` and
    `forward_embeds(embeds, attention_mask) -> (B, C)`.  The baseline embedding is
    `embed` of the ids with every player replaced by the baseline token, so it stays
    right when `embed` adds position embeddings."""

    def __init__(self, positions: torch.Tensor, baseline_token: int | None = None) -> None:
        positions = torch.as_tensor(positions)
        if positions.dim() != 2 or positions.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"positions must be a (B, n) integer tensor, got {positions.shape}")
        self.positions = positions.long()
        check_n(self.positions.shape[1])
        self.baseline_token = baseline_token

    @property
    def n(self) -> int:
        return int(self.positions.shape[1])

    def _token(self, model: nn.Module) -> int:
        if self.baseline_token is not None:
            return int(self.baseline_token)
        return int(model.mask_token_id)

    def check(self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        for attr in ("embed", "forward_embeds") + (
            ("mask_token_id",) * (self.baseline_token is None)
        ):
            if not hasattr(model, attr):
                raise TypeError(
                    f"TextMasker needs a model with `{attr}`; {type(model).__name__} has none"
                )
        if x.dim() != 2 or x.shape[0] != self.positions.shape[0]:
            raise ValueError(
                f"input_ids of shape {tuple(x.shape)} do not match positions of shape "
                f"{tuple(self.positions.shape)} (one row of positions per sample)"
            )
        length = x.shape[1]
        bad = (self.positions < 0) | (self.positions >= length)
        if bad.any():
            sample, j = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"sample {sample}: player {j} at position {int(self.positions[sample, j])} "
                f"outside the sequence length {length}"
            )
        ordered = self.positions.sort(dim=1).values
        repeated = (ordered[:, 1:] == ordered[:, :-1]).any(dim=1)
        if repeated.any():
            sample = int(repeated.nonzero()[0, 0])
            raise ValueError(f"sample {sample}: repeated player positions {self.positions[sample]}")
        if attention_mask is not None:
            if attention_mask.shape != x.shape:
                raise ValueError(
                    f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape "
                    f"{tuple(x.shape)}"
                )
            padded = attention_mask.gather(1, self.positions.to(attention_mask.device)) == 0
            if padded.any():
                sample, j = (int(i) for i in padded.nonzero()[0])
                raise ValueError(f"sample {sample}: player {j} sits on a padding position")

    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        one = model.embed(x[:1])
        return 2 * one.numel() * one.element_size()

    def attached(self, model: nn.Module) -> Any:
        return nullcontext()

    def forward(
        self,
        model: nn.Module,
        x: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor,
        attention_mask: torch.Tensor | None,
        samples: slice,
    ) -> torch.Tensor:
        positions = self.positions[samples].to(x.device)
        masked_ids = x.scatter(1, positions, self._token(model))
        embeds, baseline = model.embed(x), model.embed(masked_ids)
        drop = torch.zeros(rows.shape[0], x.shape[1], dtype=torch.bool, device=x.device)
        drop.scatter_(1, positions[rows], ~_present(masks, self.n))
        row_embeds = torch.where(drop[:, :, None], baseline[rows], embeds[rows])
        row_mask = None if attention_mask is None else attention_mask[rows]
        return model.forward_embeds(row_embeds, row_mask)

    def to_dict(self) -> dict[str, Any]:
        return {
            "masker": "text",
            "baseline_token": self.baseline_token,
            "positions": self.positions.tolist(),
        }


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


# ----------------------------------------------------------------------------- extraction


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def _activation_bytes(run: Callable[[], Any], model: nn.Module) -> tuple[int, Any]:
    """Sum of the output bytes of every leaf module (and the model) during one call."""
    total = 0

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal total
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(record) for m in {*leaves, model}]
    try:
        out = run()
    finally:
        for h in handles:
            h.remove()
    return total, out


def _chunk_ranges(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(start + size, total)


def game_values(
    model: nn.Module,
    masker: Masker,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    output: str | OutputFn = "log_odds",
    memory_budget: int = 2**30,
    attention_mask: torch.Tensor | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """(B, 2^n) float64 on the CPU: v(x_S) of every sample x for every coalition S.

    The model runs in eval mode under `torch.inference_mode()` on its own device; its
    train/eval flags are restored afterwards.  A chunk holds ⌊memory_budget / row⌋ rows,
    where a row's bytes are those of its masked input plus the outputs of every leaf
    module, measured by one probe forward on one row (a conservative activation allowance:
    in inference mode most of them are freed early).
    """
    output_fn = OUTPUTS.get(output) if isinstance(output, str) else output
    if output_fn is None:
        raise KeyError(f"unknown output {output!r}; choose from {sorted(OUTPUTS)}")
    n = check_n(masker.n)
    y = torch.as_tensor(y)
    if y.dim() != 1 or y.shape[0] != x.shape[0] or y.dtype.is_floating_point:
        raise ValueError(f"labels must be (B,) integers for {x.shape[0]} samples, got {y}")
    if (y < 0).any():
        bad = int((y < 0).nonzero()[0, 0])
        raise ValueError(f"sample {bad}: negative label {int(y[bad])}")
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be positive, got {memory_budget}")
    device = _model_device(model)
    x = x.to(device)
    y = y.to(device)
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
    masker.check(model, x, attention_mask)

    size = 2**n
    total_rows = x.shape[0] * size
    values = torch.empty(total_rows, dtype=torch.float64)
    with torch.inference_mode(), _eval_mode(model), masker.attached(model):
        input_bytes = masker.row_bytes(model, x)
        if input_bytes > memory_budget:
            raise MemoryError(
                f"memory_budget={memory_budget} bytes cannot hold one masked input "
                f"({input_bytes} bytes) for n={n} players"
            )
        if total_rows == 0:
            return values.view(0, size)

        def run(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
            """(rows, C) logits of rows start..stop-1 and the sample of every row."""
            row = torch.arange(start, stop, device=device)
            sample = row // size
            first, last = start // size, (stop - 1) // size + 1
            mask_of = attention_mask[first:last] if attention_mask is not None else None
            samples = slice(first, last)
            logits = masker.forward(model, x[samples], sample - first, row % size, mask_of, samples)
            if logits.dim() != 2 or logits.shape[0] != stop - start:
                raise ValueError(f"model must return (rows, classes) logits, got {logits.shape}")
            return logits, sample

        activation_bytes, (probe, _) = _activation_bytes(lambda: run(size - 1, size), model)
        n_classes = probe.shape[-1]
        if (y >= n_classes).any():
            bad = int((y >= n_classes).nonzero()[0, 0])
            raise ValueError(
                f"sample {bad}: label {int(y[bad])} outside the model's {n_classes} classes"
            )
        per_row = input_bytes + activation_bytes
        if per_row > memory_budget:
            raise MemoryError(
                f"memory_budget={memory_budget} bytes cannot hold one masked input with its "
                f"activations ({per_row} bytes) for n={n} players"
            )
        chunk = max(1, min(total_rows, memory_budget // per_row))
        ranges = _chunk_ranges(total_rows, chunk)
        if progress:
            from tqdm import tqdm

            ranges = tqdm(
                ranges, total=-(-total_rows // chunk), desc="masked forward", unit="chunk"
            )
        for start, stop in ranges:
            logits, sample = run(start, stop)
            values[start:stop] = output_fn(logits.to(torch.float64), y[sample]).cpu()
    return values.view(x.shape[0], size)
