"""Study configs: schema validation with defaults, and the checks a schema cannot express."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harsanyi import sparsifier
from harsanyi.cli import main
from harsanyi.config import (
    ANALYSIS_DEFAULTS,
    DEFAULT_STUDY,
    EXTRACTION_DEFAULTS,
    JOINT_DEFAULTS,
    SENSITIVITY_DEFAULTS,
    ConfigError,
    check_extraction_memory,
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
    sections = (
        ("extraction", EXTRACTION_DEFAULTS),
        ("analysis", ANALYSIS_DEFAULTS),
        ("sensitivity", SENSITIVITY_DEFAULTS),
        ("joint", JOINT_DEFAULTS),
    )
    for section, defaults in sections:
        properties = schema[section]["properties"]
        assert {key: sub["default"] for key, sub in properties.items()} == defaults, section


def test_resolve_fills_the_defaults_without_the_schema():
    study = resolve(
        {"datasets": {"digits": {"architectures": ["mlp"], "players": {"grid": [4, 4]}}}}
    )
    # face_ends: None resolves to whether the solver is certified (exact, the default, is)
    assert study.extraction == {**EXTRACTION_DEFAULTS, "face_ends": True}
    assert study.analysis == ANALYSIS_DEFAULTS
    assert study.sensitivity == SENSITIVITY_DEFAULTS and study.joint == JOINT_DEFAULTS
    assert study.name == "default" and study.device == "auto"


# --------------------------------------------------------------------------- --configfile


def _dry_run(*args: str) -> str:
    """Output of a dry run of every job, from the repository root as users run it."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--nolock", "--cores", "1", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def _planned_outputs(*args: str) -> set[str]:
    lines = [line.strip() for line in _dry_run(*args).splitlines()]
    return {
        path
        for line in lines
        if line.startswith("output: ")
        for path in line.removeprefix("output: ").split(", ")
    }


def _planned_jobs(*args: str) -> dict[str, int]:
    """Job counts of a dry run from the repository root, as users run the workflow."""
    output = _dry_run(*args)
    table = output.split("Job stats:")[1].split("\n\n")[0]
    counts = {}
    for line in table.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.parametrize("configfile", ["tests/data/tiny.yaml", "config/fashion_mnist.yaml"])
def test_a_configfile_runs_exactly_its_study(configfile):
    """`--configfile X` must not inherit the datasets of the embedded default study."""
    if "fashion" in configfile and not Path("/usr/share/datasets/fashion-mnist").exists():
        pytest.skip("Fashion-MNIST data not installed")
    study = load_study(REPO / configfile)
    jobs = _planned_jobs("--configfile", configfile)
    assert jobs["train"] == len(study.runs)
    assert jobs["select_samples"] == len(study.datasets)


def test_without_a_configfile_the_embedded_default_runs():
    study = load_study(REPO / "config" / "config.yaml")
    jobs = _planned_jobs()
    assert jobs["train"] == len(study.runs)
    # sensitivity per measured checkpoint, joint extraction per group and shared checkpoint
    assert study.sensitivity["enabled"] and study.joint["enabled"]
    n_sensitivity = sum(len(study.sensitivity_epochs(r)) for r in study.runs)
    assert jobs["sensitivity_games"] == jobs["sensitivity"] == n_sensitivity
    groups = study.joint_groups()
    # digits lenet + mlp, without and with label noise, per seed
    seeds = {run.seed for run in study.runs}
    assert len(groups) == 2 * len(seeds) and len(seeds) >= 3  # pooled over seeds (#23)
    assert jobs["joint_extract"] == sum(len(study.joint_epochs(r)) for r in groups.values())
    assert jobs["sensitivity_study"] == jobs["joint_study"] == 1
    # no variants in the default study itself (its time budget): config/variants.yaml adds them
    assert not study.variants and "redecompose" not in jobs
    checkpoints = sum(len(run.epochs) for run in study.runs)
    assert jobs["extract"] == checkpoints


def test_the_variants_file_adds_the_published_procedure_and_qthres0_to_the_default():
    """`--configfile config/config.yaml config/variants.yaml`: the default study, every claim
    also under the published procedure and at qthres 0, from the stored games."""
    jobs = _planned_jobs("--configfile", "config/config.yaml", "config/variants.yaml")
    study = load_study(REPO / "config" / "config.yaml")
    checkpoints = sum(len(run.epochs) for run in study.runs)
    assert jobs["extract"] == checkpoints
    assert jobs["redecompose"] == 2 * checkpoints
    assert jobs["variant_scorecard"] == 2 and jobs["variants_study"] == 1


