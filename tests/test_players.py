"""Player descriptions: one vocabulary for manifests, results files, maskers and attributions."""

import hashlib
import json

import numpy as np
import pytest
import torch

from harsanyi.config import ConfigError, resolve
from harsanyi.data import DATASETS
from harsanyi.extraction import build_masker, select_samples
from harsanyi.games import FeatureMapMasker, ImageMasker, TabularMasker, TextMasker
from harsanyi.models import ARCHITECTURES
from harsanyi.players import (
    PLAYER_TYPES,
    FeatureColumns,
    PatchGrid,
    Players,
    TokenPositions,
    as_players,
    players_for_input,
)

# The players of sample manifests written by the code before `harsanyi.players` existed
# (sha256 of json.dumps(manifest["players"]), first 16 digits): a change would make a
# rerun of an existing selection explain other players than the stored results.
PINNED_MANIFEST_PLAYERS = {
    "digits": (
        {"grid": [4, 4], "n": 5, "seed": 3},
        "4da218c81201ea82",
        {
            "type": "patches",
            "image_size": [8, 8],
            "grid": [4, 4],
            "cells": [[0, 1], [0, 2], [0, 3], [2, 1], [3, 3]],
        },
    ),
    "breast_cancer": (
        {"n": 6, "seed": 1},
        "3e13384d5ccd56ae",
        {"type": "features", "columns": [1, 4, 11, 13, 20, 26]},
    ),
    "wine": ({"n": 3, "features": [5, 0, 7]}, "2d8a6168e1d6c437", None),
    "sentiment": ({"n": 4, "seed": 2}, "39493ddb37673c75", None),
}
ARCH = {"digits": "lenet", "breast_cancer": "mlp", "wine": "mlp", "sentiment": "bert_small"}


@pytest.mark.parametrize("name", sorted(PINNED_MANIFEST_PLAYERS))
def test_manifest_players_are_unchanged_and_read_back(name, tmp_path):
    request, digest, literal = PINNED_MANIFEST_PLAYERS[name]
    entry = {"architectures": [ARCH[name]], "players": request}
    if name == "digits":
        entry.update(max_train=200, max_test=100)
    plan = resolve({"datasets": {name: entry}, "label_noise": [0.0, 0.1]}).datasets[name]
    manifest = select_samples(plan, plan.root, tmp_path / "m.json")
    stored = json.loads((tmp_path / "m.json").read_text())["players"]
    assert stored == manifest["players"]
    assert hashlib.sha256(json.dumps(stored).encode()).hexdigest()[:16] == digest
    if literal is not None:
        assert stored == literal
    players = Players.from_dict(stored)
    assert type(players) is players_for_input(plan.kind)
    assert players.n == request["n"]
    assert json.dumps(players.to_dict()) == json.dumps(stored)  # same keys, same order


def test_every_dataset_and_architecture_kind_has_players():
    kinds = {spec.kind for spec in DATASETS.values()}
    kinds |= {kind for arch in ARCHITECTURES.values() for kind in arch.kinds}
    assert kinds == set(players_for_input(k).input_kind for k in kinds)
    with pytest.raises(ValueError, match="'audio'"):
        players_for_input("audio")


STORED_FORMS = [
    {"type": "patches", "image_size": [8, 8], "grid": [4, 4], "cells": [[0, 1], [3, 3]]},
    {"type": "features", "columns": [0, 3, 7]},
    {"type": "tokens", "n": 3},  # the results-file form
    {"type": "tokens", "n": 2, "positions": {"train": [[1, 4], [2, 3]], "test": [[5, 1]]}},
]


@pytest.mark.parametrize("stored", STORED_FORMS, ids=lambda d: d["type"])
def test_stored_forms_round_trip(stored):
    players = Players.from_dict(stored)
    assert players.to_dict() == stored
    assert type(players).from_dict(stored) == players
    assert as_players(stored) == players and as_players(players) is players
    assert PLAYER_TYPES[stored["type"]] is type(players)


