"""Figures for papers: seaborn/matplotlib, saved as PNG (300 dpi) and PDF side by side.

Every figure is at most a journal's double column wide (7.2 in, 183 mm), its text at least
7 pt at that size, its runs in one order (`run_order`: dataset, architecture, seed, label
noise), with one legend for the whole figure where the panels share their meaning.
tests/test_figures.py checks sizes, labels and overlapping text of every figure.
"""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from harsanyi.io import atomic_path  # noqa: E402

POSITIVE = "#c0392b"
NEGATIVE = "#2c6fbb"
NORMAL = "#2c6fbb"
FLIPPED = "#c0392b"
VERDICT_COLOURS = {
    "yes": "#c8e6c9",
    "no": "#ffcdd2",
    "inconclusive": "#fff0b3",
    "n/a": "#eeeeee",
    "depends on the decomposition": "#e1d5f0",
}
FACE_RANGE = "0.1"  # whiskers: the same strength at the two ends of the optimal face

DOUBLE = 7.2  # inches: a journal's double column (183 mm)
SINGLE = 3.5  # inches: a single column (89 mm)
MAX_HEIGHT = 9.5  # inches: a page less its caption
DPI = 300
FONT = 7.0  # pt, the smallest text in any figure
RC = {
    "font.size": FONT,
    "axes.titlesize": FONT + 0.5,
    "axes.labelsize": FONT,
    "xtick.labelsize": FONT,
    "ytick.labelsize": FONT,
    "legend.fontsize": FONT,
    "legend.title_fontsize": FONT,
    "figure.titlesize": FONT + 1,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.0,
    "lines.markersize": 3,
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "figure.constrained_layout.h_pad": 0.03,
    "figure.constrained_layout.w_pad": 0.03,
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,
}


def _theme() -> None:
    sns.set_theme(style="ticks", context="paper", rc=RC)


def save(fig: plt.Figure, out: str | Path) -> list[Path]:
    """Write `out` (PNG, 300 dpi) and its PDF twin atomically at the figure's own size (the
    layout is constrained, so nothing is cut); close the figure."""
    out = Path(out)
    written = []
    # matplotlib subsets the embedded fonts of a PDF with fontTools, which logs every table it
    # touches at INFO: about 2,000 lines per study in the workflow's log.
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    for path in (out, out.with_suffix(".pdf")):
        with atomic_path(path) as temp:
            fig.savefig(temp, format=path.suffix[1:], dpi=DPI)
        written.append(path)
    plt.close(fig)
    return written


# --------------------------------------------------------------------------- runs

_HASH = re.compile(r"^[0-9a-f]{12}$")


def run_key(run: str) -> tuple:
    """(dataset, architecture, seed, label noise, name) parsed from a run directory name
    `<dataset>-<arch>-s<seed>[-noise<p>]-<hash>`; unparsed parts sort as text."""
    parts = str(run).split("-")
    if parts and _HASH.match(parts[-1]):
        parts = parts[:-1]
    seed, noise, rest = -1, 0.0, []
    for part in parts:
        if re.fullmatch(r"s\d+", part):
            seed = int(part[1:])
        elif part.startswith("noise"):
            try:
                noise = float(part[5:])
            except ValueError:
                rest.append(part)
        else:
            rest.append(part)
    dataset = rest[0] if rest else ""
    arch = "-".join(rest[1:])
    return (dataset, arch, seed, noise, str(run))


def run_order(runs) -> list[str]:
    """The order of runs in every figure: dataset, architecture, seed, label noise."""
    return sorted(dict.fromkeys(runs), key=run_key)


def _run_label(run: str, *, lines: int = 1, dataset: bool = True) -> str:
    """'digits lenet s0 noise 0.15' without the settings hash (two lines if `lines` == 2)."""
    name, arch, seed, noise, full = run_key(run)
    if not name:
        return full
    head = f"{name} {arch}".strip() if dataset else arch
    tail = " ".join(
        part
        for part in (f"s{seed}" if seed >= 0 else "", f"noise {noise:g}" if noise else "")
        if part
    )
    return f"{head}\n{tail}" if lines == 2 and tail else f"{head} {tail}".strip()


def _rows_height(rows: int, per_row: float, extra: float = 0.4) -> float:
    """Height of a figure of `rows` panel rows, shrunk to fit a page."""
    return min(MAX_HEIGHT, per_row * rows + extra)


def _legend(fig, handles, *, ncol: int | None = None, loc: str = "outside upper center"):
    """One legend for the whole figure, above the panels."""
    handles = list(handles)
    return fig.legend(
        handles=handles,
        loc=loc,
        ncol=ncol or min(len(handles), 4),
        frameon=False,
        columnspacing=1.2,
        handletextpad=0.5,
    )


def _order_ticks(ax, orders) -> None:
    orders = sorted(int(k) for k in pd.unique(pd.Series(orders)))
    if not orders:
        return
    step = 1 if len(orders) <= 6 else 2
    ax.set_xticks(orders[::step])
    ax.set_xlim(orders[0] - 0.6, orders[-1] + 0.6)


def _off(ax, text: str | None = None) -> None:
    ax.set_axis_off()
    if text:
        ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)


# --------------------------------------------------------------------------- two phases


def _roles(epoch: int, first: int, last: int, start) -> str:
    roles = []
    if epoch == first:
        roles.append("init")
    if start is not None and epoch == int(start):
        roles.append("phase-2 start")
    if epoch == last and epoch != first:
        roles.append("final")
    return ", ".join(roles)


GAP = "#8e44ad"
# The phase-2 start and the loss-gap onset: a vertical line each, and a marker at the top
# (phase-2 start, pointing down) or at the bottom (gap onset, pointing up) of the panel, so
# that both stay visible where they fall on the same epoch.
MARKS = {
    "phase2_start": {"color": POSITIVE, "linestyle": ":", "marker": "v", "markersize": 4},
    "gap_onset": {"color": GAP, "linestyle": "-.", "marker": "^", "markersize": 4},
}


def _epoch_marks(ax, marks: dict) -> None:
    """The phase-2 start and the loss-gap onset of `marks` on a loss panel (`MARKS`)."""
    for key, y in (("gap_onset", 0.0), ("phase2_start", 1.0)):  # red dots over purple
        epoch = marks.get(key)
        if epoch is None or not np.isfinite(float(epoch)):
            continue
        style = MARKS[key]
        ax.axvline(float(epoch), color=style["color"], linestyle=style["linestyle"], linewidth=1)
        ax.plot(
            [float(epoch)],
            [y],
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            linestyle="",
            marker=style["marker"],
            markersize=style["markersize"],
            color=style["color"],
            gid=key,
        )


