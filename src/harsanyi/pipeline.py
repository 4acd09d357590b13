"""The steps of a study as functions of files, one per workflow rule.

Each step reads its inputs, calls the library and writes its outputs atomically; the
Snakemake scripts only translate `snakemake.input/output/params` into these calls, and a
notebook can call them directly.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harsanyi import __version__
from harsanyi.store import atomic_write, write_manifest
from harsanyi.study import DatasetPlan
from harsanyi.train import TrainConfig, flip_labels, flip_order, train_run

log = logging.getLogger(__name__)

# The highest label noise a study may use; normal training samples are chosen among those
# that no level up to it flips (config schema: label_noise ≤ 0.5).
MAX_LABEL_NOISE = 0.5


def pick_device(device: str = "auto") -> torch.device:
    """The GPU the job was given when one is visible, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_data(settings_or_plan: dict | DatasetPlan, root: str | None):
    """The dataset of a run (from its settings) or of a dataset plan."""
    from harsanyi.data import load_dataset

    if isinstance(settings_or_plan, DatasetPlan):
        name, options = settings_or_plan.name, settings_or_plan.data_options
    else:
        name, options = settings_or_plan["dataset"], settings_or_plan["data"]
    kwargs: dict[str, Any] = {
        "max_train": options.get("max_train"),
        "max_test": options.get("max_test"),
    }
    if options.get("image_size"):
        kwargs["image_size"] = options["image_size"]
    return load_dataset(name, root, **kwargs)


def _stratified(
    rng: np.random.Generator, labels: np.ndarray, allowed: np.ndarray, per_class: int, where: str
) -> list[int]:
    chosen: list[int] = []
    for c in np.unique(labels):
        pool = np.flatnonzero((labels == c) & allowed)
        if len(pool) < per_class:
            raise ValueError(
                f"{where}: class {c} has {len(pool)} eligible samples, {per_class} requested"
            )
        chosen.extend(sorted(rng.choice(pool, size=per_class, replace=False).tolist()))
    return chosen