def test_the_one_seed_file_runs_a_third_of_the_default_study():
    """`--configfile config/config.yaml config/one_seed.yaml`: seed 0 of the default study,
    a third of its trainings and extractions."""
    three = _planned_jobs("--configfile", "config/config.yaml")
    one = _planned_jobs("--configfile", "config/config.yaml", "config/one_seed.yaml")
    for rule in ("train", "games", "extract", "joint_extract", "sensitivity"):
        assert 3 * one[rule] == three[rule], rule


def test_analysis_settings_name_the_paths_of_what_they_determine(tmp_path):
    """Another salient_ratio computes new tables beside the old ones: every study table and
    the per-run tables that read the ratio get new paths, the others keep theirs."""
    changed = yaml.safe_load((REPO / "tests/data/tiny.yaml").read_text())
    changed["analysis"] = {"salient_ratio": 0.1}
    other = tmp_path / "ratio.yaml"
    other.write_text(yaml.safe_dump(changed))
    before = _planned_outputs("--configfile", "tests/data/tiny.yaml")
    after = _planned_outputs("--configfile", str(other))
    study_tables = {path for path in before if "/studies/" in path}
    assert study_tables and not study_tables & after
    reads_ratio = ("order_strength.tsv", "theory_fit.tsv", "ood_strength.tsv")
    assert not {path for path in before if path.endswith(reads_ratio)} & after
    ratio_free = {path for path in before if path.endswith(("jaccard.tsv", "shapley.tsv"))}
    ratio_free = {path for path in ratio_free if "/runs/" in path}
    assert ratio_free and ratio_free <= after
    # training, extraction and selection are untouched by an analysis setting
    assert {
        path for path in before if "/analysis/" not in path and "/studies/" not in path
    } <= after


# --------------------------------------------------------------------------- checked up front


def test_an_unknown_solver_fails_at_start_up_naming_the_key(tmp_path, monkeypatch):
    config = base()
    config["extraction"] = {"solver": "pdhg"}
    with pytest.raises(ConfigError, match=r"extraction.solver: unknown solver 'pdhg'"):
        load_study(write(tmp_path, config))
    # the names come from the sparsifier's registry, so a solver added there is accepted
    monkeypatch.setitem(sparsifier.SOLVERS, "pdhg", sparsifier.SOLVERS["lp"])
    assert load_study(write(tmp_path, config)).extraction["solver"] == "pdhg"


def test_malformed_yaml_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("study: x\ndatasets:\n  digits:\n    architectures: [lenet\n    n: 3\n")
    with pytest.raises(ConfigError, match=rf"{path}:5:\d+: malformed YAML.*opened at line 4"):
        load_study(path)
    assert main(["check-config", str(path)]) == 1
    assert f"{path}:5:" in capsys.readouterr().err


def test_the_extraction_estimate_is_checked_before_any_work(tmp_path, capsys):
    config = base()
    config["datasets"]["digits"]["players"]["n"] = 20
    config["extraction"] = {"memory_budget_mb": 1}
    path = write(tmp_path, config)
    study = load_study(path)
    (estimate,) = check_extraction_memory(study, None)
    assert estimate.forward_passes == estimate.samples * 2**20
    assert estimate.memory_bytes > 2000 * 2**20
    with pytest.raises(ConfigError, match=r"datasets.digits.players.n = 20: .*2000 MB"):
        check_extraction_memory(study, 2000)
    assert main(["check-config", str(path), "--mem-mb", "2000"]) == 1
    assert main(["check-config", str(path)]) == 0
    assert "masked forward passes per checkpoint" in capsys.readouterr().out
    # the workflow compares it with the memory the extract rule asks for, at start-up
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "1"]
        + ["--configfile", str(path), "--set-resources", "extract:mem_mb=2000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "datasets.digits.players.n = 20" in result.stdout + result.stderr
    # without a command-line ask the extract rule's own (workflow/resources.yaml) counts
    config["datasets"]["digits"]["samples"] = {"train_per_class": 5, "test_per_class": 5}
    path = write(tmp_path, config)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "1"]
        + ["--configfile", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "the extract rule asks for" in result.stdout + result.stderr
