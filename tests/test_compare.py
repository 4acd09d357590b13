"""`harsanyi compare`: two scorecards of one study, cell by cell (issue #23 item 0: did a
fresh install, or other package versions, reproduce the committed scorecard?)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harsanyi.analyses.common import read_tsv
from harsanyi.analyses.scorecard import compare_scorecards
from harsanyi.cli import main

COMMITTED = Path(__file__).resolve().parent / "data" / "tiny_scorecard.tsv"


def changed_copy(tmp_path: Path, edit) -> Path:
    card = read_tsv(COMMITTED)
    edit(card)
    path = tmp_path / "scorecard.tsv"
    card.sample(frac=1, random_state=0).to_csv(path, sep="\t", index=False)  # rows reordered
    return path


def test_a_scorecard_equals_itself_in_any_row_order(tmp_path):
    difference = compare_scorecards(COMMITTED, changed_copy(tmp_path, lambda card: None))
    assert difference.same and difference.verdicts_changed == 0
    assert difference.rows == len(read_tsv(COMMITTED))
    assert difference.summary().startswith("same scorecard")


def test_planted_changes_are_found_and_nothing_else(tmp_path):
    def edit(card: pd.DataFrame) -> None:
        card.loc[0, "effect"] += 0.25  # a number beyond the tolerance
        card.loc[1, "low"] *= 1 + 1e-9  # within it
        card.loc[2, "verdict"] = "yes" if card.loc[2, "verdict"] != "yes" else "no"

    card = read_tsv(COMMITTED)
    difference = compare_scorecards(COMMITTED, changed_copy(tmp_path, edit))
    found = {(row.run, row.key, row.column) for row in difference.cells.itertuples()}
    assert found == {
        (card.run[0], card.key[0], "effect"),
        (card.run[2], card.key[2], "verdict"),
    }
    assert difference.verdicts_changed == 1
    assert difference.largest_effect_change == pytest.approx(0.25)
    effect = difference.cells[difference.cells.column == "effect"].iloc[0]
    assert effect.second - effect.first == pytest.approx(0.25)
    assert difference.summary().startswith("1 of 16 verdicts differ; 2 cells differ in 2 rows")


def test_scorecards_of_other_runs_or_columns_are_refused(tmp_path):
    other_run = changed_copy(tmp_path, lambda card: card.loc.__setitem__((0, "run"), "x-1"))
    with pytest.raises(ValueError, match="different runs or claims"):
        compare_scorecards(COMMITTED, other_run)
    fewer = read_tsv(COMMITTED).drop(columns="details")
    with pytest.raises(ValueError, match="different columns"):
        compare_scorecards(COMMITTED, fewer)


def test_the_command_exits_as_diff_does(tmp_path, capsys):
    assert main(["compare", str(COMMITTED), str(COMMITTED)]) == 0
    assert "every cell equal" in capsys.readouterr().out

    def edit(card: pd.DataFrame) -> None:
        card["effect"] += 1.0

    assert main(["compare", str(COMMITTED), str(changed_copy(tmp_path, edit)), "--show", "3"]) == 1
    out = capsys.readouterr().out
    measured = int(read_tsv(COMMITTED).effect.notna().sum())  # n/a rows have no effect
    assert 0 < measured < 16
    assert f"{measured} cells differ in {measured} rows" in out
    assert f"... {measured - 3} more cells (--all shows them)" in out
    assert main(["compare", str(COMMITTED), str(tmp_path / "missing.tsv")]) == 1
    assert "missing.tsv" in capsys.readouterr().err


def test_common_compares_only_the_rows_both_score(tmp_path):
    card = read_tsv(COMMITTED)
    one_run = card[card.run == card.run[0]]
    with pytest.raises(ValueError, match="different runs or claims"):
        compare_scorecards(COMMITTED, one_run)
    difference = compare_scorecards(COMMITTED, one_run, common=True)
    assert difference.same and difference.rows == len(one_run) < len(card)
    other = card.assign(run="another-run-000000000000")
    with pytest.raises(ValueError, match="no run and claim in common"):
        compare_scorecards(COMMITTED, other, common=True)
