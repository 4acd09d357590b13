"""Attributions as allocations of interactions, next to captum's gradient and occlusion methods.

Two allocations of a sample's AND-OR interactions to its players:

- Shapley: each interaction shared equally by its players, φ_i = Σ_{S∋i} (I_and + I_or)(S)/|S|;
- occlusion: player i credited with every AND interaction it belongs to and its own
  single-player OR term, Σ_{S∋i} I_and(S) + I_or({i}).  This equals v(N) − v(N∖{i}) of the
  decomposed game exactly (an OR term over T changes when i leaves N only if T = {i}).

captum's attributions (saliency, input × gradient, integrated gradients on the input, and
feature ablation per player) are computed on the same samples with the same players and
baseline and summed over each player's pixels or columns.

Steps: `run_step` compares them on a run's explained samples at its last checkpoint,
`study_step` gathers the runs.  `explained_share` says how much of
an attribution vector a linear multiple of an allocation reproduces (R² through the origin).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from harsanyi.data import load_configured
from harsanyi.extraction import explained_samples
from harsanyi.games import OUTPUTS
from harsanyi.io import write_tsv
from harsanyi.jobs import pick_device
from harsanyi.masks import coalition_matrix, orders
from harsanyi.models import load_checkpoint
from harsanyi.players import Players, as_players
from harsanyi.stats import shapley_from_and
from harsanyi.store import read_results

log = logging.getLogger(__name__)

METHODS = ("saliency", "input_x_gradient", "integrated_gradients", "occlusion")


def occlusion_allocation(I_and, I_or) -> np.ndarray:
    """(samples, n): Σ_{S∋i} I_and(S) + I_or({i})."""
    a = np.atleast_2d(np.asarray(I_and, dtype=np.float64))
    o = np.atleast_2d(np.asarray(I_or, dtype=np.float64))
    n = int(round(np.log2(a.shape[1])))
    membership = coalition_matrix(n).numpy().astype(np.float64)
    singles = membership * (orders(n) == 1)[:, None]
    return a @ membership + o @ singles


def shapley_allocation(I_and, I_or) -> np.ndarray:
    """(samples, n): the Shapley values of the decomposed game."""
    return shapley_from_and(I_and, I_or)


def explained_share(attribution: np.ndarray, allocation: np.ndarray) -> float:
    """R² of attribution ≈ c·allocation (one c for all samples and players)."""
    a = np.asarray(attribution, dtype=np.float64).ravel()
    b = np.asarray(allocation, dtype=np.float64).ravel()
    if not np.any(a) or not np.any(b):
        return float("nan")
    c = (a @ b) / (b @ b)
    return float(1.0 - np.sum((a - c * b) ** 2) / np.sum(a**2))


def captum_attributions(
    model: nn.Module,
    players: Players | dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    output: str = "log_odds",
    methods=METHODS,
) -> dict[str, np.ndarray]:
    """(samples, n) per method: captum's attributions summed over each player's elements.

    `players`: aligned players (patches or features), or their stored dict.  Absent players
    are zero in input space (the "zero" baseline), as in the extraction.
    """
    players = as_players(players)
    if not players.aligned:
        raise ValueError(
            f"captum attributions need the same players in every sample (image patches or "
            f"features), not {players.type!r} players"
        )
    from captum.attr import FeatureAblation, InputXGradient, IntegratedGradients, Saliency

    output_fn = OUTPUTS[output]
    model = model.eval()

    def forward(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return output_fn(model(inputs), labels)

    index = players.element_index(tuple(x.shape[1:])).to(x.device)
    n = players.n
    onehot = torch.nn.functional.one_hot(index.flatten(), n + 1)[:, :n].to(x.dtype)
    results: dict[str, np.ndarray] = {}
    for method in methods:
        if method == "occlusion":
            ablation = FeatureAblation(forward).attribute(
                x, baselines=0.0, additional_forward_args=(y,), feature_mask=index[None]
            )
            per_player = ablation.flatten(1) @ onehot / onehot.sum(0)  # every element holds it
        else:
            explainer = {
                "saliency": Saliency,
                "input_x_gradient": InputXGradient,
                "integrated_gradients": IntegratedGradients,
            }[method](forward)
            kwargs = {"abs": False} if method == "saliency" else {}
            if method == "integrated_gradients":
                kwargs = {"baselines": torch.zeros_like(x), "n_steps": 32}
            attribution = explainer.attribute(
                x.clone().requires_grad_(True), additional_forward_args=(y,), **kwargs
            )
            per_player = attribution.detach().flatten(1) @ onehot
        results[method] = per_player.detach().cpu().numpy().astype(np.float64)
    return results


def run_step(
    *,
    checkpoints: str | Path,
    samples: str | Path,
    interactions: str | Path,
    table: str | Path,
    run: dict,
    root: str | None,
    extraction: dict,
    device: str = "auto",
) -> None:
    """captum attributions of a run's explained samples (`samples`: the manifest) at the
    checkpoint of `interactions`, against the Shapley and occlusion allocations of its
    interactions → TSV.  `run`: the run's settings; `extraction`: its extraction settings."""
    results = read_results(interactions)
    model_id = results.meta["model"]
    base = {
        "run": model_id["run"],
        "arch": model_id["arch"],
        "dataset": model_id["dataset"],
        "epoch": int(model_id["epoch"]),
    }
    manifest = json.loads(Path(samples).read_text())
    players = Players.from_dict(manifest["players"])
    rows: list[dict] = []
    if not players.aligned or extraction["baseline"]["type"] != "zero":
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
        dataset = load_configured(run["dataset"], run["data"], root)
        model = load_checkpoint(
            Path(checkpoints) / f"epoch_{base['epoch']:04d}.pt",
            run["arch"],
            dataset.input_shape,
            len(dataset.classes),
            **run.get("model", {}),
        )
        model.to(pick_device(device))
        groups = explained_samples(manifest, dataset, run["label_noise"])
        x = torch.cat([g["source"].x[torch.as_tensor(g["positions"])] for g in groups])
        y = torch.cat([torch.as_tensor(g["labels"]) for g in groups])
        ids = np.concatenate([g["sample_ids"] for g in groups])
        if not np.array_equal(ids, results.sample_ids):
            raise ValueError(f"{interactions}: its samples differ from manifest {samples}")
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
    write_tsv(pd.DataFrame(rows), table)


