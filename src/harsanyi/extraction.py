"""Extraction: choosing the explained samples and players, v on all masked inputs of a
checkpoint, its AND-OR decomposition, and the results file.

`select_samples` writes a dataset's sample manifest (shared by every model of a study);
`extract` explains one checkpoint with it; `extract_checkpoint` does both for one checkpoint
outside a study (the `harsanyi extract` command); `extract_sensitivity` measures how the
interactions of a checkpoint change under input perturbations (`harsanyi.sensitivity`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harsanyi import __version__
from harsanyi.config import EXTRACTION_DEFAULTS, GAMES_VERSION, DatasetPlan, Study, resolve
from harsanyi.data import flip_labels, flip_order, load_configured
from harsanyi.face import FaceEnds, face_datasets, face_ends
from harsanyi.games import (
    FeatureMapMasker,
    ImageMasker,
    Masker,
    TabularMasker,
    TextMasker,
    game_values,
)
from harsanyi.io import write_json, write_text
from harsanyi.jobs import pick_device
from harsanyi.models import build_model, load_checkpoint, read_checkpoint
from harsanyi.players import (
    FeatureColumns,
    PatchGrid,
    Players,
    TokenPositions,
    players_for_input,
    token_counts,
)
from harsanyi.provenance import provenance, utc_now
from harsanyi.sparsifier import SparsifyResult, sparsify
from harsanyi.store import (
    InteractionResults,
    StoredGames,
    checkpoint_identity,
    games_of,
    is_games_file,
    read_games,
    read_results,
    write_games,
    write_results,
)

log = logging.getLogger(__name__)

# The highest label noise a study may use; normal training samples are chosen among those
# that no level up to it flips (config schema: label_noise ≤ 0.5).
MAX_LABEL_NOISE = 0.5


def load_data(settings_or_plan: dict | DatasetPlan, root: str | None):
    """The dataset of a run (from its settings) or of a dataset plan."""
    if isinstance(settings_or_plan, DatasetPlan):
        return load_configured(settings_or_plan.name, settings_or_plan.data_options, root)
    return load_configured(settings_or_plan["dataset"], settings_or_plan["data"], root)


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


def _eligible(plan: DatasetPlan, dataset, split) -> np.ndarray:
    """Which samples of a split can be explained: all, except text shorter than n players
    (fewer attended, non-special tokens than `players.n`)."""
    if plan.kind != "text":
        return np.ones(len(split.y), dtype=bool)
    counts = token_counts(split.x, split.attention_mask, dataset.special_token_ids)
    return (counts >= plan.players["n"]).numpy()


def select_samples(plan: DatasetPlan, root: str | None, out: str | Path) -> dict:
    """`choose_samples`, written to `out` as the dataset's sample manifest (rule
    select_samples)."""
    manifest = choose_samples(plan, root)
    write_text(json.dumps(manifest, indent=1) + "\n", out)
    log.info(
        "selected %d train, %d test and %d flipped samples of %s",
        len(manifest["train"]["positions"]),
        len(manifest["test"]["positions"]),
        len(manifest["flipped"]["positions"]),
        plan.name,
    )
    return manifest


def choose_samples(plan: DatasetPlan, root: str | None) -> dict:
    """Choose the explained train/test/flipped samples and the players of a dataset: the
    sample manifest.  ValueError names the config key a choice cannot satisfy (the workflow
    calls this at start-up, before any training, where the manifest does not exist yet).

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
    eligible_train = _eligible(plan, dataset, dataset.train)
    eligible_test = _eligible(plan, dataset, dataset.test)
    key = f"datasets.{plan.name}.samples"
    flipped = [int(p) for p in order if eligible_train[p]][: samples["flipped"]]
    if len(flipped) < samples["flipped"]:
        raise ValueError(
            f"{key}.flipped: {samples['flipped']} requested, {len(flipped)} training samples "
            "are eligible"
        )
    positions = {
        "train": _stratified(
            rng,
            train_y,
            clean & eligible_train,
            samples["train_per_class"],
            f"{key}.train_per_class",
        ),
        "test": _stratified(
            rng,
            dataset.test.y.numpy(),
            eligible_test,
            samples["test_per_class"],
            f"{key}.test_per_class",
        ),
        "flipped": sorted(flipped),
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
        "players": players_for_input(plan.kind)
        .choose(plan.players, plan.input_shape, dataset, positions)
        .to_dict(),
    }
    return manifest


