"""What a run's network learned, drawn on one sample (the report's "Interactions on the
input"): the first explained training sample's strongest salient AND and OR interactions on
its input, at `shown_checkpoints` checkpoints spread over training (first, last, between), as
`harsanyi draw` draws them, so that both phases can be seen on one sample.

- `run_step` (rule pictures_run): a run's results files → its picture (PNG, PDF beside it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harsanyi.analyses.common import shown_epochs

log = logging.getLogger(__name__)
TOP = 6  # interactions drawn per checkpoint
_EPOCH = re.compile(r"epoch_(\d+)\.h5$")


def chosen_files(interactions: Sequence[str | Path], count: int) -> list[Path]:
    """`count` of a run's results files spread over training (first and last included),
    by the epoch in their names (`epoch_XXXX.h5`)."""
    by_epoch = {}
    for path in map(Path, interactions):
        match = _EPOCH.search(path.name)
        if match is None:
            raise ValueError(f"{path}: not a checkpoint's results file (epoch_XXXX.h5)")
        by_epoch[int(match.group(1))] = path
    return [by_epoch[e] for e in shown_epochs(by_epoch, count)]


def run_step(
    interactions: Sequence[str],
    figure: str,
    *,
    shown_checkpoints: int,
    root: str | None = None,
) -> None:
    from harsanyi.pictures import checkpoint_series, sample_input
    from harsanyi.plots import interaction_picture

    files = chosen_files(interactions, shown_checkpoints)
    first = checkpoint_series(files[:1], 0)[0]
    results = next(iter(first.values()))
    train = np.flatnonzero(np.asarray(results.split).astype(str) == "train")
    sample = int(train[0]) if train.size else 0
    by_epoch, paths = checkpoint_series(files, sample)
    data = sample_input(by_epoch[min(by_epoch)], sample, path=paths[0], data_root=root)
    if data.note:
        log.warning("%s: %s; drawing the players only", paths[0], data.note)
    drawn = interaction_picture(by_epoch, sample, figure, top=TOP, data=data)
    log.info(
        "%s: sample row %d, %d interactions at epochs %s",
        figure,
        sample,
        len(drawn),
        sorted(by_epoch),
    )