def test_results_files_keep_token_players_without_positions():
    players = Players.from_dict(STORED_FORMS[3])
    assert players.stored().to_dict() == {"type": "tokens", "n": 2}
    assert Players.from_dict(STORED_FORMS[1]).stored() == Players.from_dict(STORED_FORMS[1])


@pytest.mark.parametrize(
    "data, error, message",
    [
        ({"type": "pixels"}, ValueError, r"unknown type 'pixels'.*known: \['features'"),
        ({"columns": [1]}, ValueError, "unknown type None"),
        ([1, 2], TypeError, r"dict with a 'type', got \[1, 2\]"),
        ({"type": "features"}, ValueError, r"missing keys \['columns'\]"),
        ({"type": "features", "columns": [1], "n": 1}, ValueError, r"unknown keys \['n'\]"),
        ({"type": "features", "columns": [1, 1]}, ValueError, "distinct"),
        ({"type": "features", "columns": [-1]}, ValueError, "non-negative"),
        ({"type": "features", "columns": "01"}, ValueError, "list of integers, got '01'"),
        ({"type": "features", "columns": [1.5]}, ValueError, "list of integers"),
        ({"type": "patches", "image_size": [8, 8], "grid": [4], "cells": []}, ValueError, "grid"),
        (
            {"type": "patches", "image_size": [8, 8], "grid": [4, 4], "cells": [[4, 0]]},
            ValueError,
            r"cell \(4, 0\) lies outside",
        ),
        ({"type": "tokens", "n": "3"}, ValueError, "n must be an integer, got '3'"),
        (
            {"type": "tokens", "n": 2, "positions": {"train": [[1, 1]]}},
            ValueError,
            r"sample 0 of split 'train' has positions \[1, 1\]",
        ),
    ],
)
def test_bad_descriptions_name_the_key_or_value(data, error, message):
    with pytest.raises(error, match=message):
        Players.from_dict(data)


def test_a_subclass_reads_only_its_own_type():
    with pytest.raises(ValueError, match="expected type 'patches', got 'features'"):
        PatchGrid.from_dict(STORED_FORMS[1])


def test_token_players_of_samples_follow_the_manifest_order():
    players = TokenPositions(2, {"flipped": [[1, 4], [2, 3], [5, 6]]})
    chosen = players.of_samples("flipped", [40, 10, 30], [30, 40])
    assert chosen.tolist() == [[5, 6], [1, 4]] and chosen.dtype == torch.long
    assert players.of_samples("flipped", [40, 10, 30], []).shape == (0, 2)
    with pytest.raises(KeyError, match=r"no row for samples \[20\]"):
        players.of_samples("flipped", [40, 10, 30], [20])
    with pytest.raises(KeyError, match=r"no positions for split 'test'; have \['flipped'\]"):
        players.of_samples("test", [1], [1])
    with pytest.raises(ValueError, match="3 rows for 2 samples"):
        players.of_samples("flipped", [40, 10], [40])


def test_columns_and_cells_may_be_arrays_of_integers():
    assert FeatureColumns(torch.tensor([3, 1])).columns == [3, 1]
    assert FeatureColumns(np.array([3, 1])).to_dict() == {"type": "features", "columns": [3, 1]}
    grid = PatchGrid(np.array([8, 8]), (4, 4), [np.array([1, 2])])
    assert grid.to_dict()["cells"] == [[1, 2]]
    with pytest.raises(ValueError, match=r"feature columns must be a list of integers"):
        FeatureColumns(np.array([1.0, 2.0]))


def test_element_index_marks_each_players_elements():
    grid = PatchGrid((4, 4), (2, 2), [(0, 0), (1, 1)])
    index = grid.element_index((3, 4, 4))
    assert index.shape == (3, 4, 4)
    assert (index[:, :2, :2] == 0).all() and (index[:, 2:, 2:] == 1).all()
    assert (index[:, :2, 2:] == 2).all()  # no player
    columns = FeatureColumns([4, 1])
    assert columns.element_index((5,)).tolist() == [2, 1, 2, 2, 0]
    with pytest.raises(ValueError, match="feature player 4 outside the 3 columns"):
        columns.element_index((3,))
    with pytest.raises(ValueError, match="image_size"):
        grid.element_index((3, 5, 4))
    with pytest.raises(ValueError, match="'tokens' players differ per sample"):
        TokenPositions(2).element_index((8,))