def check_before_training(study: Study, *, skip_selection: Collection[str] = ()) -> list[str]:
    """Try now what would otherwise fail only after the trainings: ValueError naming the
    config key.  Each dataset's sample selection is made (its data loaded), except for the
    datasets in `skip_selection` (whose manifest exists); each feature-map baseline's layer is
    looked up in its models, built on the meta device.  Returns notes on what could not be
    checked here (data that cannot be read on this machine: the job will say)."""
    notes = []
    for name, plan in study.datasets.items():
        if name in skip_selection:
            continue
        try:
            choose_samples(plan, plan.root)
        except OSError as error:
            notes.append(f"sample selection of {name} not checked: {error}")
    checked = set()
    for run in study.runs:
        plan = study.datasets[run.dataset]
        model_options = run.settings.get("model", {})
        key = (run.dataset, run.arch, repr(sorted(model_options.items())))
        if plan.baseline["type"] != "feature_map" or key in checked:
            continue
        checked.add(key)
        layer = plan.baseline["layers"][run.arch]
        with torch.device("meta"):
            model = build_model(run.arch, plan.input_shape, plan.num_classes, **model_options)
        try:
            FeatureMapMasker.check_layer(model, layer, plan.input_shape)
        except ValueError as error:
            where = f"datasets.{run.dataset}.baseline.layers.{run.arch}"
            raise ValueError(f"{where}: {error}") from None
    return notes


def build_masker(
    players: Players, baseline: dict, dataset, positions: torch.Tensor | None = None
) -> Masker:
    """The masker for a manifest's players and a study's baseline (`positions`: the token
    players of the samples, for token players)."""
    kind = baseline["type"]
    if kind not in players.baselines:
        raise ValueError(
            f"baseline.type {kind!r} does not fit {players.type!r} players; "
            f"use one of {list(players.baselines)}"
        )
    mean = dataset.feature_mean if kind == "mean" else None
    if isinstance(players, PatchGrid):
        if kind == "feature_map":
            return FeatureMapMasker(players, baseline["layer"])
        return ImageMasker(players, kind, mean=mean)
    if isinstance(players, FeatureColumns):
        return TabularMasker(players, kind, mean=mean)
    if isinstance(players, TokenPositions):
        if positions is None or positions.shape[1] != players.n:
            raise ValueError(f"token players need (samples, {players.n}) positions")
        return TextMasker(positions, baseline_token=kind)
    raise TypeError(f"no masker for {type(players).__name__} players")


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


def _checkpoint_inputs(checkpoint, manifest_path, settings: dict, root, device: str):
    """What explaining a checkpoint starts from: its sample manifest, the run's data, the model
    (weights only) on the device the job may use, the players, and that device."""
    manifest = json.loads(Path(manifest_path).read_text())
    dataset = load_data(settings, root)
    model = load_checkpoint(
        checkpoint,
        settings["arch"],
        dataset.input_shape,
        len(dataset.classes),
        **settings.get("model", {}),
    )
    torch_device = pick_device(device)
    model.to(torch_device)
    return manifest, dataset, model, Players.from_dict(manifest["players"]), torch_device


def checkpoint_games(
    checkpoint: str | Path,
    manifest_path: str | Path,
    settings: dict,
    extraction: dict,
    root: str | None,
    *,
    run: str,
    epoch: int,
    device: str = "auto",
    progress: bool = True,
) -> StoredGames:
    """v on all 2^n masked inputs of a run's explained samples under one checkpoint: the
    only part of an extraction that runs the model (on a GPU where the job has one)."""
    start = utc_now()
    manifest, dataset, model, players, torch_device = _checkpoint_inputs(
        checkpoint, manifest_path, settings, root, device
    )
    v_parts, ids, labels, splits, positions_all = [], [], [], [], []
    for group in explained_samples(manifest, dataset, settings["label_noise"]):
        rows = torch.as_tensor(group["positions"], dtype=torch.long)
        source = group["source"]
        x = source.x[rows]
        y = torch.as_tensor(group["labels"], dtype=torch.long)
        mask = source.attention_mask[rows] if source.attention_mask is not None else None
        positions = None
        if isinstance(players, TokenPositions):
            split_samples = manifest[group["split"]]["positions"]
            positions = players.of_samples(group["split"], split_samples, group["positions"])
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
    v = torch.cat(v_parts).numpy()
    identity = checkpoint_identity(
        checkpoint, arch=settings["arch"], run=run, epoch=epoch, dataset=settings["dataset"]
    )
    games_settings = {
        "version": GAMES_VERSION,
        **{
            key: extraction[key] for key in ("selection", "baseline", "output") if key in extraction
        },
    }
    return _stored_games(
        v,
        (ids, labels, splits),
        players,
        extraction,
        identity,
        provenance(torch_device, start=start),
        {"games": games_settings},
        player_positions=torch.cat(positions_all).numpy() if positions_all else None,
    )


