"""`harsanyi show` and `harsanyi store ls` for a person (text within 100 columns, arrays
summarised) and for programs (--format json | tsv, full precision)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from test_cli import SETTINGS, planted_results

from harsanyi.cli import main, summarise
from harsanyi.store import run_dirname, write_manifest, write_results

L1 = list(np.linspace(1.0, 57.123456789, 50))


@pytest.fixture
def results_file(tmp_path):
    results = planted_results()
    results.meta["extra"] = {"l1_start": L1, "l1_final": L1[::-1], "note": "kept"}
    results.meta["model"]["checkpoint_sha256"] = "ab" * 32
    return write_results(tmp_path / "epoch_0007.h5", results)


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "results"
    for seed in range(3):
        settings = {**SETTINGS, "seed": seed, "dataset": "a_rather_long_dataset_name"}
        run_dir = root / run_dirname(settings)
        write_manifest(run_dir, settings)
        write_results(run_dir / "interactions" / "epoch_0000.h5", planted_results())
    return root


def test_summarise_shortens_long_number_lists_only():
    assert summarise([1.0, 2.0]) == [1.0, 2.0]
    assert summarise({"a": list(range(10))}) == {"a": "10 values, 0 … 9, mean 4.5"}
    assert summarise(0.123456789) == 0.1235
    assert summarise("ab" * 32) == "ab" * 6 + "…"


def test_show_text_fits_100_columns_and_summarises_arrays(results_file, capsys):
    assert main(["show", str(results_file)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if not line.startswith("file ")]
    assert max(len(line) for line in lines) <= 100, out
    assert "50 values, 1 … 57.12, mean 29.06" in out
    assert "57.123456789" not in out
    assert '"note": "kept"' in out and "abababababab…" in out


def test_show_json_keeps_everything_at_full_precision(results_file, capsys):
    assert main(["show", str(results_file), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["extra"]["l1_start"] == pytest.approx(L1, rel=1e-15)
    assert data["samples"] == {"train": 1, "test": 1, "flipped": 1}
    assert data["n"] == 3 and data["model"]["checkpoint_sha256"] == "ab" * 32
    rows = {row["order"]: row for row in data["mean_abs_per_order"]}
    assert rows[2]["train AND"] == pytest.approx(8.0 / 3)
    assert data["salient_per_sample"]["train"] == 3.0


def test_show_tsv_is_the_order_table(results_file, capsys):
    assert main(["show", str(results_file), "--format", "tsv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), sep="\t")
    assert list(table.order) == [1, 2, 3]
    assert table["train AND"][1] == pytest.approx(8.0 / 3)


def test_store_ls_text_names_each_run_once_within_100_columns(store, capsys):
    assert main(["store", "ls", str(store)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    for seed in range(3):
        name = run_dirname({**SETTINGS, "seed": seed, "dataset": "a_rather_long_dataset_name"})
        assert out.count(name) == 1
    assert "3 run(s)" in out
    assert main(["store", "ls", str(store), "--settings"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 100
    assert '"label_noise":0.15' in out


def test_store_ls_json_and_tsv_hold_every_column(store, capsys):
    assert main(["store", "ls", str(store), "--format", "json", "--settings"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 3
    assert {r["seed"] for r in records} == {0, 1, 2}
    assert records[0]["settings"]["label_noise"] == 0.15
    assert main(["store", "ls", str(store), "--format", "tsv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), sep="\t")
    assert len(table) == 3 and {"run", "hash", "dataset", "n_checkpoints"} <= set(table.columns)


def test_store_ls_empty_root_json_is_an_empty_list(tmp_path, capsys):
    assert main(["store", "ls", str(tmp_path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
