"""Test order: the files of the SLURM and the slow end-to-end tests first, so that parallel
workers (pytest-xdist, whole files per worker) do not end on one long file alone."""

from __future__ import annotations


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        if item.get_closest_marker("slurm"):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    by_file: dict[str, int] = {}
    for item in items:
        by_file[item.fspath] = min(by_file.get(item.fspath, 2), rank(item))
    # stable: a file's tests stay together and in their order (module fixtures set up once)
    items.sort(key=lambda item: by_file[item.fspath])
