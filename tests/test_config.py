"""Study configs: schema validation with defaults, and the checks a schema cannot express."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harsanyi.config import (
    ANALYSIS_DEFAULTS,
    DEFAULT_STUDY,
    EXTRACTION_DEFAULTS,
    ConfigError,
    load_study,
    resolve,
    schema_path,
)
from harsanyi.data import DATASETS
from harsanyi.models import ARCHITECTURES, architectures_for

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, config: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def base() -> dict:
    return {
        "datasets": {
            "digits": {"architectures": ["lenet"], "players": {"grid": [8, 8], "n": 6}},
        }
    }


def test_defaults_are_filled_in(tmp_path):
    study = load_study(write(tmp_path, base()))
    assert study.name == "default" and str(study.results) == "results"
    assert study.extraction["solver"] == "exact" and study.extraction["qthres"] == 0.02
    assert study.analysis["salient_ratio"] == 0.05
    (run,) = study.runs
    assert run.epochs[0] == 0 and run.epochs[-1] == run.settings["training"]["epochs"]
    assert run.name.startswith("digits-lenet-s0-")


def test_the_shipped_configs_are_valid():
    for path in [REPO / "config/config.yaml", REPO / "tests/data/tiny.yaml"]:
        assert load_study(path).runs


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda c: c.update(colour="red"), "colour"),
        (lambda c: c["datasets"]["digits"].update(architectures=["transformer9"]), "architectures"),
        (lambda c: c["datasets"].update(imagenet22k=c["datasets"]["digits"]), "imagenet22k"),
        (lambda c: c.update(label_noise=[1.5]), "label_noise"),
        (lambda c: c["datasets"]["digits"]["players"].update(n=0), "players.n"),
    ],
)
def test_schema_errors_name_the_key(tmp_path, change, key):
    config = base()
    change(config)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_study(write(tmp_path, config))


@pytest.mark.parametrize(
    "players, message",
    [
        ({"grid": [8, 8], "n": 65}, r"datasets\.digits\.players\.n = 65 exceeds the 64 cells"),
        ({"grid": [16, 16], "n": 4}, r"datasets\.digits\.players\.grid .* finer than the 8×8"),
        ({"grid": [4, 4], "n": 2, "cells": [[0, 0], [4, 1]]}, r"cell \[4, 1\] lies outside"),
        ({"grid": [4, 4], "n": 3, "cells": [[0, 0], [1, 1]]}, r"lists 2 cells but n is 3"),
    ],
)
def test_impossible_player_layouts(players, message):
    config = base()
    config["datasets"]["digits"]["players"] = players
    with pytest.raises(ConfigError, match=message):
        resolve(config)


def test_architecture_must_fit_the_data():
    config = {"datasets": {"breast_cancer": {"architectures": ["resnet18"], "players": {"n": 5}}}}
    with pytest.raises(ConfigError, match=r"datasets\.breast_cancer\.architectures: 'resnet18'"):
        resolve(config)


def test_missing_data_root_is_named(tmp_path):
    config = {"datasets": {"cifar10": {"architectures": ["lenet"], "players": {"grid": [4, 4]}}}}
    with pytest.raises(ConfigError, match=r"datasets\.cifar10\.root \(or data_root\) is required"):
        resolve(config)
    config["data_root"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="nowhere.*does not exist"):
        resolve(config)


def test_run_names_change_with_every_setting_that_determines_them():
    first = resolve(base()).runs[0].name
    config = base()
    config["training"] = {"lr": 0.01}
    assert resolve(config).runs[0].name != first
    config = base()
    config["extraction"] = {"solver": "lp"}  # extraction settings do not touch the run
    assert resolve(config).runs[0].name == first


@pytest.mark.parametrize(
    "players, expected",
    [
        ({"grid": [4, 4], "n": 17}, "datasets.digits.players.n = 17 exceeds the 16 cells"),
        ({"grid": [8, 8], "n": 99}, "['datasets']['digits']['players']['n']"),
    ],
)
def test_dry_run_fails_naming_the_key(tmp_path, players, expected):
    config = base()
    config["datasets"]["digits"]["players"] = players
    path = write(tmp_path, config)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "--configfile",
            str(path),
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr, (result.stdout + result.stderr)[-2000:]


# --------------------------------------------------------------------------- single sources


def _schema() -> dict:
    return yaml.safe_load(schema_path().read_text())


def test_dataset_and_architecture_names_come_from_the_registries(tmp_path):
    schema = _schema()["properties"]["datasets"]
    assert "propertyNames" not in schema  # no second list of names to keep in step
    config = base()
    config["datasets"]["imagenet"] = config["datasets"].pop("digits")
    with pytest.raises(ConfigError, match="datasets.imagenet: unknown dataset"):
        load_study(write(tmp_path, config))
    config = base()
    config["datasets"]["digits"]["architectures"] = ["resnet50"]
    with pytest.raises(ConfigError, match="datasets.digits.architectures: 'resnet50'"):
        load_study(write(tmp_path, config))
    assert set(architectures_for("image")) <= set(ARCHITECTURES)


def test_every_dataset_kind_has_an_architecture():
    for name, spec in DATASETS.items():
        assert architectures_for(spec.kind), name


def test_schema_defaults_are_the_library_defaults():
    schema = _schema()["properties"]
    top = {key: schema[key]["default"] for key in DEFAULT_STUDY}
    assert top == DEFAULT_STUDY
    for section, defaults in (("extraction", EXTRACTION_DEFAULTS), ("analysis", ANALYSIS_DEFAULTS)):
        properties = schema[section]["properties"]
        assert {key: sub["default"] for key, sub in properties.items()} == defaults, section


def test_resolve_fills_the_defaults_without_the_schema():
    study = resolve(
        {"datasets": {"digits": {"architectures": ["mlp"], "players": {"grid": [4, 4]}}}}
    )
    assert study.extraction == EXTRACTION_DEFAULTS
    assert study.analysis == ANALYSIS_DEFAULTS
    assert study.name == "default" and study.device == "auto"
