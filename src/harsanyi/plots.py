"""Figures for papers: seaborn/matplotlib, saved as PNG and PDF side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from harsanyi.io import atomic_path  # noqa: E402
from harsanyi.store import short_name  # noqa: E402

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
        for col, epoch in enumerate(shown[run]):
            ax = axes[row, col]
            at = data[data.epoch == epoch]
            # Each checkpoint on its own scale: interactions at initialisation are orders of
            # magnitude weaker than after training, and the shape per order is what matters.
            top = max(at.positive.max(), -at.negative.min(), 1e-300)
            ax.bar(at.order, at.positive / top, color=POSITIVE, width=0.8, label="I⁺(k)")
            ax.bar(at.order, at.negative / top, color=NEGATIVE, width=0.8, label="I⁻(k)")
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_ylim(-1.1, 1.1)
            ax.set_xticks(sorted(at.order.unique())[::2])
            ax.set_title(f"epoch {epoch} (max {top:.2g})", fontsize=8)
            if col == 0:
                ax.set_ylabel(run.rsplit("-", 1)[0] + "\nstrength / max", fontsize=7)
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


# --------------------------------------------------------------------------- study figures

NORMAL = "#2c6fbb"
FLIPPED = "#c0392b"
VERDICT_COLOURS = {"yes": "#c8e6c9", "no": "#ffcdd2", "n/a": "#eeeeee"}


def _grid(count: int, columns: int, width: float, height: float):
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(width * columns, height * rows),
        squeeze=False,
        constrained_layout=True,
    )
    for ax in axes.ravel()[count:]:
        ax.axis("off")
    return fig, axes.ravel()


def jaccard_figure(
    table: pd.DataFrame,
    stages: dict[str, dict[str, int]],
    out: str | Path,
    *,
    variant: str = "average_then_split",
) -> list[Path]:
    """Jaccard similarity (train vs test) per order; one panel per run, one line per stage."""
    sns.set_theme(style="ticks", context="paper")
    runs = sorted(stages)
    fig, axes = _grid(len(runs), 4, 2.8, 2.3)
    palette = sns.color_palette("viridis", 4)
    for ax, run in zip(axes, runs, strict=False):
        data = table[(table.run == run) & (table.variant == variant)]
        for colour, (stage, epoch) in zip(palette, stages[run].items(), strict=False):
            at = data[data.epoch == epoch].sort_values("order")
            ax.plot(
                at.order,
                at.similarity,
                marker="o",
                markersize=3,
                color=colour,
                label=f"{stage} (epoch {epoch})",
            )
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("order k")
        ax.set_ylabel("Jaccard similarity (train vs test)")
        ax.set_title(short_name(run), fontsize=8)
        ax.legend(fontsize=6, frameon=False)
    fig.suptitle(f"Jaccard per order ({variant.replace('_', ' ')})", fontsize=9)
    sns.despine(fig)
    return save(fig, out)


def _paired_bars(ax, data: pd.DataFrame, value: str) -> None:
    """Normal vs flipped bars per order with bootstrap CI error bars."""
    for offset, (group, colour) in zip(
        (-0.2, 0.2), (("normal", NORMAL), ("flipped", FLIPPED)), strict=True
    ):
        at = data[data.group == group].sort_values("order")
        errors = [at[value] - at[f"{value}_low"], at[f"{value}_high"] - at[value]]
        ax.bar(
            at.order + offset,
            at[value],
            width=0.4,
            color=colour,
            label=group,
            yerr=errors,
            capsize=1.5,
            error_kw={"linewidth": 0.7},
        )
    ax.set_xlabel("order k")


def ood_figure(strength: pd.DataFrame, verdicts: pd.DataFrame, out: str | Path) -> list[Path]:
    """Per noisy run, at its last checkpoint: salient strength per order, normal vs flipped
    samples (left) and the per-sample normalised share (right), with 95 % bootstrap CIs."""
    sns.set_theme(style="ticks", context="paper")
    runs = sorted(strength.run.unique())
    fig, axes = plt.subplots(
        len(runs), 2, figsize=(7.0, 2.4 * len(runs)), squeeze=False, constrained_layout=True
    )
    for row, run in enumerate(runs):
        data = strength[strength.run == run]
        last = data[data.epoch == data.epoch.max()]
        _paired_bars(axes[row, 0], last, "strength")
        axes[row, 0].set_ylabel("salient |I| per sample")
        _paired_bars(axes[row, 1], last, "share")
        axes[row, 1].set_ylabel("share of the sample's strength")
        verdict = verdicts[verdicts.run == run] if "run" in verdicts else verdicts.iloc[:0]
        text = f" — OOD more high-order: {verdict.verdict.iloc[0]}" if len(verdict) else ""
        axes[row, 0].set_title(
            f"{short_name(run)}, epoch {int(last.epoch.max())}{text}", fontsize=8, loc="left"
        )
        axes[row, 0].legend(fontsize=6, frameon=False)
    sns.despine(fig)
    return save(fig, out)


def similarity_figure(
    coverage: pd.DataFrame,
    orders: pd.DataFrame,
    topk: pd.DataFrame,
    out: str | Path,
    *,
    tau: float = 0.05,
) -> list[Path]:
    """Per stage (rows): one run × run heatmap of mean coverage at τ₁ = tau per dataset, then
    coverage per order and top-K overlap (pairs of different runs, one colour per dataset),
    each against the random-set baseline (dotted)."""
    import numpy as np

    sns.set_theme(style="ticks", context="paper")
    stages = list(dict.fromkeys(coverage.stage.astype(str)))
    datasets = sorted(coverage.dataset.unique())
    names = {
        d: sorted(
            set(coverage[coverage.dataset == d].run_a) | set(coverage[coverage.dataset == d].run_b)
        )
        for d in datasets
    }
    sizes = [1.2 + 0.55 * len(names[d]) for d in datasets]
    fig, axes = plt.subplots(
        len(stages),
        len(datasets) + 2,
        figsize=(sum(sizes) + 7.0, max(3.2, max(sizes)) * len(stages)),
        squeeze=False,
        constrained_layout=True,
        gridspec_kw={"width_ratios": [*sizes, 3.2, 3.2]},
    )
    palette = dict(zip(datasets, sns.color_palette("deep", len(datasets)), strict=True))
    for row, stage in enumerate(stages):
        at_stage = coverage[(coverage.stage.astype(str) == stage) & np.isclose(coverage.tau1, tau)]
        for col, dataset in enumerate(datasets):
            ax = axes[row, col]
            at = at_stage[at_stage.dataset == dataset]
            matrix = at.pivot_table(index="run_a", columns="run_b", values="coverage")
            matrix = matrix.reindex(index=names[dataset], columns=names[dataset])
            labels = [short_name(n) for n in names[dataset]]
            sns.heatmap(
                matrix.to_numpy(dtype=float),
                ax=ax,
                vmin=0,
                vmax=1,
                cmap="mako",
                annot=len(labels) <= 8,
                fmt=".2f",
                annot_kws={"fontsize": 6},
                xticklabels=labels,
                yticklabels=labels,
                cbar=col == len(datasets) - 1,
                cbar_kws={"label": "coverage"},
            )
            ax.tick_params(labelsize=6)
            ax.set_xticklabels(labels, rotation=40, ha="right")
            ax.set_xlabel("model b (τ₂ = 0.05)")
            ax.set_ylabel("model a" if col == 0 else "")
            ax.set_title(f"{stage}, {dataset}: coverage (τ₁ = {tau:g})", fontsize=8)
        pairs = orders[(orders.stage.astype(str) == stage) & (orders.run_a != orders.run_b)]
        top = topk[(topk.stage.astype(str) == stage) & (topk.run_a != topk.run_b)]
        if pairs.empty:
            for ax in axes[row, -2:]:
                ax.text(0.5, 0.5, "no pair of comparable runs", ha="center", va="center")
                ax.set_axis_off()
            continue
        ax = axes[row, -2]
        for dataset, part in pairs.groupby("dataset"):
            mean = part.groupby("order")[["coverage", "random_expected"]].mean()
            colour = palette[dataset]
            ax.plot(
                mean.index, mean.coverage, marker="o", markersize=3, color=colour, label=dataset
            )
            ax.plot(mean.index, mean.random_expected, linestyle=":", color=colour)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("order k")
        ax.set_ylabel("coverage at order k")
        ax.set_title(f"{stage}: per order (dotted: random sets)", fontsize=8)
        ax.legend(fontsize=6, frameon=False)
        ax = axes[row, -1]
        for dataset, part in top.groupby("dataset"):
            colour = palette[dataset]
            for op, style in (("and", "-"), ("or", "--")):
                curve = part[part.op == op].groupby("r")[["overlap", "random_expected"]].mean()
                ax.plot(
                    curve.index,
                    curve.overlap,
                    linestyle=style,
                    marker="o",
                    markersize=2.5,
                    color=colour,
                    label=f"{dataset} {op.upper()}",
                )
        ax.plot(curve.index, curve.random_expected, linestyle=":", color="0.4", label="random")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("r (K = r·2^n)")
        ax.set_ylabel("top-K overlap")
        ax.set_title(f"{stage}: top-K overlap", fontsize=8)
        ax.legend(fontsize=6, frameon=False)
        sns.despine(ax=axes[row, -2])
        sns.despine(ax=axes[row, -1])
    return save(fig, out)


def theory_figure(
    orders: pd.DataFrame,
    fit: pd.DataFrame,
    shown: dict[str, list[int]],
    out: str | Path,
) -> list[Path]:
    """Rows = runs.  First column: measured distribution at the first checkpoint vs the
    spindle prediction; then measured (bars) vs the fitted phase-2 theory (line) at selected
    checkpoints; last column: the fitted σ² over training."""
    sns.set_theme(style="ticks", context="paper")
    runs = sorted(shown)
    columns = max(len(v) for v in shown.values()) + 2
    fig, axes = plt.subplots(
        len(runs),
        columns,
        figsize=(2.2 * columns, 2.0 * len(runs)),
        squeeze=False,
        constrained_layout=True,
    )
    for row, run in enumerate(runs):
        data = orders[orders.run == run]
        first = data[data.epoch == data.epoch.min()]
        ax = axes[row, 0]
        ax.bar(first.order, first.measured, color="0.6", width=0.8, label="measured")
        ax.plot(
            first.order,
            first.spindle,
            color=POSITIVE,
            marker="o",
            markersize=3,
            label="spindle theory",
        )
        ax.set_title(f"init (epoch {int(first.epoch.min())})", fontsize=8)
        ax.set_ylabel(f"{short_name(run)}\nshare of strength", fontsize=7)
        for col, epoch in enumerate(shown[run], start=1):
            ax = axes[row, col]
            at = data[data.epoch == epoch]
            ax.bar(at.order, at.measured, color="0.6", width=0.8, label="measured")
            ax.plot(
                at.order,
                at.predicted,
                color=NEGATIVE,
                marker="o",
                markersize=3,
                label="phase-2 theory",
            )
            sigma2 = fit[(fit.run == run) & (fit.epoch == epoch)].sigma2
            label = f"σ² = {sigma2.iloc[0]:.2g}" if len(sigma2) else ""
            ax.set_title(f"epoch {epoch}  {label}", fontsize=8)
        for col in range(len(shown[run]) + 1, columns - 1):
            axes[row, col].axis("off")
        for col in range(columns - 1):
            if row == len(runs) - 1:
                axes[row, col].set_xlabel("order k")
        ax = axes[row, -1]
        curve = fit[fit.run == run].sort_values("epoch")
        ax.plot(curve.epoch, curve.sigma2, marker="o", markersize=3, color=NEGATIVE)
        ax.set_yscale("log")
        ax.set_title("fitted σ²", fontsize=8)
        ax.set_xlabel("epoch")
        if row == 0:
            axes[0, 0].legend(fontsize=6, frameon=False)
            axes[0, 1].legend(fontsize=6, frameon=False)
    sns.despine(fig)
    return save(fig, out)


def theory_ratio_figure(ratio: pd.DataFrame, out: str | Path) -> list[Path]:
    """Pure theory: r(k), low- to high-order strength of ŵ, per split order k (one panel per
    n, one line per σ²)."""
    sns.set_theme(style="ticks", context="paper")
    ns = sorted(ratio.n.unique())
    fig, axes = _grid(len(ns), len(ns), 2.8, 2.4)
    sigma2s = sorted(ratio.sigma2.unique())
    palette = sns.color_palette("rocket_r", len(sigma2s))
    for ax, n in zip(axes, ns, strict=False):
        for colour, sigma2 in zip(palette, sigma2s, strict=True):
            at = ratio[(ratio.n == n) & (ratio.sigma2 == sigma2)].sort_values("split_order")
            ax.plot(
                at.split_order,
                at.ratio,
                color=colour,
                marker="o",
                markersize=2.5,
                label=f"σ² = {sigma2:.0e}",
            )
        ax.set_yscale("log")
        ax.set_xlabel("split order k")
        ax.set_ylabel("r(k) = low / high strength")
        ax.set_title(f"n = {n}", fontsize=8)
    axes[0].legend(fontsize=5, frameon=False)
    sns.despine(fig)
    return save(fig, out)


def shapley_figure(values: pd.DataFrame, summary: pd.DataFrame, out: str | Path) -> list[Path]:
    """Per run: Shapley values from the interactions against the exact Shapley values of v,
    titled with the largest difference to the exact values of the decomposed game."""
    sns.set_theme(style="ticks", context="paper")
    runs = sorted(values.run.unique())
    fig, axes = _grid(len(runs), 4, 2.5, 2.5)
    for ax, run in zip(axes, runs, strict=False):
        data = values[values.run == run]
        ax.scatter(data.phi_v, data.phi_interactions, s=4, alpha=0.6, color=NEGATIVE)
        low = float(min(data.phi_v.min(), data.phi_interactions.min()))
        high = float(max(data.phi_v.max(), data.phi_interactions.max()))
        ax.plot([low, high], [low, high], color="0.4", linewidth=0.7, linestyle=":")
        check = summary[summary.run == run]
        text = f"max |Δ| = {check.max_abs_diff.iloc[0]:.1e}" if len(check) else ""
        ax.set_title(f"{short_name(run)}\n{text}", fontsize=7)
        ax.set_xlabel("exact Shapley value of v")
        ax.set_ylabel("from AND-OR interactions")
    sns.despine(fig)
    return save(fig, out)


def scorecard_figure(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """The scorecard as a table: run, claim, measured, verdict (cells coloured by verdict)."""
    cells = [[short_name(r.run), r.claim, str(r.measured), r.verdict] for r in table.itertuples()]
    cells = cells or [["", "", "", ""]]
    fig, ax = plt.subplots(figsize=(14, 0.4 + 0.2 * (len(cells) + 1)))
    ax.axis("off")
    shown = ax.table(
        cellText=cells,
        colLabels=["run", "claim", "measured", "verdict"],
        cellLoc="left",
        colWidths=[0.17, 0.24, 0.53, 0.06],
        bbox=[0, 0, 1, 1],
    )
    shown.auto_set_font_size(False)
    shown.set_fontsize(6.5)
    for (row, col), cell in shown.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold")
        elif col == 3:
            cell.set_facecolor(VERDICT_COLOURS.get(cells[row - 1][3], "white"))
    return save(fig, out)


def attributions_figure(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """Share of each captum attribution explained by each allocation of the interactions."""
    sns.set_theme(style="ticks", context="paper")
    data = table[table.method != "n/a"].copy()
    runs = sorted(data.run.unique()) or ["(no run with input-space players)"]
    fig, axes = plt.subplots(
        1,
        len(runs),
        figsize=(3.2 * len(runs), 2.6),
        squeeze=False,
        sharey=True,
        constrained_layout=True,
    )
    for ax, run in zip(axes[0], runs, strict=True):
        part = data[data.run == run]
        if len(part):
            sns.barplot(
                part,
                x="method",
                y="explained_share",
                hue="allocation",
                ax=ax,
                palette=[POSITIVE, NEGATIVE],
            )
        ax.set_title(run.rsplit("-", 1)[0], fontsize=8)
        ax.set_xlabel("")
        ax.set_ylabel("explained share (R²)")
        ax.set_ylim(min(0.0, float(part.explained_share.min()) if len(part) else 0.0), 1.05)
        ax.tick_params(axis="x", rotation=30, labelsize=7)
        if ax.get_legend() is not None and ax is not axes[0, 0]:
            ax.get_legend().remove()
    sns.despine(fig)
    return save(fig, out)
