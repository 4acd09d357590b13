"""Figures agree with the scorecard: a figure that shows a claim shows the scorecard's own
statistic and verdict, or says that it shows something else; marks that fall together stay
visible; checkpoints are told apart; every figure keeps `run_order`."""

from __future__ import annotations

import json
import logging

import matplotlib
import numpy as np
import pandas as pd
import pytest
from test_figures import (
    figure_problems,
    joint_inputs,
    similarity_inputs,
    two_phase_inputs,
)
from test_verdicts import ood_results, results_of

from harsanyi import plots
from harsanyi.analyses import ood, scorecard
from harsanyi.io import write_json, write_tsv


@pytest.fixture
def figures(monkeypatch):
    """(figure, problems) of every figure handed to plots.save, kept open."""
    kept = []
    original = plots.save

    def save(fig, out):
        kept.append((fig, figure_problems(fig)))
        return original(fig, out)

    monkeypatch.setattr(plots, "save", save)
    yield kept
    for fig, _ in kept:
        matplotlib.pyplot.close(fig)


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


# --------------------------------------------------------------------------- OOD


def test_ood_figure_titles_the_scorecards_verdict_not_another_statistic(tmp_path, figures):
    """Flipped samples with higher orders from initialisation on and no change in training:
    the descriptive high-order share at the end says "yes", the scorecard's difference in
    differences says "no"; the figure's row title must say the scorecard's "no"."""
    rng = np.random.default_rng(1)
    run = "digits-lenet-s0-noise0.2-aaaaaaaaaaaa"
    first = ood_results(rng, 0, 3.0)
    first = results_of(first.I_and, first.labels, first.split, 0, run=run)
    last = results_of(first.I_and * 1.0, first.labels, first.split, 5, run=run)
    strength, summary = ood.ood_tables([first, last], n_boot=200)
    descriptive = ood.ood_verdict(summary)
    result, extra = ood.ood_claim(first, last, n_boot=200)
    entry = scorecard._entry("ood_high_order", result, extra, scorecard._interval_text(result))
    row = scorecard._row(run, entry)  # the row scorecard.tsv holds
    assert descriptive["verdict"] == "yes" and row["verdict"] == "no"  # they disagree here

    write_tsv(strength, tmp_path / "strength.tsv")
    write_json(descriptive, tmp_path / "verdict.json")
    write_json({"run": run, "claims": [entry]}, tmp_path / "claims.json")
    ood.study_step(
        tables=[tmp_path / "strength.tsv"],
        verdicts=[tmp_path / "verdict.json"],
        table=tmp_path / "ood_strength.tsv",
        verdict_table=tmp_path / "ood_verdicts.tsv",
        figure=tmp_path / "ood.png",
        claims=[tmp_path / "claims.json"],
    )
    fig, problems = figures[-1]
    assert not problems, problems
    titles = [sub._suptitle.get_text() for sub in fig.subfigs if sub._suptitle is not None]
    (title,) = [t for t in titles if t.startswith("digits lenet s0 noise 0.2")]
    assert "scorecard verdict: no" in title
    assert f"{row['effect']:.2f} [{row['low']:.2f}, {row['high']:.2f}]" in title
    assert f"vs bound {row['bound']:.2f}" in title
    assert not any("yes" in text for text in _texts(fig))
    table = pd.read_csv(tmp_path / "ood_verdicts.tsv", sep="\t")
    assert table.scorecard_verdict.tolist() == [row["verdict"]]
    assert table.scorecard_effect.tolist() == pytest.approx([row["effect"]])


def test_ood_figure_without_the_scorecard_says_it_gives_no_verdict(tmp_path, figures):
    rng = np.random.default_rng(2)
    run = "digits-lenet-s0-noise0.2-aaaaaaaaaaaa"
    first = ood_results(rng, 0, 3.0)
    first = results_of(first.I_and, first.labels, first.split, 0, run=run)
    strength, summary = ood.ood_tables([first], n_boot=50)
    plots.ood_figure(strength, summary, tmp_path / "ood.png")
    fig, problems = figures[-1]
    assert not problems, problems
    texts = _texts(fig)
    assert any("scorecard verdict: not given here" in t for t in texts)
    assert not any(t.endswith(": yes") or t.endswith(": no") for t in texts)


def test_scorecard_claims_reads_the_ood_entry_of_claims_json(tmp_path):
    rows = []
    for i, verdict in enumerate(("yes", "n/a")):
        entry = {"key": "ood_high_order", "verdict": verdict, "effect": 0.5 if i == 0 else None}
        other = {"key": "phase2_rise", "verdict": "no", "effect": 9.0}
        path = tmp_path / f"claims{i}.json"
        path.write_text(json.dumps({"run": f"r{i}", "claims": [other, entry]}))
        rows.append(path)
    table = ood.scorecard_claims(rows)
    assert table.run.tolist() == ["r0", "r1"]
    assert table.verdict.tolist() == ["yes", "n/a"]
    assert table.effect.iloc[0] == 0.5 and pd.isna(table.effect.iloc[1])


