"""One sample's picture (`plots.interaction_picture`, `harsanyi draw`): exactly the planted
salient AND/OR coalitions drawn, on the right patches, features or tokens, at every
checkpoint in epoch order; the input loaded from the dataset or its absence said; print-ready
figures; errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.patches import Rectangle
from test_figures import figure_problems

from harsanyi import plots
from harsanyi.cli import main
from harsanyi.data import load_configured
from harsanyi.masks import index_of
from harsanyi.pictures import (
    DrawnInteraction,
    checkpoint_series,
    sample_input,
    top_interactions,
)
from harsanyi.players import PatchGrid
from harsanyi.store import InteractionResults, write_results

RUN = "digits-lenet-s0-aaaaaaaaaaaa"
GRID = PatchGrid((8, 8), (4, 4), [(0, 0), (1, 2), (2, 1), (3, 3)])
# Planted per epoch: (op, players) → I(S).  ∅ is large and never drawn; the last term of
# each epoch lies below 0.05·max|I| and is not salient.
PLANTED = {
    0: {
        ("AND", ()): 100.0,
        ("AND", (0,)): 1.0,
        ("OR", (2, 3)): 0.8,
        ("AND", (1, 2)): -0.5,
        ("AND", (0, 1, 2, 3)): 0.04,
    },
    10: {
        ("AND", ()): -40.0,
        ("AND", (0, 1, 2)): 3.0,
        ("OR", (1, 3)): -2.0,
        ("AND", (3,)): 0.2,
        ("OR", (0,)): 0.1,
    },
}
EXPECTED = [
    DrawnInteraction(0, "AND", (0,), 1.0),
    DrawnInteraction(0, "OR", (2, 3), 0.8),
    DrawnInteraction(0, "AND", (1, 2), -0.5),
    DrawnInteraction(10, "AND", (0, 1, 2), 3.0),
    DrawnInteraction(10, "OR", (1, 3), -2.0),
    DrawnInteraction(10, "AND", (3,), 0.2),
]


def planted(
    epoch: int,
    *,
    players: dict | None = None,
    run: str = RUN,
    dataset: str = "digits",
    sample_ids=None,
    positions=None,
) -> InteractionResults:
    """Two rows: row 0 holds the planted terms of `epoch`, row 1 only a weak AND term."""
    n = 4
    i_and, i_or = np.zeros((2, 2**n)), np.zeros((2, 2**n))
    for (op, coalition), value in PLANTED[epoch].items():
        (i_and if op == "AND" else i_or)[0, index_of(coalition, n)] = value
    i_and[1, index_of((2,), n)] = 0.3
    v = np.zeros((2, 2**n))
    v[:, -1] = 1.5 + epoch
    if sample_ids is None:
        train = load_configured("digits", {}, None).train.ids
        sample_ids = [int(train[5]), int(train[6])]
    return InteractionResults(
        v=v,
        I_and=i_and,
        I_or=i_or,
        p=np.zeros_like(v),
        q=np.zeros_like(v),
        sample_ids=np.asarray(sample_ids),
        labels=np.array([3, 4]),
        split=np.array(["train", "train"]),
        n=n,
        meta={
            "players": players or GRID.to_dict(),
            "baseline": {"type": "zero"},
            "output": "log_odds",
            "solver": {"name": "exact"},
            "model": {"arch": "lenet", "run": run, "epoch": epoch, "dataset": dataset},
        },
        player_positions=None if positions is None else np.asarray(positions),
    )


@pytest.fixture
def captured(monkeypatch):
    """(figure, its problems: tests/test_figures.figure_problems) of every saved figure."""
    figures = []
    original = plots.save

    def save(fig, out):
        figures.append((fig, figure_problems(fig)))
        return original(fig, out)

    monkeypatch.setattr(plots, "save", save)
    return figures


@pytest.fixture
def files(tmp_path) -> list[Path]:
    """The run's files at epochs 10 and 0, the later one first."""
    return [write_results(tmp_path / f"epoch_{epoch:04d}.h5", planted(epoch)) for epoch in (10, 0)]


