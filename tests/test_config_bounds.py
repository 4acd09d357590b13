"""Settings that used to pass the checks and fail (or exhaust memory) later are refused at
start-up, naming their key (issue #22): bounds on every size, strict integers, the device,
and config templating."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harsanyi.config import ConfigError, load_study

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / "tests" / "data" / "tiny.yaml").read_text())


def write(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "change, key",
    [
        ({"training": {"epochs": 1_000_000_000}}, "training.epochs"),
        ({"seeds": list(range(5000))}, "seeds"),
        ({"device": "banana"}, "device"),
        ({"sensitivity": {"permutations": 10**9}}, "sensitivity.permutations"),
    ],
)
def test_out_of_bounds_settings_are_refused_naming_the_key(tmp_path, change, key):
    with pytest.raises(ConfigError, match=rf"{key}: "):
        load_study(write(tmp_path, {**TINY, **change}), check_data=False)


def test_a_float_where_an_integer_belongs_is_refused_naming_the_key(tmp_path):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["datasets"]["digits"]["players"]["n"] = 6.0
    with pytest.raises(ConfigError, match=r"datasets\.digits\.players\.n: 6\.0 is not of type"):
        load_study(write(tmp_path, config), check_data=False)
    config["datasets"]["digits"]["players"]["n"] = 6
    assert load_study(write(tmp_path, config), check_data=False).runs


def test_config_templating_is_refused_by_check_config_and_the_workflow(tmp_path):
    templated = write(tmp_path, {**TINY, "__use_yte__": True, "results": str(tmp_path / "r")})
    with pytest.raises(ConfigError, match="__use_yte__: config templating is refused"):
        load_study(templated, check_data=False)
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile", templated],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "config templating is refused" in done.stdout + done.stderr


def test_the_workflow_refuses_a_float_integer_that_its_own_schema_check_lets_pass(tmp_path):
    config = yaml.safe_load(yaml.safe_dump(TINY))
    config["datasets"]["digits"]["players"]["n"] = 6.0
    config["results"] = str(tmp_path / "r")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--cores",
            "1",
            "--configfile",
            write(tmp_path, config),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert "datasets.digits.players.n" in done.stdout + done.stderr