def two_phase_figure(
    strength: pd.DataFrame,
    metrics: dict[str, pd.DataFrame],
    shown: dict[str, list[int]],
    points: dict[str, dict],
    out: str | Path,
    *,
    split: str = "train",
) -> list[Path]:
    """Rows = runs (`run_order`); columns = I⁺(k)/I⁻(k) bars at the run's selected checkpoints
    (each scaled to its own maximum, given in the panel), then train/test loss and their gap
    with the phase-2 start and the loss-gap onset marked.  Where the files hold the optimal
    face, grey whiskers span each bar's value at its two ends and the panel gives the mean
    order with the ends' range.  One legend above the panels."""
    _theme()
    runs = run_order(shown)
    columns = max(len(v) for v in shown.values()) + 1
    row_height = min(1.45, (MAX_HEIGHT - 0.5) / len(runs))
    fig = plt.figure(
        figsize=(DOUBLE, _rows_height(len(runs), row_height, 0.5)), layout="constrained"
    )
    subfigs = np.atleast_1d(
        fig.subfigures(len(runs) + 1, 1, height_ratios=[0.36 / row_height] + [1] * len(runs))
    )
    legend_row = subfigs[0]
    bars_y = None
    face_shown = False
    for subfig, run in zip(subfigs[1:], runs, strict=True):
        subfig.suptitle(_run_label(run), x=0.005, ha="left", fontsize=FONT + 0.5, weight="bold")
        axes = subfig.subplots(
            1, columns, gridspec_kw={"width_ratios": [1] * (columns - 1) + [1.25]}
        )
        data = strength[(strength.run == run) & (strength.split == split)]
        epochs = sorted(int(e) for e in data.epoch.unique()) or [0]
        start = points.get(run, {}).get("phase2_start")
        for col, epoch in enumerate(shown[run]):
            ax = axes[col]
            at = data[data.epoch == epoch]
            # Each checkpoint on its own scale: interactions at initialisation are orders of
            # magnitude weaker than after training, and the shape per order is what matters.
            top = max(float(at.positive.max()), float(-at.negative.min()), 1e-300)
            ax.bar(at.order, at.positive / top, color=POSITIVE, width=0.8)
            ax.bar(at.order, at.negative / top, color=NEGATIVE, width=0.8)
            has_face = "positive_low" in at and at.positive_low.notna().any()
            face_shown |= bool(has_face)
            if has_face:
                for part in ("positive", "negative"):
                    ends = at[[f"{part}_low", f"{part}_high"]].to_numpy() / top
                    ax.vlines(at.order, ends.min(1), ends.max(1), color=FACE_RANGE, linewidth=0.9)
            ax.axhline(0, color="black", linewidth=0.5)
            if bars_y is None:
                bars_y = ax
                ax.set_ylim(-1.1, 2.5 if has_face else 1.5)
                ax.set_yticks([-1, 0, 1])
            else:
                ax.sharey(bars_y)
            label = f"max {top:.2g}"
            if has_face and at.mean_order_low.notna().any():
                ends = sorted((float(at.mean_order_low.iloc[0]), float(at.mean_order_high.iloc[0])))
                label += f"\norder {at.mean_order.iloc[0]:.1f} ({ends[0]:.1f}–{ends[1]:.1f})"
            ax.text(0.03, 0.97, label, transform=ax.transAxes, va="top", ha="left")
            _order_ticks(ax, at.order)
            role = _roles(epoch, epochs[0], epochs[-1], start)
            joint = "\n" if len(role) > 14 else " "
            ax.set_title(f"epoch {epoch}" + (f"{joint}({role})" if role else ""))
            ax.set_xlabel("order k")
            if col == 0:
                ax.set_ylabel("I(k) / max")
            else:
                ax.tick_params(labelleft=False)
        for col in range(len(shown[run]), columns - 1):
            _off(axes[col])
        ax = axes[-1]
        curve = metrics[run]
        ax.plot(curve.epoch, curve.train_loss, color="0.55")
        ax.plot(curve.epoch, curve.test_loss, color="0.15", linestyle="--")
        ax.plot(curve.epoch, curve.loss_gap, color=GAP, linewidth=1.4)
        _epoch_marks(ax, points.get(run, {}))
        ax.set_title("loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy")
        sns.despine(subfig)
    _legend(
        legend_row,
        [
            Patch(color=POSITIVE, label="I⁺(k): positive"),
            Patch(color=NEGATIVE, label="I⁻(k): negative"),
            Line2D([], [], color="0.55", label="train loss"),
            Line2D([], [], color="0.15", linestyle="--", label="test loss"),
            Line2D([], [], color=GAP, linewidth=1.4, label="gap (test − train)"),
            Line2D([], [], label="phase-2 start", **MARKS["phase2_start"]),
            Line2D([], [], label="loss-gap onset", **MARKS["gap_onset"]),
            *(
                [Line2D([], [], color=FACE_RANGE, label="ends of the optimal face")]
                if face_shown
                else []
            ),
        ],
        loc="center",
    )
    return save(fig, out)


# --------------------------------------------------------------------------- study figures


def _panels(count: int, columns: int, height: float, *, width: float = DOUBLE, **kwargs):
    """`count` panels in rows of `columns`, `width` inches wide; unused panels hidden."""
    columns = max(1, min(columns, count))
    if count == 4 and columns == 3:
        columns = 2  # 2 × 2 rather than 3 + 1
    rows = -(-count // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(width, _rows_height(rows, height, 0.45)),
        squeeze=False,
        layout="constrained",
        **kwargs,
    )
    for ax in axes.ravel()[count:]:
        ax.set_visible(False)
    return fig, axes


STAGE_STYLES = {
    "init": {"color": "0.55", "linestyle": "--", "marker": "s"},
    "early": {"color": "#7fb3d5", "linestyle": "-", "marker": "o"},
    "phase-2 start": {"color": "#2c6fbb", "linestyle": "-", "marker": "o"},
    "final": {"color": "#17202a", "linestyle": "-", "marker": "o"},
}


def jaccard_figure(
    table: pd.DataFrame,
    stages: dict[str, dict[str, int]],
    out: str | Path,
    *,
    variant: str = "average_then_split",
) -> list[Path]:
    """Jaccard similarity (train vs test) per order; one panel per run (`run_order`), one line
    per checkpoint stage, the untrained network (init, dashed grey) as the reference.  A
    column `null` in `table` (a permutation baseline), where present, is drawn dotted."""
    _theme()
    runs = run_order(stages)
    fig, axes = _panels(len(runs), 3, 1.75, sharey=True)
    for ax, run in zip(axes.ravel(), runs, strict=False):
        data = table[(table.run == run) & (table.variant == variant)]
        for stage, epoch in stages[run].items():
            at = data[data.epoch == epoch].sort_values("order")
            style = STAGE_STYLES.get(stage, {"color": "0.3", "marker": "o"})
            ax.plot(at.order, at.similarity, markersize=3, **style)
            if "null" in at and at["null"].notna().any():
                ax.plot(at.order, at["null"], color=style["color"], linestyle=":")
        ax.axhline(0, color="0.8", linewidth=0.5, zorder=0)
        ax.set_ylim(-0.02, 1.02)
        _order_ticks(ax, data.order)
        epochs = " / ".join(str(e) for e in stages[run].values())
        ax.set_title(f"{_run_label(run)}\nepochs {epochs}")
        ax.set_xlabel("order k")
    for ax in axes[:, 0]:
        ax.set_ylabel("Jaccard similarity\ntrain vs test")
    handles = [
        Line2D([], [], markersize=3, label=stage, **style) for stage, style in STAGE_STYLES.items()
    ]
    if "null" in table and table["null"].notna().any():
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="null"))
    _legend(fig, handles, ncol=len(handles))
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
            yerr=np.clip(np.asarray(errors, dtype=float), 0, None),
            capsize=1.2,
            error_kw={"linewidth": 0.6},
        )
    _order_ticks(ax, data.order)
    ax.set_xlabel("order k")


