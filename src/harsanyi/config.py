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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harsanyi.analyses.common import shown_epochs
from harsanyi.data import DATASETS
from harsanyi.io import settings_hash
from harsanyi.models import ARCHITECTURES, architectures_for
from harsanyi.players import PlayerRequestError, players_for_input
from harsanyi.sparsifier import CANONICAL_VERSION, CERTIFIED_SOLVERS, SGD_VERSION, SOLVERS
from harsanyi.store import run_dirname
from harsanyi.train import checkpoint_schedule

# Bump when a change to the code changes what a step computes; part of every hash.
TRAIN_VERSION = 1
SELECT_VERSION = 2
EXTRACT_VERSION = 1
GAMES_VERSION = 1
SENSITIVITY_VERSION = 1
JOINT_VERSION = 1

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
    # umask 002 in the workflow and every job: a results store a Unix group shares
    "group_writable": False,
}
EXTRACTION_DEFAULTS: dict[str, Any] = {
    "output": "log_odds",
    "solver": "exact",
    "qthres": 0.02,
    "iters": None,
    "lr": None,
    "normalize": True,
    "memory_budget_mb": 1024,
    # Both ends of the optimal face beside the canonical optimum (harsanyi.face): every claim
    # about orders is scored at both; needs a certified solver.  None: true for the certified
    # solvers, false for the others.
    "face_ends": None,
}
ANALYSIS_DEFAULTS: dict[str, Any] = {
    "salient_ratio": 0.05,
    "shown_checkpoints": 4,
    "jaccard_variant": "average_then_split",
    "gap_fraction": 0.1,
    "bootstrap": 1000,
    # Decomposition variants: the stored games decomposed again under other settings (no new
    # forward passes) and every per-run claim scored on them beside the main extraction.
    "variants": [],
}
# The extraction keys a decomposition variant (`analysis.variants`) may change.
VARIANT_KEYS = ("solver", "qthres", "lr", "iters", "normalize")
# Names a variant cannot take: scorecard_<name>.tsv would be another table of the study.
RESERVED_VARIANT_NAMES = ("main", "seeds", "variants")
# Sensitivity of interactions to input perturbations, per checkpoint (harsanyi.sensitivity):
# `checkpoints` of each run spread over training, the first `samples_per_split` train and
# test samples of the manifest.  Off unless the config turns it on.
SENSITIVITY_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "sigmas": [0.05],
    "pgd_eps": [0.01],
    "pgd_steps": 5,
    "draws": 1,
    "checkpoints": 4,
    "samples_per_split": 10,
    "permutations": 1000,
    "seed": 0,
}
# Joint extraction (harsanyi.joint) of the runs of one dataset, seed and label noise that differ
# only in their architecture, at `checkpoints` checkpoints spread over training, on the first
# `samples_per_split` samples of each split of their games (None: all of them).
JOINT_DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "alpha": 0.1,
    "checkpoints": 4,
    "samples_per_split": None,
}