def study_step(*, tables: Sequence[str | Path], table: str | Path, figure: str | Path) -> None:
    """Every run's attribution summary in one table and one figure."""
    from harsanyi.plots import attributions_figure

    joined = pd.concat([pd.read_csv(t, sep="\t") for t in tables], ignore_index=True)
    write_tsv(joined, table)
    attributions_figure(joined, figure)


CAPTUM_NAMES = {
    "occlusion": "feature ablation",
    "integrated_gradients": "integrated gradients",
    "input_x_gradient": "input × gradient",
    "saliency": "saliency",
}


def readme_part(shapley: pd.DataFrame, attributions: pd.DataFrame) -> str:
    """The Shapley check and the attribution comparison in the study-results section, from
    the study's `shapley.tsv` and `attributions.tsv`: the largest difference from the exact
    Shapley values, and the range over runs of how much of each captum method the occlusion
    allocation of the interactions explains (R² through the origin)."""
    occlusion = attributions[attributions.allocation == "occlusion"]
    ranges = occlusion.groupby("method").explained_share.agg(["min", "max"])
    methods = [m for m in CAPTUM_NAMES if m in ranges.index]
    shares = ", ".join(
        f"{CAPTUM_NAMES[m]} {ranges['min'][m]:.3g}–{ranges['max'][m]:.3g}" for m in methods
    )
    within = "within" if bool(shapley.passed.all()) else "NOT within"
    return (
        f"Shapley values computed from the interactions match an independent exact Shapley "
        f"computation from the stored v to {shapley.max_abs_diff.max():.1e} at most, {within} "
        f"tolerance in all {shapley.run.nunique()} runs (`shapley.tsv`, `max_abs_diff`). The "
        f"occlusion allocation of the interactions explains captum's attributions, R² over "
        f"the runs (`attributions.tsv`, `explained_share`): {shares}."
    )
