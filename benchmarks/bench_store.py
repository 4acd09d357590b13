"""HDF5 filters for the results files, side by side: size, time to write all, time to read one
sample, for no filter, lzf and gzip levels (each with the shuffle filter).

Run: python3 benchmarks/bench_store.py [--n 10] [--samples 200] [--json FILE]

The datasets are shaped and chunked as `harsanyi.store` writes them ((samples, 2^n) float64,
one chunk per sample): v, the game, is the subset sums of a sparse set of interactions (smooth
in the masks, as a network's games are), I those sparse interactions, p all zeros (as the
exact solver leaves most of q). Reading one sample reads one row of v and of I. The library
writes with `store.COMPRESSION`; `--json FILE` writes the rows for the documentation
(scripts/docs_numbers.py renders them).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from records import write_table

from harsanyi.store import COMPRESSION
from harsanyi.transforms import and_inverse

FILTERS = {
    "none": {},
    "lzf + shuffle": {"compression": "lzf", "shuffle": True},
    "gzip 1 + shuffle": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
    "gzip 4 + shuffle": {"compression": "gzip", "compression_opts": 4, "shuffle": True},
}


def datasets(n: int, samples: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    interactions = np.where(
        rng.random((samples, 2**n)) < 0.05, rng.normal(size=(samples, 2**n)), 0.0
    )
    v = and_inverse(interactions)
    return {"v": v, "I": interactions, "p": np.zeros((samples, 2**n))}


def write(path: Path, data: dict[str, np.ndarray], options: dict) -> float:
    start = time.perf_counter()
    with h5py.File(path, "w") as handle:
        for name, values in data.items():
            handle.create_dataset(name, data=values, chunks=(1, values.shape[1]), **options)
    return time.perf_counter() - start


def read_one(path: Path, samples: int, repeats: int = 50) -> float:
    rng = np.random.default_rng(1)
    times = []
    with h5py.File(path, "r") as handle:
        for index in rng.integers(0, samples, repeats):
            start = time.perf_counter()
            handle["v"][index]
            handle["I"][index]
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    data = datasets(args.n, args.samples)
    rows = []
    print(f"n = {args.n}, {args.samples} samples; the library writes {COMPRESSION}")
    print(f"{'filter':18s} {'KiB':>8s} {'write all ms':>13s} {'read one sample ms':>19s}")
    with tempfile.TemporaryDirectory() as temp:
        for label, options in FILTERS.items():
            path = Path(temp) / f"{label.replace(' ', '_')}.h5"
            seconds = statistics.median(write(path, data, options) for _ in range(3))
            size = path.stat().st_size / 1024
            read = read_one(path, args.samples)
            library = options == COMPRESSION
            rows.append(
                {
                    "filter": label,
                    "library": library,
                    "kib": size,
                    "write_ms": seconds * 1e3,
                    "read_ms": read * 1e3,
                }
            )
            mark = "  (the library's)" if library else ""
            print(f"{label:18s} {size:8.0f} {seconds * 1e3:13.1f} {read * 1e3:19.3f}{mark}")
    if args.json:
        write_table(args.json, rows, n=args.n, samples=args.samples, h5py=h5py.__version__)


if __name__ == "__main__":
    main()