def _players(plan: DatasetPlan, dataset, positions: dict[str, list[int]]) -> dict:
    players = plan.players
    rng = np.random.default_rng(players["seed"])
    n = players["n"]
    if plan.kind == "image":
        grid = players["grid"]
        cells = players.get("cells")
        if cells is None:
            flat = sorted(rng.choice(grid[0] * grid[1], size=n, replace=False).tolist())
            cells = [[i // grid[1], i % grid[1]] for i in flat]
        return {
            "type": "patches",
            "image_size": list(plan.input_shape[-2:]),
            "grid": list(grid),
            "cells": [list(map(int, c)) for c in cells],
        }
    if plan.kind == "tabular":
        features = players.get("features")
        if features is None:
            features = sorted(rng.choice(plan.input_shape[0], size=n, replace=False).tolist())
        return {"type": "features", "columns": [int(f) for f in features]}
    from harsanyi.games import choose_token_players

    token_positions: dict[str, list[list[int]]] = {}
    for split_name, rows in positions.items():
        split = dataset.test if split_name == "test" else dataset.train
        index = torch.as_tensor(rows, dtype=torch.long)
        if players.get("positions") is not None:
            chosen = torch.as_tensor([players["positions"]] * len(rows))
        else:
            chosen = choose_token_players(
                split.x[index],
                split.attention_mask[index],
                dataset.special_token_ids,
                n,
                players["seed"],
            )
        token_positions[split_name] = chosen.tolist()
    return {"type": "tokens", "n": n, "positions": token_positions}


def select_samples(plan: DatasetPlan, root: str | None, out: str | Path) -> dict:
    """Choose the explained train/test/flipped samples and the players of a dataset.

    Label flips are nested across noise levels (`train.flip_labels`), so the choice does not
    depend on which levels a study uses: the flipped samples explained are the first ones of
    the flip order (flipped, to the same wrong class, at every level that flips at least that
    many), and the normal training samples come from beyond position MAX_LABEL_NOISE·N of
    that order, clean at every level up to MAX_LABEL_NOISE.
    """
    dataset = load_data(plan, root)
    samples = plan.samples
    rng = np.random.default_rng(samples["seed"])
    train_y = dataset.train.y.numpy()
    order = flip_order(len(train_y), plan.noise_seed)
    clean = np.zeros(len(train_y), dtype=bool)
    clean[order[int(round(MAX_LABEL_NOISE * len(train_y))) :]] = True
    key = f"datasets.{plan.name}.samples"
    positions = {
        "train": _stratified(
            rng, train_y, clean, samples["train_per_class"], f"{key}.train_per_class"
        ),
        "test": _stratified(
            rng,
            dataset.test.y.numpy(),
            np.ones(len(dataset.test.y), bool),
            samples["test_per_class"],
            f"{key}.test_per_class",
        ),
        "flipped": sorted(order[: samples["flipped"]].tolist()),
    }
    noisy, _ = flip_labels(dataset.train.y, plan.num_classes, MAX_LABEL_NOISE, plan.noise_seed)
    manifest = {
        "dataset": plan.name,
        "selection_id": plan.selection_id,
        "selection": plan.selection,
        "library_version": __version__,
        "train": {
            "positions": positions["train"],
            "sample_ids": dataset.train.ids[positions["train"]].tolist(),
            "labels": train_y[positions["train"]].tolist(),
        },
        "test": {
            "positions": positions["test"],
            "sample_ids": dataset.test.ids[positions["test"]].tolist(),
            "labels": dataset.test.y.numpy()[positions["test"]].tolist(),
        },
        "flipped": {
            "positions": positions["flipped"],
            "sample_ids": dataset.train.ids[positions["flipped"]].tolist(),
            "labels": noisy.numpy()[positions["flipped"]].tolist(),
            "flip_rank": [int(r) for r in np.argsort(order)[positions["flipped"]]],
        },
        "players": _players(plan, dataset, positions),
    }
    text = json.dumps(manifest, indent=1) + "\n"
    atomic_write(Path(out), lambda temp: temp.write_text(text))
    log.info(
        "selected %d train, %d test and %d flipped samples of %s",
        len(positions["train"]),
        len(positions["test"]),
        len(positions["flipped"]),
        plan.name,
    )
    return manifest


def train(
    settings: dict,
    root: str | None,
    run_dir: str | Path,
    state_dir: str | Path,
    device: str = "auto",
    progress: bool = True,
) -> None:
    """Train one run of a study: checkpoints, metrics.tsv, flipped.tsv and run.json."""
    from harsanyi.models import build_model

    run_dir = Path(run_dir)
    dataset = load_data(settings, root)
    num_classes = len(dataset.classes)
    training = settings["training"]
    config = TrainConfig(
        epochs=training["epochs"],
        checkpoint_epochs=settings["checkpoint_epochs"],
        batch_size=training["batch_size"],
        lr=training["lr"],
        momentum=training["momentum"],
        weight_decay=training["weight_decay"],
        optimizer=training["optimizer"],
        seed=settings["seed"],
        label_noise=settings["label_noise"],
        noise_seed=settings["noise_seed"],
    )
    model = build_model(settings["arch"], dataset.input_shape, num_classes, seed=settings["seed"])
    meta = {
        "arch": settings["arch"],
        "dataset": settings["dataset"],
        "run": run_dir.name,
        "input_shape": list(dataset.input_shape),
        "num_classes": num_classes,
    }
    train_run(
        model,
        dataset.train,
        dataset.test,
        num_classes,
        config,
        run_dir,
        meta=meta,
        state_dir=Path(state_dir),
        device=pick_device(device),
        progress=progress,
    )
    write_manifest(run_dir, settings)


def setup_job(log_paths: list[str] | tuple[str, ...] = (), threads: int = 1) -> None:
    """Prepare a workflow job: log records (an uncaught exception too) to stderr and the
    rule's log files, and torch limited to the threads Snakemake gave the job (so parallel
    jobs do not oversubscribe)."""
    import sys

    torch.set_num_threads(max(1, int(threads)))
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    handlers += [logging.FileHandler(str(path), mode="w") for path in log_paths]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )

    def log_uncaught(kind, error, traceback) -> None:
        # the rule's log file, not only the scheduler's stderr, must say why a job failed
        log.critical("job failed: %s", error, exc_info=(kind, error, traceback))

    sys.excepthook = log_uncaught


def build_masker(players: dict, baseline: dict, dataset, positions: torch.Tensor | None = None):
    """The masker for a manifest's players and a study's baseline."""
    from harsanyi.games import FeatureMapMasker, ImageMasker, PatchGrid, TabularMasker, TextMasker

    kind = baseline["type"]
    if players["type"] == "patches":
        grid = PatchGrid(
            tuple(players["image_size"]),
            tuple(players["grid"]),
            [tuple(c) for c in players["cells"]],
        )
        if kind == "feature_map":
            return FeatureMapMasker(grid, baseline["layer"])
        return ImageMasker(grid, kind, mean=dataset.feature_mean if kind == "mean" else None)
    if players["type"] == "features":
        return TabularMasker(
            players["columns"], kind, mean=dataset.feature_mean if kind == "mean" else None
        )
    if players["type"] == "tokens":
        return TextMasker(positions, baseline_token=None)
    raise ValueError(f"unknown player type {players['type']!r} in the sample manifest")


def explained_samples(manifest: dict, dataset, label_noise: float) -> list[dict]:
    """The groups of samples a run explains: train, test and (with noise) flipped."""
    groups = [
        {"split": "train", "source": dataset.train, **manifest["train"]},
        {"split": "test", "source": dataset.test, **manifest["test"]},
    ]
    if label_noise > 0:
        entry = manifest["flipped"]
        flipped_count = int(round(label_noise * len(dataset.train.y)))
        keep = [i for i, rank in enumerate(entry["flip_rank"]) if rank < flipped_count]
        if not keep:
            raise ValueError(
                f"label noise {label_noise:g} flips {flipped_count} training samples, none of "
                f"the explained flipped samples of manifest {manifest['selection_id']}"
            )
        if len(keep) < len(entry["flip_rank"]):
            log.warning(
                "label noise %g flips only %d of the %d explained flipped samples",
                label_noise,
                len(keep),
                len(entry["flip_rank"]),
            )
        picked = {k: [entry[k][i] for i in keep] for k in ("positions", "sample_ids", "labels")}
        groups.append({"split": "flipped", "source": dataset.train, **picked})
    return groups


def extract(
    checkpoint: str | Path,
    manifest_path: str | Path,
    settings: dict,
    extraction: dict,
    root: str | None,
    out: str | Path,
    *,
    run: str,
    epoch: int,
    device: str = "auto",
    progress: bool = True,
) -> Path:
    """Interactions of a run's explained samples under one checkpoint, as an HDF5 file."""
    from harsanyi.games import game_values
    from harsanyi.models import load_checkpoint
    from harsanyi.sparsifier import sparsify
    from harsanyi.store import InteractionResults, checkpoint_identity, write_results

    manifest = json.loads(Path(manifest_path).read_text())
    dataset = load_data(settings, root)
    model = load_checkpoint(checkpoint, settings["arch"], dataset.input_shape, len(dataset.classes))
    model.to(pick_device(device))
    players = manifest["players"]
    token_positions = players.get("positions", {})
    v_parts, ids, labels, splits, positions_all = [], [], [], [], []
    for group in explained_samples(manifest, dataset, settings["label_noise"]):
        rows = torch.as_tensor(group["positions"], dtype=torch.long)
        source = group["source"]
        x = source.x[rows]
        y = torch.as_tensor(group["labels"], dtype=torch.long)
        mask = source.attention_mask[rows] if source.attention_mask is not None else None
        positions = None
        if players["type"] == "tokens":
            chosen = dict(
                zip(
                    manifest[group["split"]]["positions"],
                    token_positions[group["split"]],
                    strict=True,
                )
            )
            positions = torch.as_tensor([chosen[p] for p in group["positions"]])
            positions_all.append(positions)
        masker = build_masker(players, extraction["baseline"], dataset, positions)
        log.info("%s: v on 2^%d masks of %d %s samples", run, masker.n, len(rows), group["split"])
        v_parts.append(
            game_values(
                model,
                masker,
                x,
                y,
                output=extraction["output"],
                memory_budget=extraction["memory_budget_mb"] * 2**20,
                attention_mask=mask,
                progress=progress,
            )
        )
        ids += group["sample_ids"]
        labels += group["labels"]
        splits += [group["split"]] * len(rows)
    v = torch.cat(v_parts)
    log.info(
        "%s: sparse AND-OR decomposition of %d samples (%s)", run, len(v), extraction["solver"]
    )
    decomposition = sparsify(
        v,
        qthres=extraction["qthres"],
        lr=extraction["lr"],
        iters=extraction["iters"],
        solver=extraction["solver"],
        normalize=extraction["normalize"],
        progress=progress,
    )
    identity = checkpoint_identity(
        checkpoint, arch=settings["arch"], run=run, epoch=epoch, dataset=settings["dataset"]
    )
    results = InteractionResults(
        v=v.numpy(),
        I_and=decomposition.I_and,
        I_or=decomposition.I_or,
        p=decomposition.p,
        q=decomposition.q,
        sample_ids=np.asarray(ids, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        split=np.asarray(splits),
        n=int(np.log2(v.shape[1])),
        meta={
            "players": players
            if players["type"] != "tokens"
            else {"type": "tokens", "n": players["n"]},
            "baseline": extraction["baseline"],
            "output": extraction["output"],
            "solver": {"name": decomposition.solver, **decomposition.settings},
            "model": identity,
            "extra": {
                "extraction": extraction,
                "l1_start": decomposition.l1_start.tolist(),
                "l1_final": decomposition.l1_final.tolist(),
            },
        },
        player_positions=torch.cat(positions_all).numpy() if positions_all else None,
    )
    return write_results(out, results)


def _write_tsv(table, out: str | Path) -> None:
    atomic_write(Path(out), lambda temp: table.to_csv(temp, sep="\t", index=False))


def _write_json(obj, out: str | Path) -> None:
    text = json.dumps(obj, indent=1, default=float) + "\n"
    atomic_write(Path(out), lambda temp: temp.write_text(text))


def two_phase_run(
    files: list[str],
    metrics_path: str,
    table_out: str,
    points_out: str,
    figure_out: str,
    *,
    ratio: float = 0.05,
    shown: int = 4,
    fraction: float = 0.1,
) -> None:
    """Order strength per checkpoint of one run, its phase-2 start and loss-gap onset, figure."""
    import pandas as pd

    from harsanyi.analysis import order_strength_table, shown_epochs, two_phase_points
    from harsanyi.plots import two_phase_figure

    table = order_strength_table(files, ratio=ratio)
    metrics = pd.read_csv(metrics_path, sep="\t")
    run = table.run.iloc[0]
    points = two_phase_points(table, metrics, fraction=fraction)
    points["run"] = run
    _write_tsv(table, table_out)
    _write_json(points, points_out)
    epochs = shown_epochs(table.epoch.unique(), shown, points["phase2_start"])
    two_phase_figure(table, {run: metrics}, {run: epochs}, {run: points}, figure_out)


def two_phase_study(
    tables: list[str],
    metrics_paths: list[str],
    points_paths: list[str],
    table_out: str,
    summary_out: str,
    figure_out: str,
    *,
    shown: int = 4,
) -> None:
    """All runs of a study: one strength table, one summary table, one figure."""
    import pandas as pd

    from harsanyi.analysis import shown_epochs
    from harsanyi.plots import two_phase_figure

    strength = pd.concat([pd.read_csv(t, sep="\t") for t in tables], ignore_index=True)
    points = [json.loads(Path(p).read_text()) for p in points_paths]
    metrics = {
        p["run"]: pd.read_csv(m, sep="\t") for p, m in zip(points, metrics_paths, strict=True)
    }
    _write_tsv(strength, table_out)
    _write_tsv(pd.DataFrame(points), summary_out)
    epochs = {
        p["run"]: shown_epochs(
            strength[strength.run == p["run"]].epoch.unique(), shown, p["phase2_start"]
        )
        for p in points
    }
    two_phase_figure(strength, metrics, epochs, {p["run"]: p for p in points}, figure_out)


def extract_checkpoint(
    checkpoint: str | Path,
    dataset: str,
    out: str | Path,
    *,
    root: str | None = None,
    arch: str | None = None,
    players: dict | None = None,
    baseline: dict | None = None,
    samples: dict | None = None,
    extraction: dict | None = None,
    label_noise: float = 0.0,
    noise_seed: int = 0,
    data_options: dict | None = None,
    device: str = "auto",
) -> Path:
    """Extract one checkpoint outside a study (the `harsanyi extract` command).

    The sample manifest is written beside `out` as `<out>.samples.json`, so that another
    checkpoint explained with the same options explains the same samples and players.
    """
    from harsanyi.study import resolve

    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    stored = torch.load(checkpoint, map_location="cpu", weights_only=False)
    stored = stored if isinstance(stored, dict) else {}
    if arch is None:
        arch = (stored.get("meta") or {}).get("arch")
        if arch is None:
            raise ValueError(f"{checkpoint}: no architecture stored in the checkpoint; pass --arch")
    entry: dict[str, Any] = {"architectures": [arch], "players": players or {}, "root": root}
    entry.update({k: v for k, v in (data_options or {}).items() if v is not None})
    if baseline:
        entry["baseline"] = baseline
    if samples:
        entry["samples"] = samples
    config = {
        "datasets": {dataset: entry},
        "label_noise": sorted({0.0, float(label_noise)}),
        "noise_seed": noise_seed,
        "extraction": {**EXTRACTION_DEFAULTS, **(extraction or {})},
    }
    study = resolve(config)
    run = next(r for r in study.runs if r.label_noise == float(label_noise))
    out = Path(out)
    manifest = out.with_name(out.name + ".samples.json")
    select_samples(study.datasets[dataset], study.datasets[dataset].root, manifest)
    return extract(
        checkpoint,
        manifest,
        run.settings,
        study.extraction_settings(dataset, arch),
        study.datasets[dataset].root,
        out,
        run=checkpoint.parent.parent.name,
        epoch=int(stored.get("epoch", -1)),
        device=device,
    )


EXTRACTION_DEFAULTS: dict[str, Any] = {
    "output": "log_odds",
    "solver": "sgd",
    "qthres": 0.02,
    "iters": None,
    "lr": None,
    "normalize": True,
    "memory_budget_mb": 1024,
}


def attributions_run(
    checkpoints: str | Path,
    manifest_path: str | Path,
    results_file: str | Path,
    settings: dict,
    extraction: dict,
    root: str | None,
    table_out: str | Path,
    *,
    device: str = "auto",
) -> None:
    """captum attributions of a run's explained samples at the results file's checkpoint,
    against the Shapley and occlusion allocations of the extracted interactions."""
    import pandas as pd

    from harsanyi.attributions import (
        captum_attributions,
        explained_share,
        occlusion_allocation,
        shapley_allocation,
    )
    from harsanyi.models import load_checkpoint
    from harsanyi.store import read_results

    results = read_results(results_file)
    model_id = results.meta["model"]
    base = {
        "run": model_id["run"],
        "arch": model_id["arch"],
        "dataset": model_id["dataset"],
        "epoch": int(model_id["epoch"]),
    }
    manifest = json.loads(Path(manifest_path).read_text())
    players = manifest["players"]
    rows: list[dict] = []
    if players["type"] == "tokens" or extraction["baseline"]["type"] != "zero":
        reason = (
            "captum attributions are computed for input-space zero baselines on "
            "image patches and features"
        )
        rows.append(
            {
                **base,
                "method": "n/a",
                "allocation": "n/a",
                "explained_share": np.nan,
                "correlation": np.nan,
                "note": reason,
            }
        )
        log.info("%s: %s; skipped", base["run"], reason)
    else:
        dataset = load_data(settings, root)
        model = load_checkpoint(
            Path(checkpoints) / f"epoch_{base['epoch']:04d}.pt",
            settings["arch"],
            dataset.input_shape,
            len(dataset.classes),
        )
        model.to(pick_device(device))
        groups = explained_samples(manifest, dataset, settings["label_noise"])
        x = torch.cat([g["source"].x[torch.as_tensor(g["positions"])] for g in groups])
        y = torch.cat([torch.as_tensor(g["labels"]) for g in groups])
        ids = np.concatenate([g["sample_ids"] for g in groups])
        if not np.array_equal(ids, results.sample_ids):
            raise ValueError(f"{results_file}: its samples differ from manifest {manifest_path}")
        device_ = next(model.parameters()).device
        methods = captum_attributions(
            model, players, x.to(device_), y.to(device_), output=extraction["output"]
        )
        allocations = {
            "shapley": shapley_allocation(results.I_and, results.I_or),
            "occlusion": occlusion_allocation(results.I_and, results.I_or),
        }
        for method, attribution in methods.items():
            for name, allocation in allocations.items():
                rows.append(
                    {
                        **base,
                        "method": method,
                        "allocation": name,
                        "explained_share": explained_share(attribution, allocation),
                        "correlation": float(
                            np.corrcoef(attribution.ravel(), allocation.ravel())[0, 1]
                        ),
                        "note": "",
                    }
                )
    _write_tsv(pd.DataFrame(rows), table_out)


def attributions_study(tables: list[str], table_out: str | Path, figure_out: str | Path) -> None:
    """Every run's attribution summary in one table and one figure."""
    import pandas as pd

    from harsanyi.plots import attributions_figure

    table = pd.concat([pd.read_csv(t, sep="\t") for t in tables], ignore_index=True)
    _write_tsv(table, table_out)
    attributions_figure(table, figure_out)
