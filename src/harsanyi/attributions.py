"""Attributions as allocations of interactions, next to captum's gradient and occlusion methods.

Two allocations of a sample's AND-OR interactions to its players:

- Shapley: each interaction shared equally by its players, φ_i = Σ_{S∋i} (I_and + I_or)(S)/|S|;
- occlusion: player i credited with every AND interaction it belongs to and its own
  single-player OR term, Σ_{S∋i} I_and(S) + I_or({i}).  This equals v(N) − v(N∖{i}) of the
  decomposed game exactly (an OR term over T changes when i leaves N only if T = {i}).

captum's attributions (saliency, input × gradient, integrated gradients on the input, and
feature ablation per player) are computed on the same samples with the same players and
baseline and summed over each player's pixels or columns.  `explained_share` says how much of
an attribution vector a linear multiple of an allocation reproduces (R² through the origin).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harsanyi.games import OUTPUTS, PatchGrid
from harsanyi.masks import coalition_matrix, orders
from harsanyi.stats import shapley_from_and

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


def _player_index(players: dict, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Feature mask of one input: the player of every element, n for elements of none."""
    if players["type"] == "patches":
        grid = PatchGrid(
            tuple(players["image_size"]),
            tuple(players["grid"]),
            [tuple(c) for c in players["cells"]],
        )
        regions = grid.pixel_masks()
        index = torch.full(regions.shape[1:], grid.n, dtype=torch.long)
        for j in range(grid.n):
            index[regions[j]] = j
        return index.expand(input_shape).clone()
    if players["type"] == "features":
        index = torch.full(input_shape, len(players["columns"]), dtype=torch.long)
        index[torch.as_tensor(players["columns"])] = torch.arange(len(players["columns"]))
        return index
    raise ValueError(
        f"captum attributions support image patches and features, not {players['type']!r} players"
    )


def captum_attributions(
    model: nn.Module,
    players: dict,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    output: str = "log_odds",
    methods=METHODS,
) -> dict[str, np.ndarray]:
    """(samples, n) per method: captum's attributions summed over each player's elements.

    Absent players are zero in input space (the "zero" baseline), as in the extraction.
    """
    from captum.attr import FeatureAblation, InputXGradient, IntegratedGradients, Saliency

    output_fn = OUTPUTS[output]
    model = model.eval()

    def forward(inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return output_fn(model(inputs), labels)

    index = _player_index(players, tuple(x.shape[1:])).to(x.device)
    n = int(index.max())
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