OOD_CLAIM = "OOD samples carry more high-order strength"


def _ood_claim_text(claim: dict | None) -> str:
    """The scorecard's OOD verdict and numbers of one run, for its row title."""
    if claim is None:
        return "scorecard verdict: not given here (see scorecard.tsv)"
    verdict = str(claim.get("verdict"))
    effect = claim.get("effect")
    if effect is None or not np.isfinite(float(effect)):
        reason = claim.get("reason")
        return f"scorecard verdict: {verdict}" + (f"\n{reason}" if isinstance(reason, str) else "")
    return (
        f"scorecard verdict: {verdict}\nchange of mean order from the first checkpoint, "
        f"flipped − normal: {float(effect):.2f} [{float(claim['low']):.2f}, "
        f"{float(claim['high']):.2f}] vs bound {float(claim['bound']):.2f}"
    )


def ood_mean_orders(strength: pd.DataFrame) -> pd.DataFrame:
    """Per run, checkpoint and group: the mean over samples of the per-sample mean order,
    Σ_k k·share(k) (`share` is the mean of the per-sample normalised strength, so the sum is
    the mean of the samples' own mean orders); columns run, epoch, group, mean_order."""
    weighted = strength.assign(_w=strength.order * strength.share)
    table = weighted.groupby(["run", "epoch", "group"], as_index=False)._w.sum(min_count=1)
    return table.rename(columns={"_w": "mean_order"})


def ood_figure(
    strength: pd.DataFrame,
    verdicts: pd.DataFrame,
    out: str | Path,
    *,
    claims: pd.DataFrame | None = None,
) -> list[Path]:
    """Per noisy run (rows, `run_order`), normal vs OOD (flipped-label) samples.  Left and
    middle, descriptive, at the last checkpoint: salient strength per order and the
    per-sample normalised share, with 95 % bootstrap CIs (shaded: orders k > n/2).  Right:
    the scorecard's statistic, the group mean of the per-sample mean order at every
    checkpoint, whose change from the first to the last checkpoint, flipped minus normal, the
    scorecard's claim tests.  The row title gives the scorecard's verdict, effect, interval
    and bound from `claims` (`analyses.ood.scorecard_claims`: the runs' claims.json), and
    says so where none is given; `verdicts` (the descriptive high-order share comparison)
    gives no verdict here."""
    _theme()
    runs = run_order(strength.run.unique())
    if not runs:
        fig, ax = plt.subplots(figsize=(SINGLE, 1.0), layout="constrained")
        _off(ax, "no run with label noise in this study")
        return save(fig, out)
    by_run = {}
    if claims is not None and len(claims):
        by_run = {row["run"]: row for row in claims.to_dict(orient="records")}
    mean_orders = ood_mean_orders(strength)
    row_height = min(2.2, (MAX_HEIGHT - 0.3) / len(runs))
    fig = plt.figure(
        figsize=(DOUBLE, _rows_height(len(runs), row_height, 0.3)), layout="constrained"
    )
    subfigs = np.atleast_1d(
        fig.subfigures(len(runs) + 1, 1, height_ratios=[0.3 / row_height] + [1] * len(runs))
    )
    axes = np.array(
        [sub.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 0.8]}) for sub in subfigs[1:]]
    )
    for row, run in enumerate(runs):
        data = strength[strength.run == run]
        last = data[data.epoch == data.epoch.max()]
        verdict = verdicts[verdicts.run == run] if "run" in verdicts else verdicts.iloc[:0]
        n = int(last.order.max())
        high = (
            int(verdict.high_from_order.iloc[0])
            if "high_from_order" in verdict and len(verdict)
            else n // 2 + 1
        )
        epoch = int(last.epoch.max())
        for ax, value, label, title in (
            (axes[row, 0], "strength", "salient Σ|I| per sample", "strength (descriptive)"),
            (
                axes[row, 1],
                "share",
                "share of the sample's\nsalient strength",
                "share (descriptive)",
            ),
        ):
            ax.axvspan(high - 0.5, n + 0.5, color="0.92", zorder=0, linewidth=0)
            _paired_bars(ax, last, value)
            ax.set_ylabel(label)
            ax.set_xlabel(f"order k (epoch {epoch})")
            ax.set_title(title)
        ax = axes[row, 2]
        for group, colour in (("normal", NORMAL), ("flipped", FLIPPED)):
            part = mean_orders[(mean_orders.run == run) & (mean_orders.group == group)]
            part = part.sort_values("epoch")
            ax.plot(part.epoch, part.mean_order, color=colour, marker="o", markersize=2.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel("mean order per sample")
        ax.set_title("the scorecard's statistic")
        subfigs[row + 1].suptitle(
            f"{_run_label(run)}: {_ood_claim_text(by_run.get(run))}",
            x=0.005,
            ha="left",
            fontsize=FONT + 0.5,
            weight="bold",
        )
        sns.despine(subfigs[row + 1])
    _legend(
        subfigs[0],
        [
            Patch(color=NORMAL, label="normal (label kept)"),
            Patch(color=FLIPPED, label="OOD (label flipped)"),
            Patch(color="0.92", label="orders k > n/2"),
        ],
        loc="center",
    )
    return save(fig, out)


def _pair_label(a: str, b: str) -> str:
    return f"{_run_label(a, dataset=False)} → {_run_label(b, dataset=False)}"


def similarity_figure(
    coverage: pd.DataFrame,
    orders: pd.DataFrame,
    topk: pd.DataFrame,
    out: str | Path,
    *,
    tau: float = 0.05,
    samples: pd.DataFrame | None = None,
) -> list[Path]:
    """Per stage (rows), over pairs of different comparable runs only (the self-comparison is
    left out): mean coverage at τ₁ = tau per ordered pair against the random-set expectation
    and, where `samples` (`analyses.similarity.shared_samples_table`) is given, the coverage
    of random sets with the pair's order profile, the baseline of the scorecard's claim (which
    compares the excess over it at the end with the same pairs untrained: the init row; its
    verdict is in scorecard.tsv, not here); coverage per order and top-K overlap averaged over
    pairs (one colour per dataset), each against the random-set baseline (dotted)."""
    _theme()
    matched = {}
    if samples is not None and len(samples):
        means = samples.groupby(["stage", "run_a", "run_b"]).random_matched.mean()
        matched = {(str(st), a, b): float(v) for (st, a, b), v in means.items()}
    pairs_all = coverage[(coverage.run_a != coverage.run_b) & np.isclose(coverage.tau1, tau)]
    if pairs_all.empty:
        fig, ax = plt.subplots(figsize=(SINGLE, 0.9), layout="constrained")
        _off(ax, "No two runs share dataset and label noise:\nno pair of models to compare.")
        return save(fig, out)
    stages = list(dict.fromkeys(coverage.stage.astype(str)))
    datasets = sorted(pairs_all.dataset.unique())
    palette = dict(zip(datasets, sns.color_palette("deep", len(datasets)), strict=True))
    keys = sorted(
        {(r.dataset, r.run_a, r.run_b) for r in pairs_all.itertuples()},
        key=lambda t: (run_key(t[1]), run_key(t[2])),
    )
    per_row = max(1.7, 0.17 * len(keys) + 0.7)
    fig, axes = plt.subplots(
        len(stages),
        3,
        figsize=(DOUBLE, _rows_height(len(stages), per_row, 0.45)),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": [1.35, 1, 1]},
    )
    for row, stage in enumerate(stages):
        at = pairs_all[pairs_all.stage.astype(str) == stage]
        ax = axes[row, 0]
        ys = np.arange(len(keys))
        for y, (dataset, a, b) in zip(ys, keys, strict=True):
            pair = at[(at.run_a == a) & (at.run_b == b)]
            if pair.empty:
                continue
            value = float(pair.coverage.mean())
            random = float(pair.random_expected.mean())
            ax.barh(y, value, color=palette[dataset], height=0.7)
            ax.plot([random], [y], marker="|", color="black", markersize=9, linestyle="")
            if (stage, a, b) in matched and np.isfinite(matched[(stage, a, b)]):
                ax.plot(
                    [matched[(stage, a, b)]],
                    [y],
                    marker="|",
                    color=POSITIVE,
                    markersize=9,
                    linestyle="",
                )
        ax.set_yticks(ys, [_pair_label(a, b) for _, a, b in keys])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.02)
        ax.set_xlabel(f"coverage |Ωa∩Ωb| / |Ωa|  (τ₁ = {tau:g})")
        ax.set_title(f"{stage}: model a → model b", loc="left")
        pairs = orders[(orders.stage.astype(str) == stage) & (orders.run_a != orders.run_b)]
        ax = axes[row, 1]
        for dataset, part in pairs.groupby("dataset"):
            mean = part.groupby("order")[["coverage", "random_expected"]].mean()
            colour = palette.get(dataset, "0.3")
            ax.plot(mean.index, mean.coverage, marker="o", markersize=3, color=colour)
            ax.plot(mean.index, mean.random_expected, linestyle=":", color=colour)
        ax.set_ylim(0, 1.02)
        _order_ticks(ax, pairs.order if len(pairs) else [1])
        ax.set_xlabel("order k")
        ax.set_ylabel("coverage at order k")
        ax.set_title(f"{stage}: per order", loc="left")
        top = topk[(topk.stage.astype(str) == stage) & (topk.run_a != topk.run_b)]
        ax = axes[row, 2]
        for dataset, part in top.groupby("dataset"):
            colour = palette.get(dataset, "0.3")
            for op, style in (("and", "-"), ("or", "--")):
                curve = part[part.op == op].groupby("r")[["overlap", "random_expected"]].mean()
                ax.plot(
                    curve.index,
                    curve.overlap,
                    linestyle=style,
                    marker="o",
                    markersize=2.5,
                    color=colour,
                )
                ax.plot(curve.index, curve.random_expected, linestyle=":", color=colour)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(r"$r$   (top $K = r\cdot 2^n$)")
        ax.set_ylabel("top-K overlap")
        ax.set_title(f"{stage}: top-K", loc="left")
    handles = [Patch(color=palette[d], label=d) for d in datasets] + [
        Line2D(
            [],
            [],
            color="black",
            marker="|",
            markersize=9,
            linestyle="",
            label="random-set expectation",
        ),
        *(
            [
                Line2D(
                    [],
                    [],
                    color=POSITIVE,
                    marker="|",
                    markersize=9,
                    linestyle="",
                    label="same order profile (scorecard's baseline)",
                )
            ]
            if matched
            else []
        ),
        Line2D([], [], color="0.3", linestyle=":", label="random sets"),
        Line2D([], [], color="0.3", linestyle="-", label="AND"),
        Line2D([], [], color="0.3", linestyle="--", label="OR"),
    ]
    _legend(fig, handles, ncol=min(len(handles), 5))
    sns.despine(fig)
    return save(fig, out)


