"""Masked extraction throughput against plain batched inference (run by hand).

    python benchmarks/bench_extraction.py [--samples 16] [--repeats 7] [--budget 1073741824]
        [--json FILE]

For each model: rows/s of `game_values` (samples × 2^n masked inputs, n = 10) and of plain
inference of the same model on the same number of ready-made inputs, in batches of the size
`game_values` chose; prints both and their ratio (target ≥ 80 %).  `--json FILE` also writes
the table for the documentation (docs/numbers/, rendered by scripts/docs_numbers.py).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from records import write_table
from torch import nn

from harsanyi.games import ImageMasker, Masker, PatchGrid, TabularMasker, game_values

N_PLAYERS = 10
TARGET = 0.8  # masked rows/s at least this fraction of plain inference's


class BatchSizes(nn.Module):
    """Wraps a model and records the batch size of every call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return self.inner(x)


def small_cnn(channels: int, size: int, classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(32 * 16, classes),
    )


def mlp(features: int, classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Linear(features, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, classes)
    )


def median_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median of `repeats` timings of each run, interleaved so that load drifts hit all
    (on a shared machine the median is steadier than the fastest run)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def bench(
    name: str, model: nn.Module, masker: Masker, x: torch.Tensor, budget: int, repeats: int
) -> dict:
    """Prints one model's line and returns it as a row."""
    wrapped = BatchSizes(model).eval()
    y = torch.zeros(x.shape[0], dtype=torch.long)
    rows = x.shape[0] * 2**masker.n
    game_values(wrapped, masker, x, y, memory_budget=budget)  # warm-up, records chunk sizes
    batch = max(wrapped.sizes)
    inputs = torch.randn(rows, *x.shape[1:])

    def plain() -> None:
        with torch.inference_mode():
            for start in range(0, rows, batch):
                model(inputs[start : start + batch])

    def masked() -> None:
        game_values(wrapped, masker, x, y, memory_budget=budget)

    seconds = median_seconds({"masked": masked, "plain": plain}, repeats)
    masked_s, plain_s = seconds["masked"], seconds["plain"]
    masked_rate, plain_rate = rows / masked_s, rows / plain_s
    print(
        f"{name:<24} rows={rows:<7} batch={batch:<6} masked {masked_rate:>10.0f} rows/s   "
        f"plain {plain_rate:>10.0f} rows/s   ratio {masked_rate / plain_rate:6.1%}"
    )
    return {
        "model": name,
        "rows": rows,
        "batch": batch,
        "masked_per_s": masked_rate,
        "plain_per_s": plain_rate,
        "ratio": masked_rate / plain_rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=int, default=2**30)
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, n = {N_PLAYERS}")
    rows = []
    for size, grid in ((8, (4, 4)), (28, (7, 7))):
        players = PatchGrid.random((size, size), grid, N_PLAYERS, seed=0)
        x = torch.randn(args.samples, 1, size, size)
        row = bench(
            f"CNN {size}x{size}",
            small_cnn(1, size),
            ImageMasker(players),
            x,
            args.budget,
            args.repeats,
        )
        rows.append(row)
    features = 64
    x = torch.randn(args.samples, features)
    masker = TabularMasker(list(range(0, features, features // N_PLAYERS))[:N_PLAYERS])
    rows.append(bench("MLP 64 features", mlp(features), masker, x, args.budget, args.repeats))
    if args.json:
        write_table(
            args.json,
            rows,
            torch=torch.__version__,
            players=N_PLAYERS,
            samples=args.samples,
            repeats=args.repeats,
            target=TARGET,
        )


if __name__ == "__main__":
    main()
