"""Sensitivity of interactions to small input perturbations, by order.

Claim tested (the first-principles summary of the AND-OR interaction papers): high-order
interactions change more under small input perturbations (random or adversarial) than
low-order ones.

Per sample x (label y) and perturbation δ, with I = the certified exact AND-OR decomposition
(`sparsify(solver="exact")`) of v on x and I' that of x + δ (same masker, same baseline):

    r_k(x) = Σ_{|S|=k} Σ_op |I'_op(S) − I_op(S)|  /  Σ_{|S|=k} Σ_op |I_op(S)|,   k = 1..n,

AND and OR together, single-player OR merged into AND, ∅ excluded.  r_k is NaN where the
clean order-k strength is at most `min_share` (1e-6) of the sample's total strength: there is
nothing at that order to change (a linear model has no order ≥ 2).

Perturbations (the whole input is perturbed, players and non-players alike, in the model's
input space, e.g. after normalisation; no clipping to a data range):
- "gauss:σ": x + σ·N(0, 1) per input entry (σ absolute, in input units), `draws` draws per σ
  (r_k averaged over draws per sample);
- "pgd:ε": `pgd_steps` steps of projected sign-gradient descent on the output v(x) (the
  log-odds of y on the full input, i.e. the grand coalition), step 2.5·ε/steps, projected
  onto the L∞ ball of radius ε around x, no random start: the small-budget adversarial
  perturbation that lowers the model's confidence in y.

Summaries: per perturbation and order, the mean of r_k over samples with a percentile
bootstrap interval (`harsanyi.metrics.bootstrap_ci`).  Trend (the scorecard statistic): per
sample, Spearman's ρ between k and r_k over its orders with a defined r_k (at least
`min_orders` = 3, else NaN); relative changes equal within `rtol` = 1e-6 of the sample's
largest count as ties, and a sample whose r_k are all tied has ρ = 0 (no trend).  The
statistic is the mean ρ over samples, with a bootstrap interval; its null is a permutation
null (each sample's order labels shuffled independently, `n_perm` times), giving a one-sided
p-value.  The claim "higher orders are more sensitive" is *supported* for a perturbation iff
p < `level` (0.05) and the interval's lower end is > 0.

Entry points: `sensitivity_by_order(model, masker, x, y, ...)` → `SensitivityResult` (tables
`summary` and `trend`, ready for TSV; per-sample `relative`), in two steps that a cluster runs
apart: `perturbed_games` (the model, on a GPU where there is one) → `PerturbedGames`, and
`sensitivity_of_games` (the LPs, CPU only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata

from harsanyi.games import OUTPUTS, _eval_mode, _model_device, game_values
from harsanyi.metrics import bootstrap_ci
from harsanyi.sparsifier import SparsifyResult, sparsify
from harsanyi.stats import order_indicator

DEFAULT_SIGMAS = (0.01, 0.05)
DEFAULT_PGD_EPS = (0.01,)
DEFAULT_PGD_STEPS = 5
MIN_SHARE = 1e-6
MIN_ORDERS = 3
TIE_RTOL = 1e-6
LEVEL = 0.05


@dataclass
class SensitivityResult:
    """Relative change of interactions per order under each perturbation.

    `relative` is (perturbations, samples, n) (NaN: undefined, see module docstring);
    `summary` has one row per perturbation × order (perturbation, order, mean, low, high,
    n_samples); `trend` one row per perturbation (perturbation, rho, low, high, p_value,
    n_samples, supported).  `clean` and `perturbed` are the decompositions (perturbed:
    draws·samples rows, draw-major).
    """

    perturbations: list[str]
    relative: np.ndarray
    summary: pd.DataFrame
    trend: pd.DataFrame
    clean: SparsifyResult | None = None
    perturbed: dict[str, SparsifyResult] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- statistics


def relative_change_by_order(
    I_and, I_or, I_and_new, I_or_new, *, min_share: float = MIN_SHARE
) -> np.ndarray:
    """(samples, n) r_k: Σ_{|S|=k} |ΔI| / Σ_{|S|=k} |I| (AND and OR together, ∅ excluded).

    NaN where the clean order-k strength is ≤ `min_share` of the sample's total strength.
    """
    a, o = np.atleast_2d(I_and), np.atleast_2d(I_or)
    a2, o2 = np.atleast_2d(I_and_new), np.atleast_2d(I_or_new)
    if not a.shape == o.shape == a2.shape == o2.shape:
        raise ValueError(
            f"interactions must share one shape, got {a.shape}, {o.shape}, {a2.shape}, {o2.shape}"
        )
    by_order = order_indicator(int(round(math.log2(a.shape[-1]))))
    strength = (np.abs(a) + np.abs(o)) @ by_order
    change = (np.abs(a2 - a) + np.abs(o2 - o)) @ by_order
    total = strength.sum(axis=1, keepdims=True)
    defined = strength > min_share * total
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, change / np.where(defined, strength, 1.0), np.nan)


def _tie_ranks(values: np.ndarray, rtol: float) -> np.ndarray:
    """Average ranks of `values`, with values equal within rtol·max|values| tied."""
    peak = np.abs(values).max()
    if peak == 0:
        return np.ones_like(values)
    return rankdata(np.round(values / (rtol * peak)))


def _spearman(ranks: np.ndarray, order_ranks: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of `ranks` with `order_ranks` (0 where ranks tie)."""
    x = order_ranks - order_ranks.mean()
    y = ranks - ranks.mean(axis=-1, keepdims=True)
    norm = np.sqrt((y**2).sum(-1) * (x**2).sum())
    return np.where(norm > 0, (y * x).sum(-1) / np.where(norm > 0, norm, 1.0), 0.0)


