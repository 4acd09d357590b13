"""Games from models: v(x_S) on all 2^n coalitions of a batch of samples.

A *masker* (a `Masker` subclass) holds the players of an input kind (`harsanyi.players`:
image patches, tabular columns, token positions) and knows how to replace absent players by
the baseline: in the input, or on a feature map for patches.  `game_values`
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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from harsanyi.masks import check_n, coalition_matrix
from harsanyi.players import (
    FeatureColumns,
    PatchGrid,
    Players,
    TokenPositions,
    choose_token_players,  # noqa: F401  (its old home: re-exported)
)

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


# ----------------------------------------------------------------------------- maskers


class Masker(ABC):
    """How the players of one input kind are masked and fed to the model (`game_values`
    calls it chunk by chunk).

    The base class holds the players, validates what is common to every masker and
    delegates the rest.  A subclass names itself (`name`), may take an attention mask
    (`takes_attention_mask`), and implements `check_inputs` (its own cheap checks before
    any forward pass), `row_bytes` and `masked_logits`; `attached` and `settings` are
    optional.
    """

    name: ClassVar[str]  # the "masker" entry of `to_dict`
    takes_attention_mask: ClassVar[bool] = False

    def __init__(self, players: Players, baseline_name: str | int) -> None:
        if not isinstance(players, Players):
            raise TypeError(f"{type(self).__name__}: players must be a Players, got {players!r}")
        self.players = players
        self.baseline_name = baseline_name

    @property
    def n(self) -> int:
        return self.players.n

    def check(self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None) -> None:
        """Validate the inputs cheaply, before any forward pass."""
        what = type(self).__name__
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{what}: inputs must be a (B, ...) tensor, got {shape}")
        if attention_mask is not None:
            if not self.takes_attention_mask:
                raise ValueError(f"{what} takes no attention_mask ({self.players.type} players)")
            if attention_mask.shape != x.shape[:2]:
                raise ValueError(
                    f"attention_mask shape {tuple(attention_mask.shape)} != input_ids shape "
                    f"{tuple(x.shape)}"
                )
        self.check_inputs(model, x, attention_mask)

    @abstractmethod
    def check_inputs(
        self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> None:
        """The masker's own checks of the model and the inputs."""

    @abstractmethod
    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        """Bytes the masked input of one row takes while a chunk is built."""

    def attached(self, model: nn.Module) -> AbstractContextManager[Any]:
        """Context manager holding whatever hooks the masker needs during extraction."""
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
        """(R, C) logits of R rows.  `x` (and `attention_mask`) hold the samples a chunk
        touches, `samples` where they sit in the whole batch, `rows` the sample of each row
        (indices into x) and `masks` each row's coalition (mask indices)."""
        if rows.dim() != 1 or rows.shape != masks.shape:
            raise ValueError(
                f"rows {tuple(rows.shape)} and masks {tuple(masks.shape)} must be equal (R,)"
            )
        if len(rows) and not (0 <= int(rows.min()) and int(rows.max()) < x.shape[0]):
            raise ValueError(f"rows must index the {x.shape[0]} samples of the chunk")
        if len(masks) and not (0 <= int(masks.min()) and int(masks.max()) < 2**self.n):
            raise ValueError(f"masks must be mask indices in [0, 2^{self.n})")
        return self.masked_logits(model, x, rows, masks, attention_mask, samples)

    @abstractmethod
    def masked_logits(
        self,
        model: nn.Module,
        x: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor,
        attention_mask: torch.Tensor | None,
        samples: slice,
    ) -> torch.Tensor:
        """`forward` of validated arguments."""

    def settings(self) -> dict[str, Any]:
        """What else determines the masked inputs, for `to_dict`."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "masker": self.name,
            "baseline": self.baseline_name,
            "players": self.players.to_dict(),
            **self.settings(),
        }


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


def _check_images(players: PatchGrid, x: torch.Tensor) -> None:
    if x.dim() < 3 or tuple(x.shape[-2:]) != players.image_size:
        raise ValueError(
            f"images of shape {tuple(x.shape)} do not match the players' image_size "
            f"{players.image_size} (expected (B, [C,] H, W))"
        )


class ImageMasker(Masker):
    """Patches of the input image set to a baseline: zero in model input space, a given
    per-channel mean ((C,) tensor), or any tensor broadcastable to one sample."""

    name = "image"

    def __init__(
        self,
        players: PatchGrid,
        baseline: Literal["zero", "mean"] | torch.Tensor = "zero",
        mean: torch.Tensor | None = None,
    ) -> None:
        if not isinstance(players, PatchGrid):
            raise TypeError(f"ImageMasker masks patch players, got {players!r}")
        super().__init__(players, baseline if isinstance(baseline, str) else "tensor")
        self.players: PatchGrid = players
        self.baseline = _baseline_tensor(baseline, mean, "ImageMasker")
        self.keep = _KeepMasks(players.pixel_masks())

    def _baseline_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.baseline is None:
            return torch.zeros((), dtype=x.dtype, device=x.device)
        b = self.baseline.to(device=x.device, dtype=x.dtype)
        if b.dim() == 1 and x.dim() == 4 and b.shape[0] == x.shape[1]:
            b = b.view(-1, 1, 1)  # per-channel mean
        return b

    def check_inputs(
        self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> None:
        _check_images(self.players, x)
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

    def masked_logits(
        self,
        model: nn.Module,
        x: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor,
        attention_mask: torch.Tensor | None,
        samples: slice,
    ) -> torch.Tensor:
        return model(self.keep.apply(x, rows, masks, self._baseline_for(x)))


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


class FeatureMapMasker(Masker):
    """Patches masked on the (B, C, h, w) output of a named module, e.g. "features.3" after
    a ReLU, with baseline zero on that map.  Each sample is fed unchanged, once per row; a
    forward hook multiplies the module's output by the row's keep mask, the pixel masks
    pooled to (h, w)."""

    name = "feature_map"

    def __init__(self, players: PatchGrid, layer: str) -> None:
        if not isinstance(players, PatchGrid):
            raise TypeError(f"FeatureMapMasker masks patch players, got {players!r}")
        super().__init__(players, "zero")
        self.players: PatchGrid = players
        self.layer = layer
        self.regions = players.pixel_masks()
        self._masks: torch.Tensor | None = None
        self._keep: dict[tuple[int, int], _KeepMasks] = {}

    def check_inputs(
        self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> None:
        _module_named(model, self.layer)
        _check_images(self.players, x)

    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        return x[0].numel() * x.element_size()

    @staticmethod
    def check_layer(model: nn.Module, layer: str, input_shape: tuple[int, ...]) -> None:
        """ValueError unless `model` has a module `layer` whose output, for inputs of
        `input_shape`, is a (B, C, h, w) map.  Runs no arithmetic on a model built on the
        meta device (as the workflow does at start-up)."""
        try:
            module = _module_named(model, layer)
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        shapes: list[Any] = []

        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            shapes.append(tuple(output.shape) if isinstance(output, torch.Tensor) else output)

        device = next(model.parameters()).device
        handle = module.register_forward_hook(record)
        try:
            with torch.no_grad():
                model(torch.zeros((1, *input_shape), device=device))
        finally:
            handle.remove()
        if not shapes:
            raise ValueError(f"module {layer!r} is not used by the model's forward pass")
        if not isinstance(shapes[0], tuple) or len(shapes[0]) != 4:
            raise ValueError(f"module {layer!r} must output (B, C, h, w) maps, got {shapes[0]}")

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

    def masked_logits(
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

    def settings(self) -> dict[str, Any]:
        return {"layer": self.layer}


class TabularMasker(Masker):
    """Players are feature columns of (B, F) inputs; baseline zero or a given mean vector."""

    name = "tabular"

    def __init__(
        self,
        players: FeatureColumns | Sequence[int],
        baseline: Literal["zero", "mean"] | torch.Tensor = "zero",
        mean: torch.Tensor | None = None,
    ) -> None:
        if not isinstance(players, FeatureColumns):
            players = FeatureColumns(players)
        super().__init__(players, baseline if isinstance(baseline, str) else "tensor")
        self.players: FeatureColumns = players
        self.baseline = _baseline_tensor(baseline, mean, "TabularMasker")
        self._keep: _KeepMasks | None = None

    @property
    def features(self) -> list[int]:
        return self.players.columns

    def check_inputs(
        self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> None:
        if x.dim() != 2:
            raise ValueError(f"tabular inputs must be (B, F), got shape {tuple(x.shape)}")
        self.players.check_width(x.shape[1])
        if self.baseline is not None and self.baseline.shape not in ((), (x.shape[1],)):
            raise ValueError(
                f"baseline of shape {tuple(self.baseline.shape)} must be a scalar or "
                f"({x.shape[1]},)"
            )

    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        return 2 * x[0].numel() * x.element_size()

    def masked_logits(
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


TOKEN_BASELINES = {"mask_token": "mask_token_id", "pad_token": "pad_token_id"}


class TextMasker(Masker):
    """Players are token positions, (B, n) long, possibly different per sample.  Absent
    tokens get the input embedding of the baseline token: the model's [MASK]
    (`mask_token_id`, the default, or baseline_token="mask_token"), its padding token
    (baseline_token="pad_token": `pad_token_id`) or a given token id.  The model must
    provide `embed(input_ids) -> (B, L, d)` and `forward_embeds(embeds, attention_mask) ->
    (B, C)`.  The baseline embedding is `embed` of the ids with every player replaced by the
    baseline token, so it stays right when `embed` adds position embeddings."""

    name = "text"
    takes_attention_mask = True

    def __init__(
        self,
        positions: torch.Tensor,
        baseline_token: int | Literal["mask_token", "pad_token"] | None = None,
    ) -> None:
        positions = torch.as_tensor(positions)
        if positions.dim() != 2 or positions.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"positions must be a (B, n) integer tensor, got {positions.shape}")
        if baseline_token is None:
            baseline_token = "mask_token"
        if isinstance(baseline_token, str) and baseline_token not in TOKEN_BASELINES:
            raise ValueError(
                f"TextMasker: baseline_token must be a token id or one of "
                f"{sorted(TOKEN_BASELINES)}, got {baseline_token!r}"
            )
        super().__init__(TokenPositions(int(positions.shape[1])), baseline_token)
        self.positions = positions.long()
        self.baseline_token = baseline_token

    def _token(self, model: nn.Module) -> int:
        if isinstance(self.baseline_token, str):
            return int(getattr(model, TOKEN_BASELINES[self.baseline_token]))
        return int(self.baseline_token)

    def check_inputs(
        self, model: nn.Module, x: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> None:
        needed = ["embed", "forward_embeds"]
        if isinstance(self.baseline_token, str):
            needed.append(TOKEN_BASELINES[self.baseline_token])
        for attr in needed:
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
            padded = attention_mask.gather(1, self.positions.to(attention_mask.device)) == 0
            if padded.any():
                sample, j = (int(i) for i in padded.nonzero()[0])
                raise ValueError(f"sample {sample}: player {j} sits on a padding position")

    def row_bytes(self, model: nn.Module, x: torch.Tensor) -> int:
        one = model.embed(x[:1])
        return 2 * one.numel() * one.element_size()

    def masked_logits(
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

    def settings(self) -> dict[str, Any]:
        return {"positions": self.positions.tolist()}


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
