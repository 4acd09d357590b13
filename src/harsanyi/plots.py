"""Figures for papers: seaborn/matplotlib, saved as PNG and PDF side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harsanyi.store import atomic_path  # noqa: E402

POSITIVE = "#c0392b"
NEGATIVE = "#2c6fbb"


def save(fig: plt.Figure, out: str | Path) -> list[Path]:
    """Write `out` (PNG) and its PDF twin atomically; close the figure."""
    out = Path(out)
    written = []
    for path in (out, out.with_suffix(".pdf")):
        with atomic_path(path) as temp:
            fig.savefig(temp, format=path.suffix[1:], dpi=200, bbox_inches="tight")
        written.append(path)
    plt.close(fig)
    return written


def two_phase_figure(
    strength: pd.DataFrame,
    metrics: dict[str, pd.DataFrame],
    shown: dict[str, list[int]],
    points: dict[str, dict],
    out: str | Path,
    *,
    split: str = "train",
) -> list[Path]:
    """Rows = runs; columns = I⁺(k)/I⁻(k) bars at selected checkpoints, then the loss gap."""
    sns.set_theme(style="ticks", context="paper")
    runs = list(shown)
    columns = max(len(v) for v in shown.values()) + 1
    fig, axes = plt.subplots(
        len(runs),
        columns,
        figsize=(2.3 * columns, 2.0 * len(runs)),
        squeeze=False,
        constrained_layout=True,
    )
    for row, run in enumerate(runs):
        data = strength[(strength.run == run) & (strength.split == split)]
        top = max(data.positive.max(), -data.negative.min(), 1e-12) * 1.1
        for col, epoch in enumerate(shown[run]):
            ax = axes[row, col]
            at = data[data.epoch == epoch]
            ax.bar(at.order, at.positive, color=POSITIVE, width=0.8, label="I⁺(k)")
            ax.bar(at.order, at.negative, color=NEGATIVE, width=0.8, label="I⁻(k)")
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_ylim(-top, top)
            ax.set_xticks(sorted(at.order.unique())[::2])
            ax.set_title(f"epoch {epoch}", fontsize=8)
            if col == 0:
                ax.set_ylabel(run.rsplit("-", 1)[0], fontsize=7)
            if row == len(runs) - 1:
                ax.set_xlabel("order k")
        for col in range(len(shown[run]), columns - 1):
            axes[row, col].axis("off")
        ax = axes[row, -1]
        curve = metrics[run]
        ax.plot(curve.epoch, curve.train_loss, color="0.5", linewidth=1, label="train loss")
        ax.plot(
            curve.epoch,
            curve.test_loss,
            color="0.2",
            linewidth=1,
            linestyle="--",
            label="test loss",
        )
        ax.plot(curve.epoch, curve.loss_gap, color="#8e44ad", linewidth=1.5, label="gap")
        marks = points.get(run, {})
        if marks.get("phase2_start") is not None:
            ax.axvline(
                marks["phase2_start"],
                color=POSITIVE,
                linestyle=":",
                linewidth=1,
                label="phase-2 start",
            )
        if marks.get("gap_onset") is not None:
            ax.axvline(
                marks["gap_onset"], color="#8e44ad", linestyle="-.", linewidth=1, label="gap onset"
            )
        ax.set_title("loss gap", fontsize=8)
        if row == len(runs) - 1:
            ax.set_xlabel("epoch")
        if row == 0:
            ax.legend(fontsize=5, frameon=False)
    axes[0, 0].legend(fontsize=6, frameon=False)
    sns.despine(fig)
    return save(fig, out)