def order_trend(relative, *, min_orders: int = MIN_ORDERS, rtol: float = TIE_RTOL) -> np.ndarray:
    """(samples,) Spearman ρ between order and r_k per sample (NaN: < min_orders defined)."""
    rel = np.atleast_2d(np.asarray(relative, dtype=np.float64))
    rho = np.full(rel.shape[0], np.nan)
    for s, row in enumerate(rel):
        keep = np.isfinite(row)
        if keep.sum() >= min_orders:
            order_ranks = np.arange(1, rel.shape[1] + 1, dtype=np.float64)[keep]
            rho[s] = _spearman(_tie_ranks(row[keep], rtol), order_ranks)
    return rho


def shuffled_trend(
    relative,
    draws: int,
    rng: np.random.Generator,
    *,
    min_orders: int = MIN_ORDERS,
    rtol: float = TIE_RTOL,
) -> np.ndarray:
    """(draws, samples) the per-sample ρ of `order_trend` with each sample's r_k shuffled over
    its defined orders, independently per draw (the permutation null); NaN where ρ is not
    defined.  Samples are drawn in order from `rng`."""
    rel = np.atleast_2d(np.asarray(relative, dtype=np.float64))
    out = np.full((draws, rel.shape[0]), np.nan)
    orders_all = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    for s in np.flatnonzero(np.isfinite(order_trend(rel, min_orders=min_orders, rtol=rtol))):
        keep = np.isfinite(rel[s])
        ranks = _tie_ranks(rel[s][keep], rtol)
        out[:, s] = _spearman(rng.permuted(np.tile(ranks, (draws, 1)), axis=1), orders_all[keep])
    return out


def trend_test(
    relative,
    *,
    min_orders: int = MIN_ORDERS,
    rtol: float = TIE_RTOL,
    n_boot: int = 1000,
    n_perm: int = 1000,
    level: float = LEVEL,
    seed: int = 0,
) -> dict[str, Any]:
    """The "higher orders are more sensitive" test on per-sample r_k (samples, n).

    Returns rho (mean per-sample Spearman ρ), low, high (bootstrap interval at 1 − level),
    p_value (one-sided, permutation null: order labels shuffled within each sample),
    n_samples (samples with a defined ρ) and supported (p < level and low > 0).  With no
    defined sample every number is NaN and supported is False.
    """
    rel = np.atleast_2d(np.asarray(relative, dtype=np.float64))
    rho = order_trend(rel, min_orders=min_orders, rtol=rtol)
    usable = np.isfinite(rho)
    out: dict[str, Any] = {
        "rho": np.nan,
        "low": np.nan,
        "high": np.nan,
        "p_value": np.nan,
        "n_samples": int(usable.sum()),
        "supported": False,
    }
    if not usable.any():
        return out
    observed, low, high = bootstrap_ci(rho[usable], n_boot=n_boot, level=1 - level, seed=seed)
    rng = np.random.default_rng(seed)
    null = shuffled_trend(rel, n_perm, rng, min_orders=min_orders, rtol=rtol)[:, usable].mean(1)
    p_value = (1 + np.sum(null >= observed - 1e-12)) / (1 + n_perm)
    out.update(
        rho=observed,
        low=low,
        high=high,
        p_value=float(p_value),
        supported=bool(p_value < level and low > 0),
    )
    return out