def _sigma2_bounds(bounds) -> tuple[float, float]:
    if bounds is not None:
        return float(bounds[0]), float(bounds[1])
    try:
        from harsanyi.theory import DEFAULT_SIGMA2_GRID

        return float(np.min(DEFAULT_SIGMA2_GRID)), float(np.max(DEFAULT_SIGMA2_GRID))
    except ImportError:  # pragma: no cover - the theory module moved
        return 1e-6, 1e2


def at_bound(sigma2, bounds) -> np.ndarray:
    """Which fitted σ² lie on the fit's search bounds (a fit that hit a bound, not a value)."""
    low, high = bounds
    values = np.asarray(sigma2, dtype=float)
    return (values <= low * (1 + 1e-6)) | (values >= high * (1 - 1e-6))


def theory_figure(
    orders: pd.DataFrame,
    fit: pd.DataFrame,
    shown: dict[str, list[int]],
    out: str | Path,
    *,
    sigma2_bounds: tuple[float, float] | None = None,
) -> list[Path]:
    """Rows = runs (`run_order`).  First column: measured distribution at the first checkpoint
    vs the spindle prediction; then measured (bars) vs the fitted phase-2 theory (line) at the
    selected later checkpoints; last column: the fitted σ² over training, fits that hit the
    search bounds (`sigma2_bounds`, default the grid of theory.fit_sigma2) marked hollow."""
    _theme()
    bounds = _sigma2_bounds(sigma2_bounds)
    runs = run_order(shown)
    later = {
        run: [e for e in shown[run] if e != orders[orders.run == run].epoch.min()] for run in runs
    }
    columns = max(len(v) for v in later.values()) + 2
    fig, axes = plt.subplots(
        len(runs),
        columns,
        figsize=(DOUBLE, _rows_height(len(runs), 1.45, 0.45)),
        squeeze=False,
        layout="constrained",
        gridspec_kw={"width_ratios": [1] * (columns - 1) + [1.2]},
    )
    share_y = axes[0, 0]
    for row, run in enumerate(runs):
        data = orders[orders.run == run]
        runfit = fit[fit.run == run].sort_values("epoch")
        first = data[data.epoch == data.epoch.min()]
        ax = axes[row, 0]
        ax.bar(first.order, first.measured, color="0.65", width=0.8)
        ax.plot(first.order, first.spindle, color=POSITIVE, marker="o", markersize=2.5)
        ax.set_title(f"epoch {int(first.epoch.min())}: spindle")
        ax.set_ylabel(f"{_run_label(run, lines=2)}\nshare of strength")
        for col, epoch in enumerate(later[run], start=1):
            ax = axes[row, col]
            at = data[data.epoch == epoch]
            sigma2 = runfit[runfit.epoch == epoch].sigma2
            hit = bool(len(sigma2) and at_bound(sigma2.iloc[0], bounds))
            ax.bar(at.order, at.measured, color="0.65", width=0.8)
            ax.plot(
                at.order,
                at.predicted,
                color=NEGATIVE,
                marker="o",
                markersize=2.5,
                markerfacecolor="white" if hit else NEGATIVE,
                linestyle="--" if hit else "-",
            )
            if not len(sigma2) or not np.isfinite(sigma2.iloc[0]):
                label = "no fit"
            elif hit:
                label = "σ² at bound"
            else:
                label = f"σ² = {sigma2.iloc[0]:.1g}"
            ax.set_title(f"epoch {epoch}: {label}")
            ax.tick_params(labelleft=False)
        for col in range(len(later[run]) + 1, columns - 1):
            axes[row, col].set_visible(False)
        for col in range(columns - 1):
            ax = axes[row, col]
            if ax is not share_y:
                ax.sharey(share_y)
            _order_ticks(ax, data.order)
            ax.set_xlabel("order k")
        ax = axes[row, -1]
        hit = at_bound(runfit.sigma2, bounds)
        inner = runfit.sigma2.where(~hit)
        ax.plot(runfit.epoch, inner, marker="o", markersize=3, color=NEGATIVE)
        ax.plot(
            runfit.epoch[hit],
            runfit.sigma2[hit].clip(bounds[0], bounds[1]),
            marker="o",
            markersize=4,
            linestyle="",
            markerfacecolor="white",
            markeredgecolor=NEGATIVE,
        )
        for bound in bounds:
            ax.axhline(bound, color="0.75", linewidth=0.6, linestyle=":")
        ax.set_yscale("log")
        ax.set_ylim(bounds[0] / 5, bounds[1] * 5)
        ax.set_yticks([bounds[0], 1e-4, 1e-2, 1, bounds[1]][:: 2 if bounds == (1e-6, 1e2) else 1])
        ax.set_title("fitted σ²")
        ax.set_xlabel("epoch")
        ax.set_ylabel("σ² (log)")
    share_y.set_ylim(0, None)
    _legend(
        fig,
        [
            Patch(color="0.65", label="measured"),
            Line2D([], [], color=POSITIVE, marker="o", markersize=2.5, label="spindle theory"),
            Line2D([], [], color=NEGATIVE, marker="o", markersize=2.5, label="phase-2 theory"),
            Line2D(
                [],
                [],
                color=NEGATIVE,
                marker="o",
                markersize=4,
                markerfacecolor="white",
                linestyle="",
                label=f"fit at bound ({bounds[0]:.0e} or {bounds[1]:.0e})",
            ),
        ],
    )
    sns.despine(fig)
    return save(fig, out)


