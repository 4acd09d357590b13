"""The batched interior point of benchmarks/bench_interior_point.py: its dense normal matrix
against the explicit zeta matrices, and its answers against the exact LP on small games."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harsanyi import certificate as ct
from harsanyi import sparsifier as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_interior_point import NormalEquations, interior_point  # noqa: E402


def explicit_columns(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Z_and and Z_or as dense matrices, one column per coalition, from the library's maps."""
    eye = torch.eye(2**n, dtype=torch.float64)
    return ct.and_part(eye).T, ct.or_part(eye).T


@pytest.mark.parametrize("n", [1, 3, 5])
def test_normal_matrix_is_z_d_zt(n):
    rng = np.random.default_rng(n)
    d_and, d_or, d_s = (torch.from_numpy(rng.uniform(0.1, 2.0, (2, 2**n))) for _ in range(3))
    z_and, z_or = explicit_columns(n)
    built = NormalEquations(n, torch.device("cpu")).matrix(d_and, d_or, d_s)
    for k in range(2):
        expected = (
            z_and @ torch.diag(d_and[k]) @ z_and.T
            + z_or @ torch.diag(d_or[k]) @ z_or.T
            + torch.diag(d_s[k])
        )
        torch.testing.assert_close(built[k], expected, rtol=1e-12, atol=1e-12)


def planted(n: int, rng: np.random.Generator) -> np.ndarray:
    i_and, i_or = np.zeros(2**n), np.zeros(2**n)
    i_and[rng.choice(2**n, 4, replace=False)] = rng.normal(size=4)
    i_or[rng.choice(np.arange(1, 2**n), 4, replace=False)] = rng.normal(size=4)
    return ct.rebuild(torch.from_numpy(i_and[None]), torch.from_numpy(i_or[None]))[0].numpy()


def test_interior_point_reaches_the_exact_optimum_with_a_valid_bound():
    n = 5
    rng = np.random.default_rng(0)
    games = np.stack([rng.normal(size=2**n), rng.normal(size=2**n), planted(n, rng)])
    v = torch.from_numpy(games)
    eps = 0.02 * (v[:, -1] - v[:, 0]).abs()
    cost = torch.from_numpy(1.0 + sp.CANONICAL_DELTA * sp.canonical_weights(n))
    a, o, y, iterations = interior_point(v, eps, cost, tol=1e-8, max_iter=60)
    assert (iterations < 60).all()
    a, o, _ = ct.feasible_split(a, o, v, eps)
    upper = ct.l1_of(a, o).numpy()
    bound = ct.lower_bound(y, v, eps).numpy()
    exact = sp.sparsify(games, solver="exact", normalize=False, workers=1)
    assert (bound <= exact.l1_final * (1 + 1e-9)).all()
    assert (upper >= exact.l1_final * (1 - 1e-9)).all()
    np.testing.assert_allclose(upper, exact.l1_final, rtol=1e-6)
