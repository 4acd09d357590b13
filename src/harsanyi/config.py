"""A study config resolved into training runs, sample selections and extraction settings.

The config is first validated against `workflow/schemas/config.schema.yaml` (by Snakemake
at start-up, or by `load_study`); this module adds the checks a schema cannot express
(architecture fits the data, player layout fits the input, data roots exist) and derives
every run's identity.  A run directory is named `<label>-<hash>`, the hash taken over
everything that determines the run, so that a shared results store never mixes results
of different settings.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harsanyi.data import DATASETS
from harsanyi.io import settings_hash
from harsanyi.models import architectures_for
from harsanyi.players import PlayerRequestError, players_for_input
from harsanyi.store import run_dirname
from harsanyi.train import checkpoint_schedule

# Bump when a change to the code changes what a step computes; part of every hash.
TRAIN_VERSION = 1
SELECT_VERSION = 2
EXTRACT_VERSION = 1

DEFAULT_TRAINING: dict[str, Any] = {
    "epochs": 30,
    "batch_size": 64,
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "optimizer": "sgd",
    "checkpoints": {"dense_until": 10, "dense_every": 1, "sparse_every": 5},
}
DEFAULT_SAMPLES: dict[str, Any] = {
    "train_per_class": 2,
    "test_per_class": 2,
    "flipped": 10,
    "seed": 0,
}
DEFAULT_PLAYERS: dict[str, Any] = {"n": 10, "seed": 0}
# The defaults of the schema's top-level keys, `extraction` and `analysis`:
# workflow/schemas/config.schema.yaml states the same values (tests/test_config.py checks).
DEFAULT_STUDY: dict[str, Any] = {
    "study": "default",
    "results": "results",
    "data_root": None,
    "seeds": [0],
    "label_noise": [0.0],
    "noise_seed": 0,
    "device": "auto",
}
EXTRACTION_DEFAULTS: dict[str, Any] = {
    "output": "log_odds",
    "solver": "exact",
    "qthres": 0.02,
    "iters": None,
    "lr": None,
    "normalize": True,
    "memory_budget_mb": 1024,
}
ANALYSIS_DEFAULTS: dict[str, Any] = {
    "salient_ratio": 0.05,
    "shown_checkpoints": 4,
    "jaccard_variant": "average_then_split",
    "gap_fraction": 0.1,
    "bootstrap": 1000,
}


class ConfigError(ValueError):
    """A study config that cannot run; the message names the offending key."""


def _merge(base: dict, override: dict | None) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Run:
    """One training run: dataset × architecture × seed × label noise."""

    dataset: str
    arch: str
    seed: int
    label_noise: float
    settings: dict = field(hash=False, compare=False)

    @property
    def name(self) -> str:
        """Directory name in the store: readable label plus the hash of the settings."""
        return run_dirname(self.settings)

    @property
    def epochs(self) -> list[int]:
        return self.settings["checkpoint_epochs"]


@dataclass
class DatasetPlan:
    """Everything a study does with one dataset, shared by all its runs."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    num_classes: int
    root: str | None
    data_options: dict
    players: dict
    baseline: dict
    samples: dict
    label_noise: list[float]
    noise_seed: int

    @property
    def selection(self) -> dict:
        """What determines the sample manifest."""
        return {
            "version": SELECT_VERSION,
            "dataset": self.name,
            "data": self.data_options,
            "players": self.players,
            "samples": self.samples,
            # not the noise levels: flips are nested, so the selection serves every level
            "noise_seed": self.noise_seed,
        }

    @property
    def selection_id(self) -> str:
        return f"sel-{settings_hash(self.selection)}"


@dataclass
class Study:
    name: str
    results: Path
    datasets: dict[str, DatasetPlan]
    runs: list[Run]
    extraction: dict
    analysis: dict
    device: str

    def extraction_settings(self, dataset: str, arch: str) -> dict:
        plan = self.datasets[dataset]
        baseline = dict(plan.baseline)
        if baseline["type"] == "feature_map":
            baseline = {"type": "feature_map", "layer": baseline["layers"][arch]}
        return {
            "version": EXTRACT_VERSION,
            "selection": plan.selection_id,
            "baseline": baseline,
            **self.extraction,
        }

    def extraction_id(self, run: Run) -> str:
        return f"x-{settings_hash(self.extraction_settings(run.dataset, run.arch))}"

    @property
    def study_id(self) -> str:
        """`<study>-<hash>`: the directory of the study's tables and figures, named by its
        runs and their extractions."""
        runs = sorted((run.name, self.extraction_id(run)) for run in self.runs)
        return f"{self.name}-{settings_hash(runs)}"

    def run_by_name(self, name: str) -> Run:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"no run named {name!r} in study {self.name!r}")