def theory_ratio_figure(ratio: pd.DataFrame, out: str | Path) -> list[Path]:
    """Pure theory: r(k), low- to high-order strength of ŵ, per split order k (one panel per
    n, one line per σ²)."""
    _theme()
    ns = sorted(ratio.n.unique())
    fig, axes = _panels(len(ns), len(ns), 2.0, sharey=True)
    sigma2s = sorted(ratio.sigma2.unique())
    palette = sns.color_palette("rocket_r", len(sigma2s))
    for ax, n in zip(axes.ravel(), ns, strict=False):
        for colour, sigma2 in zip(palette, sigma2s, strict=True):
            at = ratio[(ratio.n == n) & (ratio.sigma2 == sigma2)].sort_values("split_order")
            ax.plot(at.split_order, at.ratio, color=colour, marker="o", markersize=2.5)
        ax.set_yscale("log")
        ax.set_xlabel("split order k")
        ax.set_title(f"n = {n} players")
        ax.set_xticks(range(1, int(n), 2 if n > 6 else 1))
    axes[0, 0].set_ylabel("r(k) = strength of orders ≤ k\n/ strength of orders > k")
    _legend(
        fig,
        [
            Line2D([], [], color=c, marker="o", markersize=2.5, label=f"σ² = {s:.0e}")
            for c, s in zip(palette, sigma2s, strict=True)
        ],
        ncol=min(len(sigma2s), 7),
    )
    sns.despine(fig)
    return save(fig, out)


def shapley_figure(values: pd.DataFrame, summary: pd.DataFrame, out: str | Path) -> list[Path]:
    """Per run (`run_order`): Shapley values from the interactions (y) against the exact
    Shapley values (x) of the decomposed game v + q (filled) and of v itself (hollow), titled
    with the largest difference to each."""
    _theme()
    runs = run_order(values.run.unique())
    fig, axes = _panels(len(runs), 3, 2.0)
    exact = "phi_exact" if "phi_exact" in values else "phi_v"
    for ax, run in zip(axes.ravel(), runs, strict=False):
        data = values[values.run == run]
        if "phi_v" in data and exact != "phi_v":
            ax.scatter(
                data.phi_v,
                data.phi_interactions,
                s=9,
                facecolors="none",
                edgecolors="0.55",
                linewidths=0.5,
            )
        ax.scatter(data[exact], data.phi_interactions, s=3, color=NEGATIVE)
        low = float(min(data[exact].min(), data.phi_interactions.min()))
        high = float(max(data[exact].max(), data.phi_interactions.max()))
        ax.plot([low, high], [low, high], color="0.3", linewidth=0.6, linestyle=":")
        check = summary[summary.run == run]
        text = ""
        if len(check):
            text = f"\nmax|Δ| to v+q {check.max_abs_diff.iloc[0]:.0e}"
            if "max_abs_diff_v" in check:
                text += f", to v {check.max_abs_diff_v.iloc[0]:.1e}"
        ax.set_title(f"{_run_label(run)}{text}")
        ax.set_xlabel("exact Shapley value φᵢ")
        ax.set_ylabel("φᵢ from interactions")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    _legend(
        fig,
        [
            Line2D(
                [],
                [],
                color=NEGATIVE,
                marker="o",
                markersize=3,
                linestyle="",
                label="exact, of v + q (the decomposed game)",
            ),
            Line2D(
                [],
                [],
                color="0.55",
                marker="o",
                markersize=3.5,
                markerfacecolor="none",
                linestyle="",
                label="exact, of v (without the noise q)",
            ),
            Line2D([], [], color="0.3", linestyle=":", label="y = x"),
        ],
    )
    sns.despine(fig)
    return save(fig, out)


def scorecard_figure(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """The scorecard as a table grouped by claim (a shaded header row per claim), one row per
    run in `run_order` with what was measured (effect [interval] against the null bound), the
    reason where the verdict is "inconclusive", and the verdict (cell coloured by verdict).
    The rules are in the caption.  Long texts wrap; a study with many runs makes a taller
    figure (a supplementary table)."""
    _theme()
    widths = {"run": 1.9, "measured": 4.45, "verdict": 0.75}  # inches, 7.1 in all
    wrap = int(widths["measured"] * 17)
    order = {run: i for i, run in enumerate(run_order(table.run.unique()))}
    table = table.assign(_order=table.run.map(order))
    claims = list(dict.fromkeys(table.claim)) if len(table) else []
    line = FONT * 1.3 / 72  # inches per text line
    pad = 0.045
    rows = []  # (kind, cells, lines)
    for claim in claims:
        rows.append(("claim", {"run": str(claim)}, 1, ""))
        part = table[table.claim == claim].sort_values("_order", kind="stable")
        for r in part.itertuples():
            text, verdict = str(r.measured), str(r.verdict)
            reason = getattr(r, "reason", None)
            if verdict == "inconclusive" and isinstance(reason, str) and reason not in text:
                text = f"{text}: {reason}"
            low_end = getattr(r, "low_end", None)
            if isinstance(low_end, str) and low_end:
                text = f"canonical {text}; low end {low_end}; high end {r.high_end}"
            measured = textwrap.fill(text, wrap)
            shown = textwrap.fill(verdict, 13)
            cells = {"run": _run_label(r.run), "measured": measured, "verdict": shown}
            lines = max(measured.count("\n"), shown.count("\n")) + 1
            rows.append(("run", cells, lines, verdict))
    top = 0.5
    height = top + sum(lines * line + pad for _, _, lines, _ in rows) + 0.08
    fig = plt.figure(figsize=(DOUBLE, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(0, DOUBLE)
    ax.set_ylim(height, 0)
    x = {"run": 0.05}
    x["measured"] = x["run"] + widths["run"]
    x["verdict"] = x["measured"] + widths["measured"]
    ax.text(
        0.05,
        0.06,
        "Scorecard: each claim as an effect [95 % interval] against its null control",
        weight="bold",
        va="top",
        fontsize=FONT + 1,
    )
    y = 0.3
    for name in widths:
        ax.text(x[name] + 0.03, y, name, weight="bold", va="top")
    y = top
    ax.plot([0.05, DOUBLE - 0.05], [y - 0.03] * 2, color="black", linewidth=0.6)
    for kind, cells, lines, verdict in rows:
        step = lines * line + pad
        if kind == "claim":
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (0.05, y - 0.025), DOUBLE - 0.1, step, color="0.92", linewidth=0
                )
            )
            ax.text(x["run"] + 0.03, y, cells["run"], va="top", weight="bold")
        else:
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (x["verdict"], y - 0.02),
                    widths["verdict"] - 0.1,
                    step - 0.01,
                    color=VERDICT_COLOURS.get(verdict, "white"),
                    linewidth=0,
                )
            )
            for name, text in cells.items():
                ax.text(x[name] + 0.03, y, text, va="top", linespacing=1.1)
        y += step
    return save(fig, out)


