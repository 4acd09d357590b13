"""What a network learned, on one sample: its salient AND and OR interactions at chosen
checkpoints, and the sample's input to draw them on (`plots.interaction_picture`, the
`harsanyi draw` command).

A sample is a row of the results files of one run; the same row of every checkpoint's file
explains the same sample (one sample manifest serves every checkpoint), which
`checkpoint_series` checks.  Its input is found in its dataset by the stored sample id
(`sample_ids` index the source split: the test split for `test` rows, the training split for
`train` and `flipped` rows; `harsanyi.data`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from harsanyi.masks import players_of
from harsanyi.players import FeatureColumns, PatchGrid, Players
from harsanyi.stats import DEFAULT_RATIO, salient_masks
from harsanyi.store import RUN_MANIFEST, InteractionResults, read_results

OPS = ("AND", "OR")


class DrawnInteraction(NamedTuple):
    """One interaction a picture shows: checkpoint epoch, "AND" or "OR", the players of the
    coalition (player indices, ascending) and I(S)."""

    epoch: int
    op: str
    coalition: tuple[int, ...]
    value: float


@dataclass
class SampleInput:
    """What a picture draws the interactions on.

    `kind`: "image", "tabular" or "text" (the players' input kind).  `names`: a name per
    player (feature names, or the tokens at the sample's player positions).  `image`: (H, W)
    or (H, W, 3) in [0, 1] for display, None where it was not loaded.  `text`: the sample's
    tokens (text only).  `note`: why the input is not shown (None: it is).
    """

    kind: str
    players: Players
    names: list[str]
    image: np.ndarray | None = None
    text: str | None = None
    note: str | None = None


# --------------------------------------------------------------------------- the interactions


def top_interactions(
    I_and: np.ndarray, I_or: np.ndarray, *, top: int = 6, ratio: float = DEFAULT_RATIO
) -> list[tuple[str, tuple[int, ...], float]]:
    """The `top` strongest salient interactions of one sample as (op, coalition, value),
    strongest first: |I(S)| ≥ ratio·max|I| over AND and OR together, ∅ excluded
    (`stats.salient_masks`); equal |I| go AND before OR, then by mask index."""
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    values = {
        "AND": np.asarray(I_and, dtype=np.float64).ravel(),
        "OR": np.asarray(I_or, dtype=np.float64).ravel(),
    }
    and_mask, or_mask = salient_masks(values["AND"], values["OR"], ratio=ratio)
    n = int(round(np.log2(values["AND"].size)))
    found = [
        (-abs(float(values[op][index])), OPS.index(op), int(index))
        for op, mask in (("AND", and_mask[0]), ("OR", or_mask[0]))
        for index in np.flatnonzero(mask)
    ]
    found.sort()
    return [
        (OPS[op], players_of(index, n), float(values[OPS[op]][index]))
        for _, op, index in found[:top]
    ]


def epoch_of(results: InteractionResults, path: str | Path) -> int:
    """The checkpoint epoch a results file records (meta model.epoch); ValueError naming the
    file where it records none."""
    epoch = (results.meta.get("model") or {}).get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise ValueError(f"{path}: records no checkpoint epoch (model.epoch is {epoch!r})")
    return int(epoch)


def checkpoint_series(
    paths: Sequence[str | Path], sample: int
) -> tuple[dict[int, InteractionResults], list[Path]]:
    """The results files of one run at different checkpoints, by epoch (ascending), and the
    files in that order.  ValueError naming the file for: a row `sample` the file does not
    have, a file of another run, players or sample than the first, or a repeated epoch."""
    if not paths:
        raise ValueError("no results file given")
    loaded: list[tuple[int, Path, InteractionResults]] = []
    first: tuple[Path, InteractionResults] | None = None
    for raw in paths:
        path = Path(raw)
        results = read_results(path)
        if not 0 <= sample < results.n_samples:
            raise ValueError(
                f"{path}: sample {sample} outside the file's rows [0, {results.n_samples})"
            )
        epoch = epoch_of(results, path)
        if first is None:
            first = (path, results)
        else:
            _check_same_run(first, (path, results), sample)
        clash = [p for e, p, _ in loaded if e == epoch]
        if clash:
            raise ValueError(f"{path}: epoch {epoch} is also the epoch of {clash[0]}")
        loaded.append((epoch, path, results))
    loaded.sort(key=lambda item: item[0])
    return {e: r for e, _, r in loaded}, [p for _, p, _ in loaded]


def _check_same_run(
    first: tuple[Path, InteractionResults], other: tuple[Path, InteractionResults], sample: int
) -> None:
    (path_a, a), (path_b, b) = first, other
    run_a = (a.meta.get("model") or {}).get("run")
    run_b = (b.meta.get("model") or {}).get("run")
    if run_a != run_b:
        raise ValueError(f"{path_b}: a file of run {run_b!r}, not of run {run_a!r} ({path_a})")
    if a.meta.get("players") != b.meta.get("players") or a.n != b.n:
        raise ValueError(f"{path_b}: other players than {path_a}")
    here = (int(b.sample_ids[sample]), str(np.asarray(b.split).astype(str)[sample]))
    there = (int(a.sample_ids[sample]), str(np.asarray(a.split).astype(str)[sample]))
    if here != there:
        raise ValueError(
            f"{path_b}: row {sample} is sample {here[0]} ({here[1]}), but sample {there[0]} "
            f"({there[1]}) in {path_a}"
        )


def drawn_interactions(
    results_by_epoch: dict[int, InteractionResults],
    sample: int,
    *,
    top: int = 6,
    ratio: float = DEFAULT_RATIO,
) -> list[DrawnInteraction]:
    """The interactions a picture of row `sample` shows: the `top` strongest salient ones at
    every checkpoint (`top_interactions`), epochs ascending."""
    drawn = []
    for epoch in sorted(results_by_epoch):
        results = results_by_epoch[epoch]
        for op, coalition, value in top_interactions(
            results.I_and[sample], results.I_or[sample], top=top, ratio=ratio
        ):
            drawn.append(DrawnInteraction(int(epoch), op, coalition, value))
    return drawn


# --------------------------------------------------------------------------- the input


def feature_names(dataset: str | None) -> list[str] | None:
    """The column names of a tabular dataset, where its source has them (scikit-learn's)."""
    if dataset in ("breast_cancer", "wine"):
        from sklearn import datasets

        loader = datasets.load_breast_cancer if dataset == "breast_cancer" else datasets.load_wine
        return [str(name) for name in loader().feature_names]
    return None


def _data_options(path: Path | None) -> dict[str, Any]:
    """The data options (max_train, max_test, image_size) a results file was extracted with:
    from its run's run.json (<run>/interactions/x-<hash>/epoch_XXXX.h5) or the sample
    manifest `harsanyi extract` writes beside it; {} where neither is found (the whole
    dataset is loaded then, which holds every sample id of any subset of it)."""
    if path is None:
        return {}
    manifest = path.with_name(path.name + ".samples.json")
    try:
        if manifest.is_file():
            return dict(json.loads(manifest.read_text())["selection"]["data"] or {})
        run_json = path.parent.parent.parent / RUN_MANIFEST
        if run_json.is_file():
            return dict(json.loads(run_json.read_text())["settings"].get("data") or {})
    except (OSError, KeyError, TypeError, ValueError, AttributeError):
        return {}
    return {}


def _display(x: np.ndarray) -> np.ndarray:
    """A (C, H, W) model input as an (H, W) or (H, W, 3) image in [0, 1], each channel
    stretched to its own range (inputs are standardised per channel; the stretch undoes
    that up to contrast)."""
    x = np.asarray(x, dtype=np.float64)
    low = x.min(axis=(1, 2), keepdims=True)
    span = x.max(axis=(1, 2), keepdims=True) - low
    x = (x - low) / np.where(span > 0, span, 1.0)
    return x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1)


def sample_input(
    results: InteractionResults,
    sample: int,
    *,
    path: str | Path | None = None,
    data_root: str | Path | None = None,
    load: bool = True,
) -> SampleInput:
    """The input of row `sample` of `results` to draw on, loaded from its dataset (the
    results' model.dataset, with the data options found beside `path`, `_data_options`).
    Where it cannot be loaded (`load` False, no data root, a sample id the dataset lacks)
    the players alone are drawn and `note` says why."""
    players = Players.from_dict(results.meta["players"])
    dataset_name = (results.meta.get("model") or {}).get("dataset")
    if isinstance(players, FeatureColumns):
        known = feature_names(dataset_name) or []
        names = [known[c] if c < len(known) else f"feature {c}" for c in players.columns]
        return SampleInput("tabular", players, names)
    positions: list[int] = []
    if isinstance(players, PatchGrid):
        picture = SampleInput("image", players, [f"cell {r},{c}" for r, c in players.cells])
    else:
        if results.player_positions is not None:
            positions = [int(p) for p in results.player_positions[sample]]
        names = [f"token @{p}" for p in positions] or [f"player {j}" for j in range(players.n)]
        picture = SampleInput("text", players, names)
    if not load:
        picture.note = "input not loaded"
        return picture
    try:
        x, mask = _load_sample(results, sample, dataset_name, path, data_root, players)
    except (OSError, ValueError, KeyError, ImportError, RuntimeError) as exc:
        picture.note = f"input not loaded: {_first_line(exc)}"
        return picture
    if picture.kind == "image":
        picture.image = _display(x)
        return picture
    from harsanyi.data import minilm_tokenizer

    tokens = minilm_tokenizer().convert_ids_to_tokens([int(t) for t in x])
    picture.text = " ".join(t for t, m in zip(tokens, mask, strict=True) if m and t != "[PAD]")
    if positions:
        picture.names = [f"{tokens[p]} @{p}" for p in positions]
    return picture


def _first_line(exc: BaseException, limit: int = 120) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _load_sample(
    results: InteractionResults,
    sample: int,
    dataset_name: str | None,
    path: str | Path | None,
    data_root: str | Path | None,
    players: Players,
) -> tuple[np.ndarray, np.ndarray]:
    """(input, attention mask or ones) of row `sample`, from its dataset."""
    from harsanyi.data import DATASETS, load_configured

    if dataset_name not in DATASETS:
        raise ValueError(f"the file names no known dataset (model.dataset {dataset_name!r})")
    options = _data_options(None if path is None else Path(path))
    if isinstance(players, PatchGrid) and DATASETS[dataset_name].input_shape is None:
        options.setdefault("image_size", players.image_size[0])
    dataset = load_configured(dataset_name, options, data_root)
    split = str(np.asarray(results.split).astype(str)[sample])
    source = dataset.test if split == "test" else dataset.train
    sample_id = int(results.sample_ids[sample])
    rows = np.flatnonzero(np.asarray(source.ids) == sample_id)
    if not len(rows):
        raise ValueError(f"sample id {sample_id} is not in the {split} split of {dataset_name}")
    x = source.x[int(rows[0])].numpy()
    if isinstance(players, PatchGrid) and tuple(x.shape[-2:]) != tuple(players.image_size):
        raise ValueError(
            f"the loaded image is {x.shape[-2]}×{x.shape[-1]}, the players' "
            f"{players.image_size[0]}×{players.image_size[1]}"
        )
    mask = (
        source.attention_mask[int(rows[0])].numpy()
        if source.attention_mask is not None
        else np.ones(x.shape[:1], dtype=np.int64)
    )
    return x, mask