def _set_only(settings: dict) -> dict:
    """`settings` without the keys left at None, so that a setting added later with a None
    default keeps the ids of the studies that predate it."""
    return {key: value for key, value in settings.items() if value is not None}


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
            # text: only sentences with at least n playable tokens are chosen (other kinds
            # keep their ids)
            **({"eligible": "tokens >= n"} if self.kind == "text" else {}),
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
    sensitivity: dict = field(default_factory=lambda: dict(SENSITIVITY_DEFAULTS))
    joint: dict = field(default_factory=lambda: dict(JOINT_DEFAULTS))

    def extraction_settings(self, dataset: str, arch: str) -> dict:
        plan = self.datasets[dataset]
        baseline = dict(plan.baseline)
        if baseline["type"] == "feature_map":
            baseline = {"type": "feature_map", "layer": baseline["layers"][arch]}
        settings = {
            "version": EXTRACT_VERSION,
            "selection": plan.selection_id,
            "baseline": baseline,
            **{key: value for key, value in self.extraction.items() if key != "face_ends"},
        }
        if self.extraction["face_ends"]:
            # files with the face's ends; extractions without them keep their ids
            settings["face_ends"] = True
        if self.extraction["solver"] == "exact":
            # its answer depends on the tie-break's version; other solvers keep their ids
            settings["canonical_version"] = CANONICAL_VERSION
        return _solver_version(settings)

    def extraction_id(self, run: Run) -> str:
        return f"x-{settings_hash(self.extraction_settings(run.dataset, run.arch))}"

    def game_settings(self, dataset: str, arch: str) -> dict:
        """What the games of a checkpoint (v on every mask of every explained sample) depend
        on beside the checkpoint: the samples and players, the baseline and the output; not
        the decomposition settings, so every decomposition (and variant) of a checkpoint
        shares one games file."""
        settings = self.extraction_settings(dataset, arch)
        return {
            "version": GAMES_VERSION,
            **{key: settings[key] for key in ("selection", "baseline", "output")},
        }

    def games_job_settings(self, dataset: str, arch: str) -> dict:
        """What rule games passes its job: the games settings and the memory budget of its
        batches (which sizes the batches, not v); no decomposition setting, so changing one
        re-decomposes the stored games without running the model again."""
        return {
            **self.game_settings(dataset, arch),
            "memory_budget_mb": self.extraction["memory_budget_mb"],
        }

    def game_id(self, run: Run) -> str:
        """`g-<hash>` of the games settings: the directory of a run's games files."""
        return f"g-{settings_hash(self.game_settings(run.dataset, run.arch))}"

    @property
    def variants(self) -> dict[str, dict]:
        """The decomposition variants (`analysis.variants`) by name, without the name."""
        return {
            entry["name"]: {key: entry[key] for key in VARIANT_KEYS if key in entry}
            for entry in self.analysis["variants"]
        }

    def variant_settings(self, run: Run, name: str) -> dict:
        """The extraction settings of variant `name` of `run`: the run's own with the
        variant's decomposition settings; the ends of the optimal face where the study stores
        them and the variant's solver is certified (its claims about orders are then scored
        at both ends too)."""
        settings = self.extraction_settings(run.dataset, run.arch)
        for key in ("face_ends", "canonical_version", "sgd_version"):
            settings.pop(key, None)
        settings.update(self.variants[name])
        if self.extraction["face_ends"] and settings["solver"] in CERTIFIED_SOLVERS:
            settings["face_ends"] = True
        if settings["solver"] == "exact":
            settings["canonical_version"] = CANONICAL_VERSION
        return _solver_version(settings)

    def variant_id(self, run: Run, name: str) -> str:
        """`x-<hash>` of variant `name` of `run`: its results files' own extraction id."""
        return f"x-{settings_hash(self.variant_settings(run, name))}"

    @property
    def study_id(self) -> str:
        """`<study>-<hash>`: the directory of the study's tables and figures, named by its
        runs and their extractions."""
        runs = sorted((run.name, self.extraction_id(run)) for run in self.runs)
        return f"{self.name}-{settings_hash(runs)}"

    @property
    def analysis_id(self) -> str:
        """`a-<hash>` of the analysis settings: the directory of the study's tables and
        figures inside its study directory, so other settings never overwrite them.  The
        sensitivity and joint settings count once enabled (a study without them keeps its id)."""
        settings = dict(self.analysis)
        if not settings.get("variants"):
            settings.pop("variants", None)  # a study without variants keeps its id
        for name in ("sensitivity", "joint"):
            if getattr(self, name)["enabled"]:
                settings[name] = _set_only(getattr(self, name))
        return f"a-{settings_hash(settings)}"

    @property
    def sensitivity_id(self) -> str:
        """`s-<hash>` of what the sensitivity files depend on beside the run and extraction."""
        settings = {k: v for k, v in self.sensitivity.items() if k != "enabled"}
        return f"s-{settings_hash({'version': SENSITIVITY_VERSION, **settings})}"

    def sensitivity_epochs(self, run: Run) -> list[int]:
        """The checkpoints whose sensitivity is measured: first, last and evenly between."""
        return shown_epochs(run.epochs, self.sensitivity["checkpoints"])

    def joint_groups(self) -> dict[str, list[Run]]:
        """Runs that differ only in their architecture (≥ 2), by `j-<hash>` of their names,
        extraction ids and the joint settings."""
        groups: dict[tuple, list[Run]] = {}
        for run in self.runs:
            groups.setdefault((run.dataset, run.seed, run.label_noise), []).append(run)
        out = {}
        for runs in groups.values():
            if len(runs) < 2:
                continue
            runs = sorted(runs, key=lambda r: r.arch)
            key = {
                "version": JOINT_VERSION,
                "runs": [(r.name, self.extraction_id(r)) for r in runs],
                "alpha": self.joint["alpha"],
            }
            if self.joint["samples_per_split"] is not None:
                key["samples_per_split"] = self.joint["samples_per_split"]
            out[f"j-{settings_hash(key)}"] = runs
        return out

    def joint_epochs(self, runs: list[Run]) -> list[int]:
        """Checkpoints all `runs` share, `joint.checkpoints` of them spread over training."""
        common = sorted(set.intersection(*(set(r.epochs) for r in runs)))
        return shown_epochs(common, self.joint["checkpoints"])

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
            if arch not in ARCHITECTURES:
                raise ConfigError(
                    f"datasets.{name}.architectures: {arch!r} is an unknown architecture; "
                    f"known: {sorted(ARCHITECTURES)} (for {kind} inputs: "
                    f"{architectures_for(kind)})"
                )
            if arch not in architectures_for(kind):
                raise ConfigError(
                    f"datasets.{name}.architectures: {arch!r} does not take {kind} inputs; "
                    f"use one of {architectures_for(kind)}"
                )
        sizes = entry.get("models") or {}
        for arch, options in sizes.items():
            if arch not in entry["architectures"]:
                raise ConfigError(
                    f"datasets.{name}.models.{arch}: {arch!r} is not among the dataset's "
                    f"architectures {entry['architectures']}"
                )
            heads = options.get("num_heads", 2)
            if options.get("hidden_size", 128) % heads:
                raise ConfigError(
                    f"datasets.{name}.models.{arch}.hidden_size "
                    f"{options.get('hidden_size', 128)} is not a multiple of num_heads {heads}"
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
        if plan.samples["flipped"] == 0 and any(noise_levels):
            raise ConfigError(
                f"datasets.{name}.samples.flipped: 0, but label_noise {noise_levels} flips "
                "labels: a noisy run explains its flipped samples (the OOD claim); give at "
                "least 1"
            )
        datasets[name] = plan
        training = _merge(base_training, entry.get("training"))
        if not training.get("mask_players"):
            training.pop("mask_players", None)  # unmasked runs keep their hashes
        elif kind == "image":
            raise ConfigError(
                f"datasets.{name}: training.mask_players = {training['mask_players']} is for "
                f"text and tabular datasets, not the image dataset {name!r}"
            )
        schedule = checkpoint_schedule(training["epochs"], **training["checkpoints"])
        for arch in entry["architectures"]:
            for seed in config["seeds"]:
                for noise in noise_levels:
                    settings = {
                        "version": TRAIN_VERSION,
                        "dataset": name,
                        "data": data_options,
                        "arch": arch,
                        # architecture sizes only where set: standard runs keep their names
                        **({"model": dict(sizes[arch])} if sizes.get(arch) else {}),
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
    study = Study(
        name=config["study"],
        results=Path(config["results"]),
        datasets=datasets,
        runs=runs,
        extraction={**EXTRACTION_DEFAULTS, **(config.get("extraction") or {})},
        analysis={**ANALYSIS_DEFAULTS, **(config.get("analysis") or {})},
        device=config["device"],
        sensitivity={**SENSITIVITY_DEFAULTS, **(config.get("sensitivity") or {})},
        joint={**JOINT_DEFAULTS, **(config.get("joint") or {})},
    )
    _check_extraction(study)
    _check_sensitivity(study)
    _check_joint(study.joint)
    _check_variants(study)
    return study


def _solver_version(settings: dict) -> dict:
    """`settings` with the version of the `sgd` defaults where they decide the answer (lr or
    iters left to the solver), so that results of the old defaults keep their own ids."""
    if settings["solver"] == "sgd" and (settings["lr"] is None or settings["iters"] is None):
        settings["sgd_version"] = SGD_VERSION
    return settings


# Arrays of (samples × 2^n) float64 an extraction holds at its peak: v and its normalised
# copy, p and q with their gradients and two optimizer moments each, the AND and OR parts.
EXTRACTION_ARRAYS = 12
# Python, torch and the model, beside those arrays and the chunk of masked inputs.
PROCESS_OVERHEAD_MB = 512
# Results-file arrays of (samples × 2^n) float64: v, I_and, I_or, p, q, and I_and, I_or, p, q of
# each end of the optimal face (before compression).
RESULTS_ARRAYS = 13


@dataclass(frozen=True)
class ExtractionEstimate:
    """What extracting one checkpoint of a dataset costs, known before any work."""

    dataset: str
    n: int
    samples: int
    forward_passes: int
    input_bytes: int
    results_bytes: int
    memory_bytes: int

    def describe(self) -> str:
        return (
            f"{self.dataset}: n = {self.n}, {self.samples} samples × 2^{self.n} masks = "
            f"{self.forward_passes:,} masked forward passes per checkpoint; results file up "
            f"to {self.results_bytes / 2**20:,.0f} MiB; extraction memory about "
            f"{self.memory_bytes / 2**20:,.0f} MiB"
        )


def _explained_samples(plan: DatasetPlan) -> int:
    samples = plan.samples
    count = (samples["train_per_class"] + samples["test_per_class"]) * plan.num_classes
    return count + (samples["flipped"] if any(plan.label_noise) else 0)


def extraction_estimate(plan: DatasetPlan, extraction: dict) -> ExtractionEstimate:
    """Forward passes, results-file size and memory of extracting one checkpoint of `plan`
    (an upper bound on the samples: every class is assumed to have enough of them)."""
    n = int(plan.players["n"])
    samples = _explained_samples(plan)
    rows = samples * 2**n
    # a masked input as the model sees it: float32 values, or int64 token ids for text
    input_bytes = math.prod(plan.input_shape) * (8 if plan.kind == "text" else 4)
    return ExtractionEstimate(
        dataset=plan.name,
        n=n,
        samples=samples,
        forward_passes=rows,
        input_bytes=input_bytes,
        results_bytes=rows * 8 * RESULTS_ARRAYS,
        memory_bytes=(extraction["memory_budget_mb"] + PROCESS_OVERHEAD_MB) * 2**20
        + rows * 8 * EXTRACTION_ARRAYS,
    )


def check_extraction_memory(study: Study, mem_mb: float | None) -> list[ExtractionEstimate]:
    """The extraction estimate of every dataset; ConfigError when one exceeds `mem_mb`, the
    memory an extract job is given (None: not known here)."""
    estimates = [extraction_estimate(plan, study.extraction) for plan in study.datasets.values()]
    for estimate in estimates:
        if mem_mb is not None and estimate.memory_bytes > mem_mb * 2**20:
            raise ConfigError(
                f"datasets.{estimate.dataset}.players.n = {estimate.n}: extracting one "
                f"checkpoint needs about {estimate.memory_bytes / 2**20:,.0f} MiB "
                f"({estimate.describe()}), more than the {mem_mb:g} MB the extract rule "
                "asks for; lower n or the samples, or raise extract's mem_mb"
            )
    return estimates


def _check_extraction(study: Study) -> None:
    solver = study.extraction["solver"]
    if solver not in SOLVERS:
        raise ConfigError(f"extraction.solver: unknown solver {solver!r}; known: {sorted(SOLVERS)}")
    face = study.extraction["face_ends"]
    if face is None:
        face = study.extraction["face_ends"] = solver in CERTIFIED_SOLVERS
    if not isinstance(face, bool):
        raise ConfigError(f"extraction.face_ends: must be true or false, got {face!r}")
    if face and solver not in CERTIFIED_SOLVERS:
        raise ConfigError(
            f"extraction.face_ends: the ends of the optimal face need a certified solver "
            f"({', '.join(CERTIFIED_SOLVERS)}), not {solver!r}; set face_ends: false"
        )
    budget = study.extraction["memory_budget_mb"]
    for plan in study.datasets.values():
        estimate = extraction_estimate(plan, study.extraction)
        if estimate.input_bytes > budget * 2**20:
            raise ConfigError(
                f"extraction.memory_budget_mb = {budget} cannot hold one masked input of "
                f"{plan.name!r} ({estimate.input_bytes:,} bytes)"
            )


def _check_variants(study: Study) -> None:
    """ConfigError naming `analysis.variants[i]` for a variant that cannot run or repeats."""
    seen: dict[str, str] = {}
    main = {key: study.extraction[key] for key in VARIANT_KEYS}
    for index, entry in enumerate(study.analysis["variants"]):
        where = f"analysis.variants[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{where}: a variant is a mapping with a name, got {entry!r}")
        name = entry["name"]
        if name in RESERVED_VARIANT_NAMES:
            raise ConfigError(f"{where}.name: {name!r} is reserved; use another name")
        if name in seen:
            raise ConfigError(f"{where}.name: {name!r} names two variants")
        unknown = sorted(set(entry) - {"name", *VARIANT_KEYS})
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; a variant sets {VARIANT_KEYS}")
        solver = entry.get("solver", main["solver"])
        if solver not in SOLVERS:
            raise ConfigError(
                f"{where}.solver: unknown solver {solver!r}; known: {sorted(SOLVERS)}"
            )
        qthres = entry.get("qthres", main["qthres"])
        if not (isinstance(qthres, (int, float)) and math.isfinite(qthres) and qthres >= 0):
            raise ConfigError(f"{where}.qthres: must be a finite number >= 0, got {qthres!r}")
        settings = {**main, **{key: entry[key] for key in VARIANT_KEYS if key in entry}}
        if settings == main:
            raise ConfigError(
                f"{where} ({name!r}): the same decomposition settings as `extraction`; a "
                "variant must change at least one of " + ", ".join(VARIANT_KEYS)
            )
        key = repr(sorted(settings.items()))
        if key in seen.values():
            other = next(n for n, k in seen.items() if k == key)
            raise ConfigError(f"{where} ({name!r}): the same settings as variant {other!r}")
        seen[name] = key


def _check_sensitivity(study: Study) -> None:
    sensitivity = study.sensitivity
    if not sensitivity["enabled"]:
        return
    if not sensitivity["sigmas"] and not sensitivity["pgd_eps"]:
        raise ConfigError("sensitivity: give at least one of sigmas and pgd_eps")
    for plan in study.datasets.values():
        if plan.kind == "text":
            raise ConfigError(
                f"sensitivity.enabled: dataset {plan.name!r} has token inputs; Gaussian noise and "
                "PGD perturb continuous inputs (images, tabular) only"
            )


def _check_joint(joint: dict) -> None:
    """The joint settings the schema bounds, checked for configs given as dicts too."""
    alpha, count = joint["alpha"], joint["samples_per_split"]
    if not (isinstance(alpha, (int, float)) and 0 < alpha <= 1):
        raise ConfigError(f"joint.alpha: a number in (0, 1], got {alpha!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ConfigError(f"joint.samples_per_split: an integer ≥ 1 or null, got {count!r}")


def schema_path() -> Path:
    """The config schema shipped with the workflow (repository checkout only)."""
    return Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def read_yaml(path: str | Path) -> dict:
    """A YAML mapping from `path`; ConfigError naming the file and line when it is not."""
    import yaml

    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        detail = getattr(error, "problem", None) or str(error)
        context, opened = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context and opened is not None:
            detail += f" ({context} opened at line {opened.line + 1})"
        raise ConfigError(f"{where}: malformed YAML: {detail}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a text file: {error}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a study config is a YAML mapping, got {type(content).__name__}")
    return content


TEMPLATING_KEY = "__use_yte__"


def refuse_templating(paths) -> None:
    """ConfigError naming a config file that asks Snakemake for YTE templating: such a file
    runs code for whoever reads it, and a study config is data (README, "For labs")."""
    import yaml

    for path in paths:
        try:
            content = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError):
            continue  # reported by whoever reads it for real
        if isinstance(content, dict) and TEMPLATING_KEY in content:
            raise ConfigError(
                f"{path}: {TEMPLATING_KEY}: config templating is refused (it runs code for "
                "whoever reads the file); write the values out"
            )


def _strict_validator(schema: dict, *, defaults: bool):
    """A JSON-schema validator whose "integer" is a Python int (6.0 is refused, naming its
    key, rather than failing later), setting defaults when asked."""
    from jsonschema import Draft202012Validator, validators

    def set_defaults(validator, properties, instance, schema):
        for prop, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(prop, copy.deepcopy(sub["default"]))
        yield from Draft202012Validator.VALIDATORS["properties"](
            validator, properties, instance, schema
        )

    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool)
    )
    extra = {"properties": set_defaults} if defaults else {}
    return validators.extend(Draft202012Validator, extra, type_checker=checker)(schema)


def check_types(config: dict, source: str = "config") -> None:
    """ConfigError naming the first key whose value breaks the schema with integers taken
    strictly (Snakemake's validation accepts 6.0 where an integer belongs)."""
    import yaml

    schema = yaml.safe_load(schema_path().read_text())
    errors = sorted(
        _strict_validator(schema, defaults=False).iter_errors(config),
        key=lambda e: list(e.path),
    )
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: {where}: {error.message}")


def load_study(path: str | Path, *, check_data: bool = True) -> Study:
    """Read, validate (schema with defaults) and resolve a study config file."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"study config {path} does not exist")
    refuse_templating([path])
    config = read_yaml(path)
    schema = yaml.safe_load(schema_path().read_text())
    validator = _strict_validator(schema, defaults=True)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ConfigError(f"{path}: {where}: {error.message}")
    return resolve(config, check_data=check_data)