ALLOCATIONS = {"shapley": "Shapley allocation", "occlusion": "occlusion allocation"}
METHODS = {
    "saliency": "saliency",
    "input_x_gradient": "input × gradient",
    "integrated_gradients": "integrated gradients",
    "occlusion": "feature ablation",
}


def attributions_figure(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """Share of each captum attribution explained by each allocation of the interactions;
    one panel per run with input-space players (`run_order`), methods as rows."""
    _theme()
    # runs without input-space players (text) have no method or allocation: "n/a" or empty
    kept = table.method.notna() & table.allocation.notna() & (table.method != "n/a")
    data = table[kept].copy()
    runs = run_order(data.run.unique())
    if not runs:
        fig, ax = plt.subplots(figsize=(SINGLE, 0.9), layout="constrained")
        _off(ax, "no run with input-space players")
        return save(fig, out)
    methods = [m for m in METHODS if m in set(data.method)] + sorted(
        set(data.method) - set(METHODS)
    )
    allocations = [a for a in ALLOCATIONS if a in set(data.allocation)] + sorted(
        set(data.allocation) - set(ALLOCATIONS)
    )
    colours = dict(zip(allocations, [POSITIVE, NEGATIVE, "0.5", "0.3"], strict=False))
    fig, axes = _panels(len(runs), 3, 0.25 * len(methods) * len(allocations) / 2 + 0.9, sharey=True)
    low = min(0.0, float(data.explained_share.min()))
    height = 0.8 / max(1, len(allocations))
    for ax, run in zip(axes.ravel(), runs, strict=False):
        part = data[data.run == run]
        for i, allocation in enumerate(allocations):
            at = part[part.allocation == allocation].set_index("method")
            ys = np.arange(len(methods)) + (i - (len(allocations) - 1) / 2) * height
            ax.barh(
                ys,
                [at.explained_share.get(m, np.nan) for m in methods],
                height=height,
                color=colours[allocation],
            )
        ax.axvline(0, color="black", linewidth=0.5)
        ax.set_yticks(np.arange(len(methods)), [METHODS.get(m, m) for m in methods])
        ax.set_xlim(low - 0.02, 1.02)
        ax.set_xlabel("explained share (R²)")
        ax.set_title(_run_label(run))
    for ax in axes[:, 0]:
        ax.set_ylabel("captum attribution")
    axes[0, 0].invert_yaxis()
    _legend(
        fig,
        [Patch(color=colours[a], label=ALLOCATIONS.get(a, a)) for a in allocations],
    )
    sns.despine(fig)
    return save(fig, out)


# --------------------------------------------------------------------------- sensitivity


def _perturbation_label(name: str) -> str:
    kind, _, size = str(name).partition(":")
    if kind == "gauss":
        return f"Gaussian noise σ = {size}"
    if kind == "pgd":
        return f"PGD, L∞ ε = {size}"
    return str(name)


CHECKPOINT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def _checkpoint_colours(count: int) -> list:
    """Light (early) to dark (late), one colour per measured checkpoint: the sequential map
    "mako" from CIE lightness about 80 down to 15, so that four checkpoints differ by about
    20 in lightness each (crest, before, left them about 11 apart and near one hue)."""
    if count <= 1:
        return ["0.1"]
    cmap = sns.color_palette("mako_r", as_cmap=True)
    return [tuple(cmap(x)[:3]) for x in np.linspace(0.15, 0.85, count)]


def _checkpoint_marker(position: int) -> str:
    return CHECKPOINT_MARKERS[position % len(CHECKPOINT_MARKERS)]


def sensitivity_figure(summary: pd.DataFrame, trend: pd.DataFrame, out: str | Path) -> list[Path]:
    """Relative change of the interactions per order under each perturbation; one panel per
    run (`run_order`) and perturbation, one line per measured checkpoint (light: early, dark:
    late) with its 95 % bootstrap band; log scale.  Titles: the trend (mean Spearman ρ between
    order and change) at the last checkpoint and its permutation p-value."""
    _theme()
    runs = run_order(summary.run.unique())
    perturbations = list(dict.fromkeys(summary.perturbation))
    if not runs:
        fig, ax = plt.subplots(figsize=(SINGLE, 0.9), layout="constrained")
        _off(ax, "no sensitivity measured in this study")
        return save(fig, out)
    keys = [(run, name) for run in runs for name in perturbations]
    fig, axes = _panels(
        len(keys), 3 if len(perturbations) != 2 else 2, 1.7, sharex=True, sharey="row"
    )
    positions = max(summary.groupby("run").epoch.nunique())
    colours = _checkpoint_colours(positions)
    for ax, (run, name) in zip(axes.ravel(), keys, strict=False):
        data = summary[(summary.run == run) & (summary.perturbation == name)]
        epochs = sorted(data.epoch.unique())
        for position, epoch in enumerate(epochs):
            at = data[data.epoch == epoch].sort_values("order")
            at = at[np.isfinite(at["mean"]) & (at["mean"] > 0)]
            colour = colours[min(position, len(colours) - 1)]
            marker = _checkpoint_marker(position)
            ax.plot(at.order, at["mean"], color=colour, marker=marker, markersize=2.5)
            ax.fill_between(
                at.order, at.low.clip(lower=1e-12), at.high, color=colour, alpha=0.15, linewidth=0
            )
        ax.set_yscale("log")
        _order_ticks(ax, data.order)
        last = trend[(trend.run == run) & (trend.perturbation == name)]
        last = last[last.epoch == last.epoch.max()]
        result = ""
        if len(last) and np.isfinite(last.rho.iloc[0]):
            result = f"\nρ = {last.rho.iloc[0]:.2f}, p = {last.p_value.iloc[0]:.3f}"
        ax.set_title(f"{_run_label(run)}\n{_perturbation_label(name)}{result}")
    for ax in axes[-1, :]:
        ax.set_xlabel("order k")
    for ax in axes[:, 0]:
        ax.set_ylabel("relative change\nΣ|ΔI| / Σ|I| at order k")
    shared = summary.groupby("run").epoch.apply(lambda e: tuple(sorted(e.unique())))
    if shared.nunique() == 1:
        labels = [f"epoch {e}" for e in shared.iloc[0]]
    else:
        labels = [f"checkpoint {i + 1}" for i in range(positions)]
    handles = [
        Line2D(
            [],
            [],
            color=colours[min(i, len(colours) - 1)],
            marker=_checkpoint_marker(i),
            markersize=2.5,
            label=t,
        )
        for i, t in enumerate(labels)
    ]
    _legend(fig, handles, ncol=min(len(handles), 6))
    sns.despine(fig)
    return save(fig, out)


# --------------------------------------------------------------------------- joint extraction

JOINT_STYLES = {
    "joint": {"color": "#17202a", "linestyle": "-", "marker": "o"},
    "separate": {"color": "#7fb3d5", "linestyle": "--", "marker": "s"},
}


def group_key(label: str) -> tuple:
    """The `run_order` of a group of runs that differ only in their architecture, from its
    label "<dataset> s<seed>[ noise <p>]: <arch> + <arch> …" (`analyses.joint`): dataset,
    first architecture, seed, label noise."""
    head, _, archs = str(label).partition(": ")
    words = head.split()
    seed = next((int(w[1:]) for w in words if re.fullmatch(r"s\d+", w)), -1)
    noise = 0.0
    if "noise" in words and words.index("noise") + 1 < len(words):
        try:
            noise = float(words[words.index("noise") + 1])
        except ValueError:
            pass
    dataset = words[0] if words else ""
    return (dataset, archs.split(" + ")[0], seed, noise, str(label))


def joint_figure(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """Shared salient strength of models that differ only in their architecture: per group
    (columns, in `run_order`: dataset, architecture, seed, label noise, `group_key`), the
    shared fraction of the salient strength over training (top) and per order at the last
    checkpoint (bottom), joint extraction (solid) against separately extracted decompositions
    (dashed), averaged over the group's models."""
    _theme()
    groups = sorted(dict.fromkeys(table.group_label), key=group_key)
    if not groups:
        fig, ax = plt.subplots(figsize=(SINGLE, 0.9), layout="constrained")
        _off(ax, "No two runs differ only in their architecture:\nno group to extract jointly.")
        return save(fig, out)
    columns = min(3, len(groups))
    blocks = -(-len(groups) // columns)
    fig, axes = plt.subplots(
        2 * blocks,
        columns,
        figsize=(DOUBLE, _rows_height(2 * blocks, 1.6, 0.45)),
        squeeze=False,
        layout="constrained",
        sharey="row",
    )
    for index in range(len(groups), blocks * columns):
        axes[2 * (index // columns), index % columns].set_visible(False)
        axes[2 * (index // columns) + 1, index % columns].set_visible(False)
    for index, group in enumerate(groups):
        top = axes[2 * (index // columns), index % columns]
        bottom = axes[2 * (index // columns) + 1, index % columns]
        data = table[table.group_label == group]
        for method, style in JOINT_STYLES.items():
            part = data[data.method == method]
            if part.empty:
                continue
            totals = part.groupby(["epoch", "model"])[["shared", "specific"]].sum()
            fraction = (totals.shared / (totals.shared + totals.specific)).groupby("epoch").mean()
            top.plot(fraction.index, fraction.values, markersize=3, **style)
            last = part[part.epoch == part.epoch.max()]
            per_order = last.groupby("order").shared_fraction.mean()
            bottom.plot(per_order.index, per_order.values, markersize=3, **style)
        top.set_ylim(-0.02, 1.02)
        bottom.set_ylim(-0.02, 1.02)
        top.set_title(group.replace(": ", ":\n", 1))  # "<dataset seed noise>:\n<models>"
        top.set_xlabel("epoch")
        bottom.set_xlabel(f"order k (epoch {int(data.epoch.max())})")
        _order_ticks(bottom, data.order)
        if index % columns == 0:
            top.set_ylabel("shared fraction of\nsalient strength")
            bottom.set_ylabel("shared fraction\nat order k")
    handles = [
        Line2D([], [], markersize=3, label=f"{method} extraction", **style)
        for method, style in JOINT_STYLES.items()
    ]
    _legend(fig, handles)
    sns.despine(fig)
    return save(fig, out)


# --------------------------------------------------------------------------- one sample's picture

from collections.abc import Mapping  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

if TYPE_CHECKING:
    from harsanyi.pictures import DrawnInteraction, SampleInput
    from harsanyi.players import PatchGrid
    from harsanyi.store import InteractionResults

PICTURE_LINES = {"AND": "-", "OR": "--"}  # outline of a coalition's patches (image players)
PICTURE_HATCH = {"AND": "", "OR": "////"}  # bars (tabular and text players)


def _sign_colour(value: float) -> str:
    return POSITIVE if value >= 0 else NEGATIVE


def _cell_box(players: PatchGrid, cell: tuple[int, int]) -> tuple[float, float, float, float]:
    """(x, y, width, height) of a grid cell in image pixel coordinates (`PatchGrid`)."""
    (height, width), (rows, cols) = players.image_size, players.grid
    r, c = cell
    top, bottom = r * height // rows, (r + 1) * height // rows
    left, right = c * width // cols, (c + 1) * width // cols
    return left - 0.5, top - 0.5, right - left, bottom - top


def _picture_image(ax: plt.Axes, data: SampleInput) -> None:
    """The sample's image in grey (or colour), or a blank of its size where not loaded."""
    height, width = data.players.image_size
    image = data.image if data.image is not None else np.full((height, width), 0.93)
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_axis_off()  # a picture, no axes: a thin frame instead
    ax.add_patch(
        matplotlib.patches.Rectangle(
            (0, 0),
            1,
            1,
            transform=ax.transAxes,
            fill=False,
            edgecolor="0.6",
            linewidth=0.4,
            gid="frame",
        )
    )


def _outline(
    ax: plt.Axes,
    data: SampleInput,
    coalition: tuple[int, ...],
    value: float,
    op: str,
    peak: float,
) -> None:
    """The patches of `coalition`, outlined (and lightly filled) in the colour of the sign,
    solid for AND and dashed for OR, the line width growing with |I| / `peak`."""
    colour = _sign_colour(value)
    linewidth = 0.6 + 2.2 * abs(value) / peak if peak > 0 else 0.6
    for player in coalition:
        x, y, w, h = _cell_box(data.players, data.players.cells[player])
        for fill, style in ((True, {"alpha": 0.22, "linewidth": 0}), (False, {})):
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (x, y),
                    w,
                    h,
                    fill=fill,
                    facecolor=colour if fill else "none",
                    edgecolor=colour,
                    linestyle=PICTURE_LINES[op],
                    **({"linewidth": linewidth} | style),
                )
            )


def _picture_heading(
    results: InteractionResults, sample: int, data: SampleInput, title: str | None
) -> str:
    model = results.meta.get("model") or {}
    split = str(np.asarray(results.split).astype(str)[sample])
    head = (
        f"{title or _run_label(str(model.get('run', '')))}: row {sample}, sample "
        f"{int(results.sample_ids[sample])} ({split}, label {int(results.labels[sample])})"
    )
    if data.text:
        head += "\n" + data.text
    if data.note:
        what = "the player grid only" if data.kind == "image" else "players by position"
        head += f"\n{data.note}: {what}"
    return head


def _wrapped(heading: str, width: float) -> str:
    """`heading` wrapped to a figure `width` inches wide (about 16 characters an inch)."""
    return "\n".join(textwrap.fill(line, int(width * 16)) for line in heading.split("\n"))


def _image_picture(
    results_by_epoch: Mapping[int, InteractionResults],
    sample: int,
    drawn: list[DrawnInteraction],
    data: SampleInput,
    heading: str,
) -> plt.Figure:
    epochs = sorted(results_by_epoch)
    rows = 1 + max([sum(d.epoch == e for d in drawn) for e in epochs] + [0])
    cols = len(epochs)
    height, width = data.players.image_size
    aspect = height / width
    fig_width = min(DOUBLE, max(SINGLE, 1.45 * cols))
    panel = min(1.6, fig_width / cols)
    header = 0.55 + 0.13 * _wrapped(heading, 3.1).count("\n")  # at most this tall
    if rows * (panel * aspect + 0.3) + header > MAX_HEIGHT:
        panel = ((MAX_HEIGHT - header) / rows - 0.3) / aspect
        fig_width = max(3.1, min(fig_width, panel * cols))
    heading = _wrapped(heading, fig_width)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(fig_width, rows * (panel * aspect + 0.3) + header),
        squeeze=False,
        layout="constrained",
    )
    for col, epoch in enumerate(epochs):
        results = results_by_epoch[epoch]
        ax = axes[0, col]
        _picture_image(ax, data)
        for cell in data.players.cells:
            x, y, w, h = _cell_box(data.players, cell)
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (x, y), w, h, fill=False, edgecolor="#e67e22", linewidth=0.6
                )
            )
        v_full = float(results.v[sample, -1])
        ax.set_title(f"epoch {epoch}\nv(N) = {v_full:.2g}")
        here = [d for d in drawn if d.epoch == epoch]
        peak = max([abs(d.value) for d in here] + [0.0])
        for row in range(1, rows):
            ax = axes[row, col]
            if row > len(here):
                ax.set_axis_off()
                continue
            item = here[row - 1]
            _picture_image(ax, data)
            _outline(ax, data, item.coalition, item.value, item.op, peak)
            ax.set_title(f"{item.op} {item.value:+.2g}")
        if not here and rows > 1:
            _off(axes[1, col], "no salient\ninteraction")
    fig.suptitle(heading, fontsize=FONT + 0.5)
    _legend(
        fig,
        [
            Patch(color=POSITIVE, alpha=0.6, label="I(S) > 0"),
            Patch(color=NEGATIVE, alpha=0.6, label="I(S) < 0"),
            Line2D([], [], color="0.2", linestyle=PICTURE_LINES["AND"], label="AND"),
            Line2D([], [], color="0.2", linestyle=PICTURE_LINES["OR"], label="OR"),
            Line2D([], [], color="#e67e22", linewidth=0.6, label="players"),
        ],
        ncol=5,
        loc="outside lower center",
    )
    return fig


def _coalition_label(item: DrawnInteraction, names: list[str], width: int = 30) -> str:
    joint = " & " if item.op == "AND" else " | "
    text = f"{item.op}: " + joint.join(names[j] for j in item.coalition)
    return textwrap.fill(text, width, subsequent_indent="  ")


def _bar_picture(
    results_by_epoch: Mapping[int, InteractionResults],
    sample: int,
    drawn: list[DrawnInteraction],
    data: SampleInput,
    heading: str,
) -> plt.Figure:
    epochs = sorted(results_by_epoch)
    labels = {d: _coalition_label(d, data.names) for d in drawn}
    lines = max([sum(labels[d].count("\n") + 1 for d in drawn if d.epoch == e) for e in epochs])
    columns = 1 if len(epochs) == 1 else 2
    per_row = 0.75 + max(lines, 1) * FONT * 1.35 / 72
    fig, axes = _panels(len(epochs), columns, per_row, width=DOUBLE if columns > 1 else SINGLE)
    heading = _wrapped(heading, fig.get_figwidth())
    fig.set_figheight(fig.get_figheight() + 0.15 + 0.13 * heading.count("\n"))
    for ax, epoch in zip(axes.ravel(), epochs, strict=False):
        here = [d for d in drawn if d.epoch == epoch]
        v_full = float(results_by_epoch[epoch].v[sample, -1])
        if not here:
            _off(ax, f"epoch {epoch}: no salient interaction")
            continue
        ys = np.arange(len(here))
        for y, item in zip(ys, here, strict=True):
            ax.barh(
                y,
                item.value,
                color=_sign_colour(item.value),
                hatch=PICTURE_HATCH[item.op],
                edgecolor="white",
                linewidth=0.0,
                height=0.7,
            )
        ax.axvline(0, color="black", linewidth=0.5)
        ax.set_yticks(ys, [labels[d] for d in here])
        ax.invert_yaxis()
        ax.set_xlabel("I(S)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
        ax.set_title(f"epoch {epoch}, v(N) = {v_full:.2g}")
    fig.suptitle(heading, fontsize=FONT + 0.5)
    _legend(
        fig,
        [
            Patch(color=POSITIVE, label="I(S) > 0"),
            Patch(color=NEGATIVE, label="I(S) < 0"),
            Patch(facecolor="0.5", label="AND"),
            Patch(facecolor="0.5", hatch=PICTURE_HATCH["OR"], edgecolor="white", label="OR"),
        ],
        loc="outside lower center",
    )
    sns.despine(fig)
    return fig


def interaction_picture(
    results_by_epoch: Mapping[int, InteractionResults],
    sample: int,
    out: str | Path,
    *,
    top: int = 6,
    data: SampleInput | None = None,
    ratio: float = 0.05,
    title: str | None = None,
) -> list[DrawnInteraction]:
    """What the network learned on one sample: row `sample` of the results files of one run
    at several checkpoints (`results_by_epoch`: epoch → `InteractionResults`, one column
    each, epochs ascending; `pictures.checkpoint_series` reads and checks them), its `top`
    strongest salient interactions (|I(S)| ≥ ratio·max|I|, ∅ excluded) at each checkpoint
    drawn on the input `data` (`pictures.sample_input`).

    Image players: the first row shows the input with its players outlined and v(N); below,
    one panel per interaction (strongest first) with its coalition's patches outlined red
    (I > 0) or blue (I < 0), solid for AND and dashed for OR, the line width growing with
    |I| relative to the checkpoint's strongest.  Tabular and text players: one bar panel per
    checkpoint, each coalition named by its feature names or tokens, OR bars hatched.  Where
    `data` holds no input (None, or a `note`), the heading says so and the players alone
    are drawn.  Returns what was drawn, `pictures.DrawnInteraction` (epoch, op, coalition,
    value) per interaction; the figure is written to `out` and its PDF twin."""
    from harsanyi.pictures import drawn_interactions, sample_input

    if not results_by_epoch:
        raise ValueError("interaction_picture: no checkpoint given")
    _theme()
    first = results_by_epoch[min(results_by_epoch)]
    if data is None:
        data = sample_input(first, sample, load=False)
    drawn = drawn_interactions(results_by_epoch, sample, top=top, ratio=ratio)
    heading = _picture_heading(first, sample, data, title)
    draw = _image_picture if data.kind == "image" else _bar_picture
    fig = draw(results_by_epoch, sample, drawn, data, heading)
    save(fig, out)
    return drawn