def base_config(name, players, **entry):
    arch = ARCH[name]
    return {"datasets": {name: {"architectures": [arch], "players": players, **entry}}}


@pytest.mark.parametrize(
    "name, players, message",
    [
        ("breast_cancer", {"n": 2, "features": [3, 3]}, r"players\.features has repeated"),
        ("breast_cancer", {"n": 1, "features": [-1]}, r"players\.features \[-1\] outside"),
        ("breast_cancer", {"n": 31}, r"players\.n = 31 exceeds the 30 features"),
        ("digits", {"n": 2}, r"datasets\.digits\.players\.grid is required"),
        ("sentiment", {"n": 2, "positions": [1]}, r"positions lists 1 positions but n is 2"),
        ("sentiment", {"n": 15}, r"players\.n = 15 exceeds the 14 tokens"),
        ("sentiment", {"n": 2, "positions": [3, 3]}, r"players\.positions has repeated"),
        ("sentiment", {"n": 2, "positions": [1, 16]}, r"players\.positions \[16\] outside"),
    ],
)
def test_config_requests_are_checked_by_the_players_type(name, players, message):
    with pytest.raises(ConfigError, match=message):
        resolve(base_config(name, players), check_data=False)


@pytest.mark.parametrize(
    "name, default, wrong",
    [("digits", "zero", "mask_token"), ("breast_cancer", "zero", "feature_map"),
     ("sentiment", "mask_token", "zero")],
)  # fmt: skip
def test_baselines_come_from_the_players_type(name, default, wrong):
    players = {"n": 2, "grid": [4, 4]} if name == "digits" else {"n": 2}
    study = resolve(base_config(name, players), check_data=False)
    assert study.datasets[name].baseline == {"type": default}
    with pytest.raises(ConfigError, match=rf"baseline\.type '{wrong}' is not for"):
        resolve(base_config(name, players, baseline={"type": wrong}), check_data=False)


class Dataset:
    feature_mean = torch.arange(6.0)


@pytest.mark.parametrize(
    "stored, baseline, masker",
    [
        (STORED_FORMS[0], {"type": "zero"}, ImageMasker),
        (STORED_FORMS[0], {"type": "mean"}, ImageMasker),
        (STORED_FORMS[0], {"type": "feature_map", "layer": "features.1"}, FeatureMapMasker),
        (STORED_FORMS[1], {"type": "mean"}, TabularMasker),
        (STORED_FORMS[2], {"type": "mask_token"}, TextMasker),
        (STORED_FORMS[2], {"type": "pad_token"}, TextMasker),
    ],
)
def test_build_masker_holds_the_manifests_players(stored, baseline, masker):
    players = Players.from_dict(stored)
    positions = torch.tensor([[0, 2, 4]]) if stored["type"] == "tokens" else None
    built = build_masker(players, baseline, Dataset(), positions)
    assert type(built) is masker and built.n == players.n
    described = built.to_dict()
    assert Players.from_dict(described["players"]) == players
    assert described["baseline"] == baseline["type"].replace("feature_map", "zero")


def test_build_masker_refuses_a_baseline_the_players_do_not_take():
    with pytest.raises(ValueError, match=r"baseline\.type 'mask_token' does not fit 'features'"):
        build_masker(Players.from_dict(STORED_FORMS[1]), {"type": "mask_token"}, Dataset())
    with pytest.raises(ValueError, match=r"token players need \(samples, 3\) positions"):
        build_masker(Players.from_dict(STORED_FORMS[2]), {"type": "mask_token"}, Dataset())