def _cells_outlined(ax) -> tuple[set[tuple[int, int]], set, set]:
    """Cells outlined in a panel (unfilled rectangles), with their edge colours and styles."""
    cells, colours, styles = set(), set(), set()
    for patch in ax.patches:
        if isinstance(patch, Rectangle) and not patch.get_fill() and patch.get_gid() != "frame":
            x, y = patch.get_xy()
            cells.add((int(round(y + 0.5)) // 2, int(round(x + 0.5)) // 2))  # 2×2-pixel cells
            colours.add(tuple(np.round(patch.get_edgecolor()[:3], 3)))
            styles.add(patch.get_linestyle())
    return cells, colours, styles


def _rgb(hex_colour: str) -> tuple:
    from matplotlib.colors import to_rgb

    return tuple(np.round(to_rgb(hex_colour), 3))


def test_top_interactions_are_the_salient_ones_strongest_first():
    n = 4
    i_and, i_or = np.zeros(2**n), np.zeros(2**n)
    for (op, coalition), value in PLANTED[10].items():
        (i_and if op == "AND" else i_or)[index_of(coalition, n)] = value
    assert top_interactions(i_and, i_or, top=6) == [
        ("AND", (0, 1, 2), 3.0),
        ("OR", (1, 3), -2.0),
        ("AND", (3,), 0.2),
    ]
    assert top_interactions(i_and, i_or, top=2) == [("AND", (0, 1, 2), 3.0), ("OR", (1, 3), -2.0)]


def test_image_picture_outlines_exactly_the_planted_coalitions(files, tmp_path, captured):
    by_epoch, paths = checkpoint_series(files, 0)
    assert list(by_epoch) == [0, 10] and paths == files[::-1]
    data = sample_input(by_epoch[0], 0, path=paths[0])
    assert data.note is None and data.image is not None and data.image.shape == (8, 8)
    drawn = plots.interaction_picture(by_epoch, 0, tmp_path / "p.png", data=data)
    assert drawn == EXPECTED
    fig, problems = captured[-1]
    assert not problems, "\n".join(problems)
    axes = np.array(fig.axes).reshape(4, 2)  # the input, then 3 interactions; 2 checkpoints
    assert [ax.get_title().splitlines()[0] for ax in axes[0]] == ["epoch 0", "epoch 10"]
    for col, epoch in enumerate((0, 10)):
        assert axes[0, col].images and _cells_outlined(axes[0, col])[0] == set(GRID.cells)
        here = [d for d in EXPECTED if d.epoch == epoch]
        for row, item in enumerate(here, start=1):
            ax = axes[row, col]
            cells, colours, styles = _cells_outlined(ax)
            assert cells == {GRID.cells[j] for j in item.coalition}
            assert colours == {_rgb(plots.POSITIVE if item.value > 0 else plots.NEGATIVE)}
            assert styles == {plots.PICTURE_LINES[item.op]}
            assert ax.get_title() == f"{item.op} {item.value:+.2g}"


def test_image_picture_shows_the_loaded_sample(files, tmp_path):
    by_epoch, paths = checkpoint_series(files, 1)
    data = sample_input(by_epoch[0], 1, path=paths[0])
    x = load_configured("digits", {}, None).train.x[6, 0].numpy()
    expected = (x - x.min()) / (x.max() - x.min())
    np.testing.assert_allclose(data.image, expected, atol=1e-6)


def test_input_that_cannot_be_loaded_is_said_in_the_figure(tmp_path, captured):
    grid = PatchGrid((32, 32), (4, 4), [(0, 0), (1, 2), (2, 1), (3, 3)])
    results = planted(0, players=grid.to_dict(), dataset="cifar10", sample_ids=[7, 8])
    data = sample_input(results, 0, data_root=None)
    assert data.image is None and "cifar10 needs root" in data.note
    drawn = plots.interaction_picture({0: results}, 0, tmp_path / "p.png", data=data)
    assert drawn == [d for d in EXPECTED if d.epoch == 0]
    fig, problems = captured[-1]
    assert not problems, "\n".join(problems)
    heading = fig.get_suptitle()
    assert "input not loaded" in heading and "player grid only" in heading
    assert "cifar10 needs root" in heading
    plots.interaction_picture({0: results}, 0, tmp_path / "q.png")  # no data given at all
    assert "input not loaded: the player grid only" in captured[-1][0].get_suptitle()


def test_tabular_picture_names_coalitions_by_feature(tmp_path, captured):
    from sklearn.datasets import load_breast_cancer

    names = list(load_breast_cancer().feature_names)
    columns = [0, 3, 7, 20]
    by_epoch = {
        e: planted(
            e,
            players={"type": "features", "columns": columns},
            dataset="breast_cancer",
            sample_ids=[1, 2],
        )
        for e in (0, 10)
    }
    data = sample_input(by_epoch[0], 0)
    assert data.names == [names[c] for c in columns]
    drawn = plots.interaction_picture(by_epoch, 0, tmp_path / "t.png", data=data)
    assert drawn == EXPECTED
    fig, problems = captured[-1]
    assert not problems, "\n".join(problems)
    for ax, epoch in zip(fig.axes, (0, 10), strict=True):
        labels = [" ".join(t.get_text().split()) for t in ax.get_yticklabels()]
        expected = [
            f"{d.op}: "
            + (" & " if d.op == "AND" else " | ").join(names[columns[j]] for j in d.coalition)
            for d in EXPECTED
            if d.epoch == epoch
        ]
        assert labels == expected
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert [bar.get_width() for bar in bars] == [d.value for d in EXPECTED if d.epoch == epoch]
        assert [bool(bar.get_hatch()) for bar in bars] == [
            d.op == "OR" for d in EXPECTED if d.epoch == epoch
        ]


def test_text_picture_names_coalitions_by_token(tmp_path, captured):
    from harsanyi.data import minilm_tokenizer

    dataset = load_configured("sentiment", {}, None)
    positions = [[1, 2, 3, 4], [1, 2, 3, 4]]
    results = planted(
        0,
        players={"type": "tokens", "n": 4},
        dataset="sentiment",
        sample_ids=dataset.train.ids[:2].tolist(),
        positions=positions,
    )
    data = sample_input(results, 0)
    assert data.note is None
    tokens = minilm_tokenizer().convert_ids_to_tokens(dataset.train.x[0].tolist())
    assert data.names == [f"{tokens[p]} @{p}" for p in positions[0]]
    drawn = plots.interaction_picture({0: results}, 0, tmp_path / "x.png", data=data)
    assert drawn == [d for d in EXPECTED if d.epoch == 0]
    fig, problems = captured[-1]
    assert not problems, "\n".join(problems)
    assert tokens[1] in fig.get_suptitle()  # the sentence is shown
    first = " ".join(fig.axes[0].get_yticklabels()[0].get_text().split())
    assert first == f"AND: {tokens[1]} @1"


def test_many_checkpoints_keep_to_the_page(tmp_path, captured):
    by_epoch = {}
    for epoch in range(0, 80, 10):
        base = planted(0 if epoch < 40 else 10)
        base.meta["model"]["epoch"] = epoch
        by_epoch[epoch] = base
    drawn = plots.interaction_picture(by_epoch, 0, tmp_path / "m.png", top=6)
    assert sorted({d.epoch for d in drawn}) == list(range(0, 80, 10))
    fig, problems = captured[-1]
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- the command


def test_draw_writes_a_png_and_lists_what_it_drew(files, tmp_path, capsys):
    out = tmp_path / "picture.png"
    assert main(["draw", *map(str, files), "--sample", "0", "--top", "2", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.with_suffix(".pdf").is_file()
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        str(out),
        "epoch 0\tAND\t{0}\t+1",
        "epoch 0\tOR\t{2,3}\t+0.8",
        "epoch 10\tAND\t{0,1,2}\t+3",
        "epoch 10\tOR\t{1,3}\t-2",
    ]


def _error(argv: list[str], capsys) -> str:
    assert main(argv) == 1
    return capsys.readouterr().err


def test_draw_errors_name_the_file(files, tmp_path, capsys):
    out = str(tmp_path / "p.png")
    err = _error(["draw", *map(str, files), "--sample", "2", "--out", out], capsys)
    assert str(files[0]) in err and "sample 2 outside" in err
    other = write_results(tmp_path / "other.h5", planted(0, run="digits-mlp-s1-bbbbbbbbbbbb"))
    err = _error(["draw", str(files[0]), str(other), "--sample", "0", "--out", out], capsys)
    assert str(other) in err and "digits-mlp-s1" in err
    moved = write_results(tmp_path / "moved.h5", planted(0, sample_ids=[99, 98]))
    err = _error(["draw", str(files[0]), str(moved), "--sample", "0", "--out", out], capsys)
    assert str(moved) in err and "sample 99" in err
    again = write_results(tmp_path / "again.h5", planted(10))
    err = _error(["draw", *map(str, files), str(again), "--sample", "0", "--out", out], capsys)
    assert str(again) in err and "epoch 10" in err
    err = _error(["draw", str(tmp_path / "missing.h5"), "--sample", "0", "--out", out], capsys)
    assert "missing.h5" in err
    assert not Path(out).exists()


def test_the_report_picture_draws_the_first_training_sample_over_training(tmp_path, captured):
    """Rule pictures_run: the run's files thinned to `shown_checkpoints` (first and last kept),
    the first `train` row drawn on its input: here row 0 of the planted files."""
    from harsanyi.analyses import pictures as run_pictures

    files = [
        write_results(tmp_path / f"epoch_{epoch:04d}.h5", planted(epoch if epoch in (0, 10) else 0))
        for epoch in (0, 3, 10)
    ]
    assert run_pictures.chosen_files(files, 2) == [files[0], files[2]]
    out = tmp_path / "picture.png"
    run_pictures.run_step([str(f) for f in files], str(out), shown_checkpoints=2)
    assert out.stat().st_size > 0 and out.with_suffix(".pdf").is_file()
    fig, problems = captured[-1]
    assert not problems, "\n".join(problems)
    axes = np.array(fig.axes).reshape(4, 2)  # the input, then 3 interactions; 2 checkpoints
    assert [ax.get_title().splitlines()[0] for ax in axes[0]] == ["epoch 0", "epoch 10"]
    titles = {ax.get_title() for ax in axes[1:].ravel()}
    assert titles == {f"{item.op} {item.value:+.2g}" for item in EXPECTED}
    with pytest.raises(ValueError, match="not a checkpoint's results file"):
        run_pictures.chosen_files([tmp_path / "picture.png"], 2)
