"""Generalisation: Jaccard similarity per order between the salient interactions of
training and test samples, per checkpoint (docs/interactions.md)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from harsanyi.analyses.common import (
    IDENTITY,
    ResultsLike,
    check_files,
    checkpoint_stages,
    identity,
    load,
    read_points,
    read_tsvs,
    results_split,
)
from harsanyi.io import write_tsv
from harsanyi.metrics import JACCARD_VARIANTS, jaccard_per_order
from harsanyi.store import InteractionResults


def jaccard_table(
    items: Iterable[ResultsLike], *, variants: Sequence[str] = JACCARD_VARIANTS
) -> pd.DataFrame:
    """Jaccard similarity per order between the train and test samples of each checkpoint.

    `metrics.jaccard_per_order` (classes present in both splits, averaged over classes) for
    every variant.  Columns: run, arch, dataset, epoch, variant, order, similarity,
    n_classes, n_train, n_test.
    """
    unknown = [v for v in variants if v not in JACCARD_VARIANTS]
    if unknown:
        raise ValueError(f"variants {unknown} unknown; use {JACCARD_VARIANTS}")
    frames = []
    for item in items:
        results = load(item)
        where = os.fspath(item) if not isinstance(item, InteractionResults) else "results"
        train, test = results_split(results, "train", where), results_split(results, "test", where)
        for variant in variants:
            table = jaccard_per_order(
                train.I_and,
                train.I_or,
                train.labels,
                test.I_and,
                test.I_or,
                test.labels,
                variant=variant,
            ).reset_index()
            frames.append(
                table.assign(
                    **identity(results),
                    variant=variant,
                    n_train=train.n_samples,
                    n_test=test.n_samples,
                )
            )
    if not frames:
        raise ValueError("no results files given")
    columns = [*IDENTITY, "variant", "order", "similarity", "n_classes", "n_train", "n_test"]
    table = pd.concat(frames, ignore_index=True)[columns]
    return table.sort_values(["run", "epoch", "variant", "order"], ignore_index=True)


def run_step(*, interactions: Sequence[str | Path], table: str | Path) -> None:
    """Jaccard per order (both variants) of every checkpoint of a run → TSV."""
    write_tsv(jaccard_table(check_files(interactions, "interaction files")), table)


def study_step(
    *,
    tables: Sequence[str | Path],
    points: Sequence[str | Path],
    table: str | Path,
    figure: str | Path,
    variant: str = "average_then_split",
) -> None:
    """All runs' Jaccard tables in one TSV; figure of `variant` at the checkpoint stages."""
    from harsanyi.plots import jaccard_figure

    if variant not in JACCARD_VARIANTS:
        raise ValueError(f"analysis.jaccard_variant must be one of {JACCARD_VARIANTS}")
    joined = read_tsvs(check_files(tables, "Jaccard tables"))
    two_phase = read_points(check_files(points, "two-phase points"))
    stages = {
        run: checkpoint_stages(part.epoch, two_phase.get(run, {}).get("phase2_start"))
        for run, part in joined.groupby("run")
    }
    write_tsv(joined, table)
    jaccard_figure(joined, stages, figure, variant=variant)