def resolve(config: dict, *, check_data: bool = True) -> Study:
    """Turn a schema-validated config into a Study, raising ConfigError naming the key."""
    datasets: dict[str, DatasetPlan] = {}
    runs: list[Run] = []
    config = {**DEFAULT_STUDY, **config}
    base_training = _merge(DEFAULT_TRAINING, config.get("training"))
    noise_levels = sorted(set(float(x) for x in config["label_noise"]))
    noise_seed = int(config["noise_seed"])
    for name, entry in config["datasets"].items():
        if name not in DATASETS:
            raise ConfigError(f"datasets.{name}: unknown dataset; known: {sorted(DATASETS)}")
        spec = DATASETS[name]
        kind, shape, num_classes = spec.kind, spec.input_shape, spec.num_classes
        image_size = entry.get("image_size")
        if shape is None:
            size = image_size or 64
            shape = (3, size, size)
        root = entry.get("root") or (
            str(Path(config["data_root"]) / name) if config.get("data_root") else None
        )
        if spec.needs_root and root is None:
            raise ConfigError(f"datasets.{name}.root (or data_root) is required for {name!r}")
        if check_data and root is not None and not Path(root).exists():
            raise ConfigError(f"datasets.{name}.root: data root {root!r} does not exist")
        for arch in entry["architectures"]:
            if arch not in architectures_for(kind):
                raise ConfigError(
                    f"datasets.{name}.architectures: {arch!r} does not take {kind} inputs; "
                    f"use one of {architectures_for(kind)}"
                )
        players = {**DEFAULT_PLAYERS, **entry["players"]}
        player_type = players_for_input(kind)
        try:
            player_type.check_request(players, shape, f"datasets.{name}.players", name)
        except PlayerRequestError as err:
            raise ConfigError(str(err)) from err
        baseline = entry.get("baseline") or {"type": player_type.baselines[0]}
        if baseline["type"] not in player_type.baselines:
            raise ConfigError(
                f"datasets.{name}.baseline.type {baseline['type']!r} is not for {kind} data; "
                f"use one of {sorted(player_type.baselines)}"
            )
        if baseline["type"] == "feature_map":
            layers = baseline.get("layers") or {}
            missing = [a for a in entry["architectures"] if a not in layers]
            if missing:
                raise ConfigError(f"datasets.{name}.baseline.layers names no layer for {missing}")
        data_options = {
            "max_train": entry.get("max_train"),
            "max_test": entry.get("max_test"),
            "image_size": image_size,
        }
        plan = DatasetPlan(
            name=name,
            kind=kind,
            input_shape=tuple(shape),
            num_classes=num_classes,
            root=root,
            data_options=data_options,
            players=players,
            baseline=baseline,
            samples={**DEFAULT_SAMPLES, **(entry.get("samples") or {})},
            label_noise=noise_levels,
            noise_seed=noise_seed,
        )
        datasets[name] = plan
        training = _merge(base_training, entry.get("training"))
        schedule = checkpoint_schedule(training["epochs"], **training["checkpoints"])
        for arch in entry["architectures"]:
            for seed in config["seeds"]:
                for noise in noise_levels:
                    settings = {
                        "version": TRAIN_VERSION,
                        "dataset": name,
                        "data": data_options,
                        "arch": arch,
                        "seed": int(seed),
                        "label_noise": noise,
                        "noise_seed": noise_seed,
                        "training": training,
                        "checkpoint_epochs": schedule,
                    }
                    runs.append(Run(name, arch, int(seed), noise, settings))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError("two runs of the study resolve to the same settings (repeated seeds?)")
    return Study(
        name=config["study"],
        results=Path(config["results"]),
        datasets=datasets,
        runs=runs,
        extraction={**EXTRACTION_DEFAULTS, **(config.get("extraction") or {})},
        analysis={**ANALYSIS_DEFAULTS, **(config.get("analysis") or {})},
        device=config["device"],
    )


def schema_path() -> Path:
    """The config schema shipped with the workflow (repository checkout only)."""
    return Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_study(path: str | Path, *, check_data: bool = True) -> Study:
    """Read, validate (schema with defaults) and resolve a study config file."""
    import yaml
    from jsonschema import Draft202012Validator, validators

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"study config {path} does not exist")
    config = yaml.safe_load(path.read_text()) or {}
    schema = yaml.safe_load(schema_path().read_text())

    def set_defaults(validator, properties, instance, schema):
        for prop, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(prop, copy.deepcopy(sub["default"]))
        yield from Draft202012Validator.VALIDATORS["properties"](
            validator, properties, instance, schema
        )

    validator_cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{path}: {where}: {error.message}")
    return resolve(config, check_data=check_data)