# --------------------------------------------------------------------------- similarity


def test_similarity_figure_draws_the_scorecards_baseline_not_twice_random(tmp_path, figures):
    coverage, orders, topk = similarity_inputs(np.random.default_rng(0))
    pairs = coverage[coverage.run_a != coverage.run_b][["stage", "run_a", "run_b"]]
    samples = pairs.drop_duplicates().assign(random_matched=0.37)
    plots.similarity_figure(coverage, orders, topk, tmp_path / "s.png", samples=samples)
    fig, problems = figures[-1]
    assert not problems, problems
    texts = _texts(fig)
    assert not any("2×" in t for t in texts)
    assert any("scorecard's baseline" in t for t in texts)
    red = [
        line.get_xdata()[0]
        for ax in fig.axes
        for line in ax.lines
        if line.get_marker() == "|" and line.get_color() == plots.POSITIVE
    ]
    assert red and np.allclose(red, 0.37)  # not 2 × random_expected (0.4)


# --------------------------------------------------------------------------- two phases


def test_phase2_start_and_gap_onset_both_visible_on_the_same_epoch(tmp_path, figures):
    strength, metrics, shown, points = two_phase_inputs(np.random.default_rng(0))
    points = {run: {"phase2_start": 6, "gap_onset": 6.0} for run in points}
    plots.two_phase_figure(strength, metrics, shown, points, tmp_path / "tp.png")
    fig, problems = figures[-1]
    assert not problems, problems
    loss = [ax for ax in fig.axes if ax.get_title() == "loss"]
    assert len(loss) == len(points)
    for ax in loss:
        marks = {line.get_gid(): line for line in ax.lines if line.get_gid()}
        start, onset = marks["phase2_start"], marks["gap_onset"]
        assert start.get_xdata()[0] == onset.get_xdata()[0] == 6
        # same epoch, different ends of the panel and different markers: both seen
        assert start.get_ydata()[0] != onset.get_ydata()[0]
        assert start.get_marker() != onset.get_marker()
    legends = fig.findobj(matplotlib.legend.Legend)
    legend = {
        t.get_text(): h for lg in legends for t, h in zip(lg.texts, lg.legend_handles, strict=True)
    }
    assert legend["phase-2 start"].get_marker() != legend["loss-gap onset"].get_marker()


# --------------------------------------------------------------------------- sensitivity


def _lightness(rgb) -> float:
    """CIE L* of an sRGB colour."""
    c = np.asarray(matplotlib.colors.to_rgb(rgb), dtype=float)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = float(linear @ [0.2126, 0.7152, 0.0722])
    return 116 * np.cbrt(y) - 16 if y > 0.008856 else 903.3 * y


def test_four_checkpoints_get_clearly_different_shades_and_markers():
    colours = plots._checkpoint_colours(4)
    lightness = [_lightness(c) for c in colours]
    steps = -np.diff(lightness)
    assert (steps >= 15).all(), lightness  # light (early) to dark (late), well apart
    markers = {plots._checkpoint_marker(i) for i in range(4)}
    assert len(markers) == 4


# --------------------------------------------------------------------------- joint


def test_joint_groups_are_in_run_order(tmp_path, figures):
    table = joint_inputs(np.random.default_rng(0))
    labels = {
        "digits s0: lenet + mlp": "digits s10: lenet + mlp",
        "digits s0 noise 0.15: lenet + mlp": "digits s2 noise 0.15: lenet + mlp",
    }
    extra = table[table.group_label == "digits s0: lenet + mlp"].assign(
        group_label="digits s2: lenet + mlp"
    )
    table = pd.concat([table.replace({"group_label": labels}), extra], ignore_index=True)
    plots.joint_figure(table, tmp_path / "joint.png")
    fig, _ = figures[-1]
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert titles == [  # each title breaks after the group's runs, before its models
        "digits s2:\nlenet + mlp",
        "digits s2 noise 0.15:\nlenet + mlp",
        "digits s10:\nlenet + mlp",
    ]


# --------------------------------------------------------------------------- logging


def test_saving_a_pdf_logs_nothing_from_fonttools(tmp_path, caplog):
    logging.getLogger("fontTools").setLevel(logging.NOTSET)  # as in a fresh workflow job
    caplog.set_level(logging.INFO)
    fig, ax = matplotlib.pyplot.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    ax.set_title("a title with some glyphs")
    written = plots.save(fig, tmp_path / "f.png")
    assert [p.suffix for p in written] == [".png", ".pdf"]
    assert not [r for r in caplog.records if r.name.startswith("fontTools")]