def _stored_games(
    v: np.ndarray,
    rows: tuple[list, list, list],
    players,
    extraction: dict,
    identity: dict,
    made_by: dict,
    extra: dict,
    player_positions: np.ndarray | None = None,
) -> StoredGames:
    """Games evaluated in this process as `StoredGames`: v with its rows' (sample ids,
    labels, splits), the players, baseline and output, the model's identity, the provenance
    of the job that ran it and `extra`."""
    ids, labels, splits = rows
    return StoredGames(
        v=v,
        sample_ids=np.asarray(ids, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        split=np.asarray(splits),
        n=int(np.log2(v.shape[1])),
        meta={
            "players": players.stored().to_dict(),
            "baseline": extraction["baseline"],
            "output": extraction["output"],
            "model": identity,
            "provenance": made_by,
            "extra": extra,
        },
        player_positions=player_positions,
    )


def evaluate_games(
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
    """`checkpoint_games` as a games file (rule games), for the decompositions to read."""
    games = checkpoint_games(
        checkpoint,
        manifest_path,
        settings,
        extraction,
        root,
        run=run,
        epoch=epoch,
        device=device,
        progress=progress,
    )
    return write_games(out, games)


def decompose(
    games: StoredGames | str | Path,
    out: str | Path,
    extraction: dict,
    *,
    progress: bool = False,
    device: Any = None,
    extra: dict | None = None,
) -> Path:
    """The games (a games file, a results file's stored v, or in memory) decomposed under
    `extraction`'s settings (solver, qthres, lr, iters, normalize, face_ends) as a results
    file at `out`: no model runs (`device`: the one that ran it, when the games were evaluated
    in this process).  The results file's provenance is this job's; the games file's, where
    the games come from one, is kept as extra.games_provenance."""
    missing = [
        key for key in ("solver", "qthres", "lr", "iters", "normalize") if key not in extraction
    ]
    if missing:
        raise ValueError(f"decompose: extraction settings lack {missing}")
    start = utc_now()
    source = None
    if not isinstance(games, StoredGames):
        source = Path(games)
        games = read_games(source)
    model = games.meta.get("model") or {}
    run = str(model.get("run", "games"))
    log.info(
        "%s: sparse AND-OR decomposition of %d samples (%s, qthres %g)%s",
        run,
        games.n_samples,
        extraction["solver"],
        extraction["qthres"],
        f" from {source}" if source else "",
    )
    decomposition, face = _decompose(torch.as_tensor(games.v), extraction, run, progress)
    details = {
        "extraction": extraction,
        "l1_start": decomposition.l1_start.tolist(),
        "l1_final": decomposition.l1_final.tolist(),
        "above_start": decomposition.above_start.tolist(),
    }
    if source is not None:
        details["games_file"] = str(source)
        details["games_provenance"] = games.meta.get("provenance")
    results = InteractionResults(
        v=games.v,
        I_and=decomposition.I_and,
        I_or=decomposition.I_or,
        p=decomposition.p,
        q=decomposition.q,
        sample_ids=games.sample_ids,
        labels=games.labels,
        split=np.asarray(games.split).astype(str),
        n=games.n,
        meta={
            "players": games.meta["players"],
            "baseline": games.meta["baseline"],
            "output": games.meta["output"],
            "solver": {"name": decomposition.solver, **decomposition.settings},
            "model": games.meta["model"],
            "provenance": provenance(device, start=start),
            "extra": {**details, **(extra or {})},
        },
        player_positions=games.player_positions,
        l1=decomposition.l1_final,
        lower_bound=decomposition.lower_bound,
        gap=decomposition.gap,
        certified=decomposition.certified,
        face=None if face is None else face_datasets(face),
    )
    if face is not None and not face.certified.all():
        log.warning(
            "%s: %d of %d samples have an end of the optimal face further than %.2g orders "
            "from its proven bound (datasets face_low/gap, face_high/gap)",
            run,
            int((~face.certified).sum()),
            games.n_samples,
            face.settings["order_gap_tol"],
        )
    _warn_unproven(run, decomposition)
    return write_results(out, results)


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
    """Interactions of a run's explained samples under one checkpoint, as an HDF5 file: the
    games and their decomposition in one process (a study runs them as two jobs, rules games
    and extract)."""
    games = checkpoint_games(
        checkpoint,
        manifest_path,
        settings,
        extraction,
        root,
        run=run,
        epoch=epoch,
        device=device,
        progress=progress,
    )
    return decompose(games, out, extraction, progress=progress, device=pick_device(device))


def _decompose(
    v, extraction: dict, run: str, progress: bool
) -> tuple[SparsifyResult, FaceEnds | None]:
    """The games decomposed under `extraction`'s settings, and both ends of the optimal face
    where the settings ask for them (`face_ends`; absent for uncertified solvers)."""
    decomposition = sparsify(
        v,
        qthres=extraction["qthres"],
        lr=extraction["lr"],
        iters=extraction["iters"],
        solver=extraction["solver"],
        normalize=extraction["normalize"],
        progress=progress,
    )
    face = None
    if extraction.get("face_ends"):
        log.info("%s: both ends of the optimal face of %d samples", run, len(v))
        face = face_ends(v, decomposition, progress=progress)
        decomposition.settings["face"] = face.settings
    return decomposition, face


def _warn_unproven(run: str, decomposition: SparsifyResult) -> None:
    """Log a warning naming how many samples have no certificate, and how many an iterative
    solver left at or above their starting L1 (both are kept and flagged, never dropped)."""
    count = len(decomposition.l1_final)
    uncertified = int((~decomposition.certified).sum())
    if uncertified:
        log.warning(
            "%s: %d of %d samples have no certificate within gap %.2g (solver %s); they are "
            "flagged in the file's `certified` dataset",
            run,
            uncertified,
            count,
            decomposition.settings["gap_tol"],
            decomposition.solver,
        )
    above = int(decomposition.above_start.sum())
    if above:
        log.warning(
            "%s: %d of %d samples ended at or above their starting L1 (p = q = 0) under solver "
            "%s (lr %s, %s iterations): not converged; flagged in the file's "
            "extra.above_start",
            run,
            above,
            count,
            decomposition.solver,
            decomposition.settings["lr"],
            decomposition.settings["iters"],
        )


def redecompose(
    source: str | Path, out: str | Path, extraction: dict, *, progress: bool = False
) -> Path:
    """The games stored in `source` (a games file or a results file) decomposed again under
    the decomposition settings of `extraction` (a decomposition variant's,
    `config.Study.variant_settings`): `decompose` with `extra.redecomposed_from` naming the
    source and, for a results file, its solver and extraction."""
    missing = [
        key for key in ("solver", "qthres", "lr", "iters", "normalize") if key not in extraction
    ]
    if missing:
        raise ValueError(f"redecompose: extraction settings lack {missing}")
    origin: dict[str, Any] = {"path": str(source)}
    if is_games_file(source):
        stored = read_games(source)
    else:  # a results file: its games, and what decomposed them first
        results = read_results(source)
        stored = games_of(results)
        origin["solver"] = results.meta["solver"]
        origin["extraction"] = (results.meta.get("extra") or {}).get("extraction")
    return decompose(
        stored, out, extraction, progress=progress, extra={"redecomposed_from": origin}
    )


SENSITIVITY_CLEAN = "clean"  # the perturbation name of a sensitivity games file's clean rows


def sensitivity_games(
    checkpoint: str | Path,
    manifest_path: str | Path,
    settings: dict,
    extraction: dict,
    sensitivity: dict,
    root: str | None,
    *,
    run: str,
    epoch: int,
    device: str = "auto",
) -> StoredGames:
    """The model's part of a sensitivity analysis (`harsanyi.sensitivity.perturbed_games`) on
    the first `samples_per_split` train and test samples of the manifest: one games row per
    split, perturbation, draw and sample, clean rows first; `meta["extra"]["perturbation"]`
    names each row's perturbation ("clean", "gauss:σ", "pgd:ε")."""
    from harsanyi.sensitivity import perturbed_games

    start = utc_now()
    manifest, dataset, model, players, torch_device = _checkpoint_inputs(
        checkpoint, manifest_path, settings, root, device
    )
    if isinstance(players, TokenPositions):
        raise ValueError(f"{manifest_path}: sensitivity needs continuous inputs, not token players")
    masker = build_masker(players, extraction["baseline"], dataset)
    count = sensitivity["samples_per_split"]
    v, ids, labels, splits, kinds = [], [], [], [], []
    made: dict = {}
    for group in explained_samples(manifest, dataset, 0.0):
        rows = torch.as_tensor(group["positions"][:count], dtype=torch.long)
        y = torch.as_tensor(group["labels"][:count], dtype=torch.long)
        log.info(
            "%s epoch %d: v of %d %s samples, clean and perturbed, on 2^%d masks",
            run,
            epoch,
            len(rows),
            group["split"],
            masker.n,
        )
        games = perturbed_games(
            model,
            masker,
            group["source"].x[rows],
            y,
            sigmas=sensitivity["sigmas"],
            pgd_eps=sensitivity["pgd_eps"],
            pgd_steps=sensitivity["pgd_steps"],
            draws=sensitivity["draws"],
            output=extraction["output"],
            memory_budget=extraction["memory_budget_mb"] * 2**20,
            seed=sensitivity["seed"],
        )
        made = games.settings
        for name, values in ((SENSITIVITY_CLEAN, games.clean), *games.perturbed.items()):
            repeats = len(values) // len(rows)
            v.append(values)
            ids += list(np.asarray(group["sample_ids"][:count])) * repeats
            labels += y.tolist() * repeats
            splits += [group["split"]] * len(values)
            kinds += [name] * len(values)
    identity = checkpoint_identity(
        checkpoint, arch=settings["arch"], run=run, epoch=epoch, dataset=settings["dataset"]
    )
    return _stored_games(
        np.concatenate(v),
        (ids, labels, splits),
        players,
        extraction,
        identity,
        provenance(torch_device, start=start),
        {"sensitivity": sensitivity, "perturbed": made, "perturbation": kinds},
    )


def evaluate_sensitivity_games(
    checkpoint: str | Path,
    manifest_path: str | Path,
    settings: dict,
    extraction: dict,
    sensitivity: dict,
    root: str | None,
    out: str | Path,
    *,
    run: str,
    epoch: int,
    device: str = "auto",
) -> Path:
    """`sensitivity_games` as a games file (rule sensitivity_games), for
    `decompose_sensitivity` to read."""
    games = sensitivity_games(
        checkpoint,
        manifest_path,
        settings,
        extraction,
        sensitivity,
        root,
        run=run,
        epoch=epoch,
        device=device,
    )
    return write_games(out, games)


def decompose_sensitivity(
    games: StoredGames | str | Path,
    out: str | Path,
    *,
    qthres: float,
    sensitivity: dict,
    device: Any = None,
) -> Path:
    """Relative change per order of the interactions of stored sensitivity games
    (`sensitivity_games`), as a JSON file (rule sensitivity, CPU only): one row per sample ×
    perturbation × order (`table`), with the settings, the model's identity and provenance.
    Decompositions are exact (`sparsify(solver="exact")`) whatever the extraction's solver."""
    from harsanyi.sensitivity import PerturbedGames, sensitivity_of_games

    start = utc_now()
    source = None
    if not isinstance(games, StoredGames):
        source = Path(games)
        games = read_games(source)
    extra = games.meta.get("extra") or {}
    if not isinstance(extra, dict) or len(extra.get("perturbation") or []) != games.n_samples:
        raise ValueError(f"{source or 'games'}: not sensitivity games (no extra.perturbation)")
    kinds = np.asarray(extra["perturbation"])
    model = games.meta.get("model") or {}
    run, epoch = model.get("run"), model.get("epoch")
    columns: dict[str, list] = {
        key: [] for key in ("sample_id", "split", "label", "perturbation", "order", "relative")
    }
    uncertified = 0
    for split in dict.fromkeys(np.asarray(games.split).astype(str)):
        in_split = np.asarray(games.split).astype(str) == split
        clean = in_split & (kinds == SENSITIVITY_CLEAN)
        names = [name for name in dict.fromkeys(kinds[in_split]) if name != SENSITIVITY_CLEAN]
        log.info(
            "%s epoch %s: %d %s samples decomposed under %s", run, epoch, clean.sum(), split, names
        )
        result = sensitivity_of_games(
            PerturbedGames(
                perturbations=names,
                clean=games.v[clean],
                perturbed={name: games.v[in_split & (kinds == name)] for name in names},
                settings=extra.get("perturbed") or {},
            ),
            qthres=qthres,
            n_perm=sensitivity["permutations"],
            seed=sensitivity["seed"],
        )
        uncertified += int((~result.clean.certified).sum())
        uncertified += sum(int((~r.certified).sum()) for r in result.perturbed.values())
        # rows perturbation-major, then sample, then order
        shape = result.relative.shape
        columns["sample_id"] += np.tile(
            np.repeat(games.sample_ids[clean], shape[2]), shape[0]
        ).tolist()
        columns["split"] += [split] * result.relative.size
        columns["label"] += np.tile(np.repeat(games.labels[clean], shape[2]), shape[0]).tolist()
        columns["perturbation"] += np.repeat(result.perturbations, shape[1] * shape[2]).tolist()
        columns["order"] += np.tile(np.arange(1, shape[2] + 1), shape[0] * shape[1]).tolist()
        columns["relative"] += [
            float(r) if np.isfinite(r) else None for r in result.relative.ravel()
        ]
    if uncertified:
        log.warning("%s epoch %s: %d decompositions without certificate", run, epoch, uncertified)
    record = {
        "layout": "harsanyi-sensitivity",
        "version": 1,
        "run": run,
        "epoch": epoch,
        "model": model,
        "players": games.meta["players"],
        "baseline": games.meta["baseline"],
        "output": games.meta["output"],
        "settings": {**sensitivity, "solver": "exact", "qthres": qthres},
        "uncertified": uncertified,
        "provenance": provenance(device, start=start),
        "games_file": None if source is None else str(source),
        "games_provenance": games.meta.get("provenance"),
        "table": columns,
    }
    return write_json(record, out)


def extract_sensitivity(
    checkpoint: str | Path,
    manifest_path: str | Path,
    settings: dict,
    extraction: dict,
    sensitivity: dict,
    root: str | None,
    out: str | Path,
    *,
    run: str,
    epoch: int,
    device: str = "auto",
) -> Path:
    """`sensitivity_games` then `decompose_sensitivity` in one process (a notebook, or a
    machine without a cluster): the same file as the two rules write."""
    games = sensitivity_games(
        checkpoint,
        manifest_path,
        settings,
        extraction,
        sensitivity,
        root,
        run=run,
        epoch=epoch,
        device=device,
    )
    return decompose_sensitivity(
        games,
        out,
        qthres=extraction["qthres"],
        sensitivity=sensitivity,
        device=pick_device(device),
    )


def read_sensitivity(path: str | Path) -> tuple[dict, pd.DataFrame]:
    """(record without its table, table) of an `extract_sensitivity` file; ValueError naming
    the file if it is not one."""
    record = json.loads(Path(path).read_text())
    if not isinstance(record, dict) or record.get("layout") != "harsanyi-sensitivity":
        raise ValueError(f"{path}: not a sensitivity file (layout harsanyi-sensitivity)")
    table = pd.DataFrame(record.pop("table"))
    table["relative"] = table["relative"].astype(float)
    return record, table


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
    checkpoint = Path(checkpoint)
    stored = read_checkpoint(checkpoint)
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
    existed = manifest.exists()
    select_samples(study.datasets[dataset], study.datasets[dataset].root, manifest)
    try:
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
    except BaseException:
        if not existed:  # no results file: no manifest of it left behind either
            manifest.unlink(missing_ok=True)
        raise