def summarise(
    relative: np.ndarray,
    perturbations: Sequence[str],
    *,
    n_boot: int = 1000,
    level: float = LEVEL,
    seed: int = 0,
    **trend_kwargs,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, trend) tables for r of shape (perturbations, samples, n)."""
    rows, trends = [], []
    for name, rel in zip(perturbations, relative, strict=True):
        for k in range(rel.shape[1]):
            values = rel[:, k][np.isfinite(rel[:, k])]
            mean, low, high = (
                bootstrap_ci(values, n_boot=n_boot, level=1 - level, seed=seed)
                if values.size
                else (np.nan, np.nan, np.nan)
            )
            rows.append(
                {
                    "perturbation": name,
                    "order": k + 1,
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "n_samples": int(values.size),
                }
            )
        test = trend_test(rel, n_boot=n_boot, level=level, seed=seed, **trend_kwargs)
        trends.append({"perturbation": name, **test})
    return pd.DataFrame(rows), pd.DataFrame(trends)


# --------------------------------------------------------------------------- perturbations


def gaussian_perturbation(
    x: torch.Tensor, sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """x + σ·N(0, 1), drawn on the CPU from `generator` (reproducible across devices)."""
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
    return x + (sigma * noise).to(dtype=x.dtype, device=x.device)


def pgd_perturbation(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = DEFAULT_PGD_STEPS,
    *,
    output: str = "log_odds",
) -> torch.Tensor:
    """x' with ‖x' − x‖∞ ≤ ε that lowers v(x) = output(model(x), y): `steps` sign-gradient
    steps of 2.5·ε/steps, projected onto the ε-ball, no random start; model in eval mode."""
    if not torch.is_floating_point(x):
        raise ValueError("PGD needs floating-point inputs (perturb embeddings, not token ids)")
    output_fn = OUTPUTS[output]
    device = _model_device(model)
    x0 = x.detach().to(device)
    y = torch.as_tensor(y).to(device)
    step = 2.5 * eps / steps
    adv = x0.clone()
    with torch.enable_grad(), _eval_mode(model):
        for _ in range(steps):
            adv.requires_grad_(True)
            value = output_fn(model(adv), y).sum()
            (grad,) = torch.autograd.grad(value, adv)
            adv = adv.detach() - step * grad.sign()
            adv = torch.minimum(torch.maximum(adv, x0 - eps), x0 + eps)
    return adv.detach().to(x.device)


# --------------------------------------------------------------------------- entry points


@dataclass
class PerturbedGames:
    """The games of one batch of samples, clean and under each perturbation (the model's
    part of a sensitivity analysis; `sensitivity_of_games` decomposes them without it).

    `clean` is (samples, 2^n); `perturbed[name]` is (draws·samples, 2^n), draw-major, for
    each name in `perturbations` ("gauss:σ" has `draws` draws, "pgd:ε" one); `settings`
    records how they were made."""

    perturbations: list[str]
    clean: np.ndarray
    perturbed: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)

    def draws_of(self, name: str) -> int:
        return len(self.perturbed[name]) // len(self.clean)


def perturbed_games(
    model: torch.nn.Module,
    masker,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    pgd_eps: Sequence[float] = DEFAULT_PGD_EPS,
    pgd_steps: int = DEFAULT_PGD_STEPS,
    draws: int = 1,
    output: str = "log_odds",
    memory_budget: int = 2**30,
    seed: int = 0,
) -> PerturbedGames:
    """v on every mask of x and of each perturbation of x: Gaussian noise of each σ in
    `sigmas` (`draws` draws each, from a generator seeded with `seed`) and PGD of each L∞
    budget in `pgd_eps` (module docstring).  The only step that runs the model."""
    if any(not (s > 0) for s in sigmas) or any(not (e > 0) for e in pgd_eps):
        raise ValueError(f"sigmas and pgd_eps must be positive, got {sigmas} and {pgd_eps}")
    if not sigmas and not pgd_eps:
        raise ValueError("give at least one perturbation (sigmas or pgd_eps)")
    if draws < 1 or pgd_steps < 1:
        raise ValueError(f"draws and pgd_steps must be >= 1, got {draws} and {pgd_steps}")

    def games(inputs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        v = game_values(model, masker, inputs, labels, output=output, memory_budget=memory_budget)
        return v.numpy()  # float64 on the CPU

    y = torch.as_tensor(y)
    generator = torch.Generator().manual_seed(seed)
    perturbed: dict[str, np.ndarray] = {}
    for sigma in sigmas:
        inputs = torch.cat([gaussian_perturbation(x, sigma, generator) for _ in range(draws)])
        perturbed[f"gauss:{sigma:g}"] = games(inputs, y.repeat(draws))
    for eps in pgd_eps:
        adversarial = pgd_perturbation(model, x, y, eps, pgd_steps, output=output)
        perturbed[f"pgd:{eps:g}"] = games(adversarial, y)
    settings = {
        "sigmas": [float(s) for s in sigmas],
        "pgd_eps": [float(e) for e in pgd_eps],
        "pgd_steps": int(pgd_steps),
        "pgd_step_size": "2.5*eps/steps",
        "pgd_objective": f"lower {output} of y on the full input",
        "draws": int(draws),
        "output": output,
        "seed": int(seed),
        "perturbed": "whole input, model input space, no clipping",
    }
    return PerturbedGames(list(perturbed), games(x, y), perturbed, settings)


def sensitivity_of_games(
    games: PerturbedGames,
    *,
    qthres: float = 0.02,
    min_share: float = MIN_SHARE,
    min_orders: int = MIN_ORDERS,
    n_boot: int = 1000,
    n_perm: int = 1000,
    level: float = LEVEL,
    seed: int = 0,
) -> SensitivityResult:
    """Relative change per order (module docstring) of the certified exact decompositions
    (`sparsify(solver="exact")`) of `games`, with summaries and the trend test.  No model:
    this step runs on CPUs from stored games."""
    clean = sparsify(torch.from_numpy(games.clean), qthres=qthres, solver="exact")
    relative = []
    perturbed: dict[str, SparsifyResult] = {}
    for name in games.perturbations:
        draws = games.draws_of(name)
        result = sparsify(torch.from_numpy(games.perturbed[name]), qthres=qthres, solver="exact")
        rel = relative_change_by_order(
            np.tile(clean.I_and, (draws, 1)),
            np.tile(clean.I_or, (draws, 1)),
            result.I_and,
            result.I_or,
            min_share=min_share,
        )
        relative.append(rel.reshape(draws, len(games.clean), -1).mean(axis=0))
        perturbed[name] = result
    rel = np.stack(relative)
    summary, trend = summarise(
        rel,
        games.perturbations,
        n_boot=n_boot,
        level=level,
        seed=seed,
        min_orders=min_orders,
        n_perm=n_perm,
    )
    settings = {
        **games.settings,
        "qthres": float(qthres),
        "solver": "exact",
        "min_share": float(min_share),
        "min_orders": int(min_orders),
        "tie_rtol": TIE_RTOL,
        "n_boot": int(n_boot),
        "n_perm": int(n_perm),
        "level": float(level),
        "seed": int(seed),
    }
    return SensitivityResult(
        perturbations=list(games.perturbations),
        relative=rel,
        summary=summary,
        trend=trend,
        clean=clean,
        perturbed=perturbed,
        settings=settings,
    )


def sensitivity_by_order(
    model: torch.nn.Module,
    masker,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    sigmas: Sequence[float] = DEFAULT_SIGMAS,
    pgd_eps: Sequence[float] = DEFAULT_PGD_EPS,
    pgd_steps: int = DEFAULT_PGD_STEPS,
    draws: int = 1,
    qthres: float = 0.02,
    output: str = "log_odds",
    memory_budget: int = 2**30,
    min_share: float = MIN_SHARE,
    min_orders: int = MIN_ORDERS,
    n_boot: int = 1000,
    n_perm: int = 1000,
    level: float = LEVEL,
    seed: int = 0,
) -> SensitivityResult:
    """Relative change of the AND-OR interactions per order under Gaussian noise of each σ in
    `sigmas` and under PGD of each L∞ budget in `pgd_eps` (module docstring), with summaries
    and the trend test: `perturbed_games` then `sensitivity_of_games`."""
    games = perturbed_games(
        model,
        masker,
        x,
        y,
        sigmas=sigmas,
        pgd_eps=pgd_eps,
        pgd_steps=pgd_steps,
        draws=draws,
        output=output,
        memory_budget=memory_budget,
        seed=seed,
    )
    return sensitivity_of_games(
        games,
        qthres=qthres,
        min_share=min_share,
        min_orders=min_orders,
        n_boot=n_boot,
        n_perm=n_perm,
        level=level,
        seed=seed,
    )
