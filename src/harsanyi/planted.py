"""Planted positive controls: is a known rule found in the interactions of a trained network?

A generated dataset plants a rule whose interaction is known (`harsanyi.data.PLANTED_RULES`:
class 1 iff two inputs are present together, an AND, or either is present, an OR; the
`sentiment` task: the label flips when a negation precedes the adjective, an AND of the two
words).  `planted_terms` reads off, per explained sample, the coalition of players that
carries the rule, and `planted_recovery` counts the samples where the decomposition shows it.

Recovery criterion (`term_recovered`), per sample where the rule applies: the planted
coalition S, in the planted part (AND or OR),
  1. has the planted sign (the log-odds of the sample's label rise with the rule: +),
  2. is salient: |I(S)| ≥ salient_ratio · max|I| over the sample's AND and OR values, ∅
     excluded (docs/interactions.md), and
  3. is among the `top_k` largest |I| of the sample's coalitions of at least `min_order`
     players, AND and OR values together (ties counted against the planted term).
Defaults: top_k 1, min_order 2: the planted coalition is the sample's strongest interaction
between players.  Singletons are left out of the ranking by default because they are main
effects, not interactions: a network fitting an AND with the log-odds output realises much
of it additively (log-odds ≈ f(A) + f(B) − c, measured on planted_tabular_and: AND{A}, AND{B}
≈ 10–13 against AND{A, B} ≈ 2), and no AND/OR rule between players shows in a singleton.
min_order 1 ranks among all coalitions.

Where a rule applies:
  - `planted_*_and` / `planted_*_or`: the sample is a train or test sample (never a
    flipped one: its label is not the rule's) holding both planted inputs, so the rule's
    coalition is active; both planted inputs must be players.
  - `sentiment`: a train or test sentence with a negation whose negation and adjective
    tokens are both players (token players are chosen per sample).
Everywhere else the rule says nothing about the sample (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from harsanyi.data import (
    NEGATIONS,
    NEGATIVE_WORDS,
    PLANTED_RULES,
    POSITIVE_WORDS,
    load_dataset,
    minilm_tokenizer,
    planted_presence,
)
from harsanyi.masks import index_of, orders
from harsanyi.players import as_players
from harsanyi.stats import DEFAULT_RATIO, interaction_pair
from harsanyi.store import InteractionResults

DEFAULT_TOP_K = 1
DEFAULT_MIN_ORDER = 2
PLANTED_DATASETS = (*PLANTED_RULES, "sentiment")


@dataclass(frozen=True)
class PlantedTerm:
    """A planted interaction of one sample: players (indices 0..n-1), part and sign."""

    players: tuple[int, ...]
    kind: Literal["and", "or"]
    sign: Literal[1, -1] = 1

    def __post_init__(self) -> None:
        if self.kind not in ("and", "or"):
            raise ValueError(f"planted term kind must be 'and' or 'or', got {self.kind!r}")
        if self.sign not in (1, -1):
            raise ValueError(f"planted term sign must be 1 or -1, got {self.sign!r}")
        if not self.players or len(set(self.players)) != len(self.players):
            raise ValueError(f"planted term players must be distinct and non-empty: {self.players}")


@dataclass(frozen=True)
class Recovery:
    """How many samples where the rule applies show it (`recovered` of `total`), and per
    sample True / False (rule applies) or None (it does not)."""

    recovered: int
    total: int
    per_sample: tuple[bool | None, ...]


def term_recovered(
    i_and: np.ndarray,
    i_or: np.ndarray,
    term: PlantedTerm,
    *,
    top_k: int = DEFAULT_TOP_K,
    salient_ratio: float = DEFAULT_RATIO,
    min_order: int = DEFAULT_MIN_ORDER,
) -> bool:
    """Whether one sample's decomposition (I_and, I_or of shape (2^n,)) shows `term` by the
    module's criterion: planted sign, salient, among the top_k of |I| over coalitions of at
    least min_order players."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if not 0 <= salient_ratio <= 1:
        raise ValueError(f"salient_ratio must lie in [0, 1], got {salient_ratio!r}")
    if isinstance(min_order, bool) or not isinstance(min_order, int) or min_order < 1:
        raise ValueError(f"min_order must be a positive integer, got {min_order!r}")
    a, o, n = interaction_pair(i_and, i_or)
    if a.shape[0] != 1:
        raise ValueError(f"term_recovered takes one sample, got {a.shape[0]}")
    if max(term.players) >= n or min(term.players) < 0:
        raise ValueError(f"planted players {term.players} outside the {n} players")
    if len(term.players) < min_order:
        raise ValueError(
            f"planted term of {len(term.players)} players is not ranked with min_order {min_order}"
        )
    index = index_of(term.players, n)
    value = (a if term.kind == "and" else o)[0, index]
    every = np.abs(np.concatenate([a[0, 1:], o[0, 1:]]))
    if not value * term.sign > 0 or abs(value) < salient_ratio * every.max():
        return False
    ranked = np.concatenate([orders(n)[1:]] * 2) >= min_order
    # rank: values at least as large as the planted one, the planted one included
    return int((every[ranked] >= abs(value)).sum()) <= top_k


