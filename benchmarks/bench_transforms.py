"""O(n·2^n) AND/OR transforms against the dense 2^n×2^n matrix formulation, side by side.

Run by hand: `python benchmarks/bench_transforms.py`. Prints the median seconds per call for
one vector (the reference code's per-sample use) and for a batch of 32, the ratio dense /
butterfly, and checks both give the same result. `--json FILE` also writes the table for the
documentation (docs/numbers/, rendered by scripts/docs_numbers.py).
"""

import argparse
import time
from pathlib import Path

import torch
from records import write_table

import harsanyi
from harsanyi.transforms import dense_and_matrix

BATCH = 32
REPEATS = 11


def kron_and_matrix(n: int) -> torch.Tensor:
    """The dense AND matrix as a Kronecker power of [[1, 0], [-1, 1]] (cheap to build)."""
    step = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    matrix = torch.ones(1, 1, dtype=torch.float64)
    for _ in range(n):
        matrix = torch.kron(matrix, step)
    return matrix


def median_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def measure(n: int, batch: int) -> dict:
    v = torch.randn(batch, 2**n, dtype=torch.float64)
    matrix = kron_and_matrix(n)
    fast = median_of(lambda: harsanyi.and_transform(v))
    fast_or = median_of(lambda: harsanyi.or_transform(v))
    dense = median_of(lambda: v @ matrix.T, repeats=3 if n >= 14 else REPEATS)
    error = (harsanyi.and_transform(v) - v @ matrix.T).abs().max().item()
    print(
        f"{n:>3} {batch:>6} {fast * 1e3:>11.3f} ms {fast_or * 1e3:>10.3f} ms "
        f"{dense * 1e3:>9.2f} ms {dense / fast:>7.0f}×   (max |diff| {error:.1e})"
    )
    return {
        "n": n,
        "batch": batch,
        "and_ms": fast * 1e3,
        "or_ms": fast_or * 1e3,
        "dense_ms": dense * 1e3,
        "ratio": dense / fast,
        "max_diff": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64")
    assert torch.equal(kron_and_matrix(6), dense_and_matrix(6))
    print(
        f"{'n':>3} {'batch':>6} {'butterfly AND':>14} {'butterfly OR':>13} {'dense A@v':>12} "
        f"{'ratio':>8}"
    )
    rows = [measure(n, batch) for n in (8, 10, 12, 14) for batch in (1, BATCH)]
    if args.json:
        write_table(args.json, rows, torch=torch.__version__)


if __name__ == "__main__":
    main()