def planted_recovery(
    results: InteractionResults,
    rule: Sequence[PlantedTerm | None],
    *,
    top_k: int = DEFAULT_TOP_K,
    salient_ratio: float = DEFAULT_RATIO,
    min_order: int = DEFAULT_MIN_ORDER,
) -> Recovery:
    """Count the samples of `results` whose decomposition shows their planted term.

    `rule` holds one term per sample of `results` (None: the rule does not apply to it);
    `planted_terms(results)` gives it for the planted datasets."""
    if len(rule) != results.n_samples:
        raise ValueError(f"rule has {len(rule)} entries for {results.n_samples} samples")
    per_sample: list[bool | None] = []
    for row, term in enumerate(rule):
        if term is None:
            per_sample.append(None)
            continue
        per_sample.append(
            term_recovered(
                results.I_and[row],
                results.I_or[row],
                term,
                top_k=top_k,
                salient_ratio=salient_ratio,
                min_order=min_order,
            )
        )
    applies = [hit for hit in per_sample if hit is not None]
    return Recovery(sum(applies), len(applies), tuple(per_sample))


def results_dataset(results: InteractionResults) -> str:
    """The dataset a results file explains (its `model` meta entry)."""
    try:
        return str(results.meta["model"]["dataset"])
    except (KeyError, TypeError) as err:
        raise ValueError("results meta names no model.dataset") from err


def planted_terms(results: InteractionResults) -> list[PlantedTerm | None]:
    """The planted term of every sample of `results` (None where the rule does not apply),
    from the dataset it names; ValueError for a dataset without a planted rule."""
    name = results_dataset(results)
    if name == "sentiment":
        return _sentiment_terms(results)
    if name not in PLANTED_RULES:
        raise ValueError(f"dataset {name!r} has no planted rule; planted: {PLANTED_DATASETS}")
    rule = PLANTED_RULES[name]
    players = as_players(results.meta["players"]).to_dict()
    units = [tuple(c) for c in players["cells"]] if "cells" in players else players["columns"]
    missing = [unit for unit in rule.inputs if unit not in units]
    if missing:
        raise ValueError(
            f"{name}: planted inputs {missing} are not players ({units}); choose them with "
            "players.features / players.cells"
        )
    term = PlantedTerm(tuple(units.index(unit) for unit in rule.inputs), rule.kind)
    splits = np.asarray(results.split).astype(str)
    terms: list[PlantedTerm | None] = [None] * results.n_samples
    for split in ("train", "test"):
        rows = np.flatnonzero(splits == split)
        present = planted_presence(name, split, results.sample_ids[rows])
        for row, held in zip(rows, present.all(axis=1), strict=True):
            terms[row] = term if held else None
    return terms


def _sentiment_terms(results: InteractionResults) -> list[PlantedTerm | None]:
    if results.player_positions is None:
        raise ValueError("sentiment results hold no player_positions")
    dataset = load_dataset("sentiment")
    tokenizer = minilm_tokenizer()
    negations = set(tokenizer.convert_tokens_to_ids(list(NEGATIONS)))
    adjectives = set(tokenizer.convert_tokens_to_ids([*POSITIVE_WORDS, *NEGATIVE_WORDS]))
    splits = np.asarray(results.split).astype(str)
    terms: list[PlantedTerm | None] = [None] * results.n_samples
    for row in range(results.n_samples):
        if splits[row] not in ("train", "test"):
            continue
        split = dataset.train if splits[row] == "train" else dataset.test
        where = np.flatnonzero(np.asarray(split.ids) == results.sample_ids[row])
        if len(where) != 1:
            raise ValueError(f"sentiment {splits[row]} sample {results.sample_ids[row]} not found")
        tokens = split.x[int(where[0])].tolist()
        held = [tokens[p] for p in results.player_positions[row].tolist()]
        negation = [j for j, t in enumerate(held) if t in negations]
        adjective = [j for j, t in enumerate(held) if t in adjectives]
        if len(negation) == 1 and len(adjective) == 1:
            terms[row] = PlantedTerm((negation[0], adjective[0]), "and")
    return terms


def last_checkpoint_files(paths: Sequence[str | Path]) -> list[Path]:
    """Results files named in `paths`: a `.h5` file as given; a folder (a results root, a
    run directory) searched for `interactions/x-*/epoch_*.h5`, keeping each run's and
    extraction's last checkpoint.  Sorted; FileNotFoundError if a path holds none."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            files.append(path)
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such results file or folder")
        last: dict[Path, Path] = {}
        for found in sorted(path.glob("**/interactions/x-*/epoch_*.h5")):
            if found.parent not in last or found.name > last[found.parent].name:
                last[found.parent] = found
        if not last:
            raise FileNotFoundError(f"{path}: holds no interactions/x-*/epoch_*.h5")
        files += last.values()
    return sorted(set(files))


def recovery_line(path: str | Path, recovery: Recovery, results: InteractionResults) -> str:
    """One line of `scripts/planted_report.py`: dataset, run, epoch and X of Y."""
    model = results.meta.get("model", {})
    return (
        f"{model.get('dataset')} {model.get('run')} epoch {model.get('epoch')}: planted rule "
        f"recovered in {recovery.recovered} of {recovery.total} samples ({Path(path).name})"
    )
