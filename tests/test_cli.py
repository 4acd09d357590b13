"""The `harsanyi` command line: show, store ls/show/verify, in process and as a subprocess."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harsanyi.cli import build_parser, main
from harsanyi.masks import index_of
from harsanyi.stats import salient_count
from harsanyi.store import (
    InteractionResults,
    run_dirname,
    write_manifest,
    write_results,
)

N = 3
SETTINGS = {"dataset": "digits", "arch": "lenet", "seed": 0, "label_noise": 0.15}
# Planted interactions of the single train sample (all other entries are zero).
PLANTED_AND = {(): 50.0, (0, 1): 8.0, (2,): 1.0, (0, 1, 2): 0.1}
PLANTED_OR = {(1, 2): -2.0}


def planted_results() -> InteractionResults:
    width = 2**N
    i_and = np.zeros((3, width))
    i_or = np.zeros((3, width))
    for players, value in PLANTED_AND.items():
        i_and[0, index_of(players, N)] = value
    for players, value in PLANTED_OR.items():
        i_or[0, index_of(players, N)] = value
    i_and[1:, 1:] = 1.0  # test and flipped samples: every AND interaction 1
    return InteractionResults(
        v=np.zeros((3, width)),
        I_and=i_and,
        I_or=i_or,
        p=np.zeros((3, width)),
        q=np.zeros((3, width)),
        sample_ids=np.array([10, 11, 12]),
        labels=np.array([1, 2, 3]),
        split=np.array(["train", "test", "flipped"]),
        n=N,
        meta={
            "players": {"kind": "pixels"},
            "baseline": {"kind": "zero"},
            "output": "log_odds",
            "solver": {"name": "lp", "settings": {"qthres": 0.02}},
            "model": {"arch": "lenet", "checkpoint": "epoch_0007.pt", "checkpoint_sha256": "ab12"},
        },
    )


@pytest.fixture
def results_file(tmp_path) -> Path:
    return write_results(tmp_path / "epoch_0007.h5", planted_results())


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "results"
    run_dir = root / run_dirname(SETTINGS)
    write_manifest(run_dir, SETTINGS)
    write_results(run_dir / "interactions" / "epoch_0000.h5", planted_results())
    return root


def test_salient_count_used_by_show_against_brute_force():
    rng = np.random.default_rng(0)
    results = planted_results()
    results.I_and = rng.normal(size=(5, 2**N)) ** 3
    results.I_or = rng.normal(size=(5, 2**N)) ** 3
    results.I_and[:, 0] = 1e6  # the empty set never counts, nor sets the threshold
    for ratio in (0.05, 0.3):
        counts = salient_count(results.I_and, results.I_or, ratio=ratio)
        for sample in range(5):
            values = [
                abs(vector[sample, index])
                for vector, index in itertools.product((results.I_and, results.I_or), range(1, 8))
            ]
            expected = sum(value >= ratio * max(values) for value in values)
            assert counts[sample] == expected


def test_show_prints_identity_and_planted_statistics(results_file, capsys):
    assert main(["show", str(results_file)]) == 0
    out = capsys.readouterr().out
    assert "n = 3" in out
    assert "train 1, test 1, flipped 1" in out
    assert "epoch_0007.pt" in out and "ab12" in out
    assert '"qthres": 0.02' in out and "log_odds" in out
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    # columns: train AND, train OR, test AND, test OR, flipped AND, flipped OR
    order1, order2, order3 = lines["1"], lines["2"], lines["3"]
    assert float(order1[0]) == pytest.approx(1.0 / 3, rel=1e-3)  # |1| over 3 singletons
    assert float(order2[0]) == pytest.approx(8.0 / 3, rel=1e-3)
    assert float(order2[1]) == pytest.approx(2.0 / 3, rel=1e-3)
    assert float(order3[0]) == pytest.approx(0.1, rel=1e-3)
    assert float(order1[2]) == 1.0 and float(order3[5]) == 0.0
    # train: max|I| = 8 (the empty set's 50 excluded): 8, 1 and -2 are salient, 0.1 is not
    assert "train 3.0, test 7.0, flipped 7.0" in out


def test_show_bad_file_exits_1_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "garbage.h5"
    bad.write_bytes(b"\x00" * 100)
    assert main(["show", str(bad)]) == 1
    assert str(bad) in capsys.readouterr().err


def test_store_ls_and_show(store, capsys):
    assert main(["store", "ls", str(store)]) == 0
    out = capsys.readouterr().out
    assert run_dirname(SETTINGS) in out and "digits" in out and "settings" not in out
    assert main(["store", "show", str(store), "noise0.15"]) == 0
    out = capsys.readouterr().out
    assert '"label_noise": 0.15' in out and "interactions/epoch_0000.h5" in out
    assert main(["store", "show", str(store), "no-such-run"]) == 1
    assert "no-such-run" in capsys.readouterr().err


def test_store_verify_exit_codes(store, capsys):
    assert main(["store", "verify", str(store)]) == 0
    capsys.readouterr()
    (store / run_dirname(SETTINGS) / "run.json").unlink()
    assert main(["store", "verify", str(store)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "run.json" in out[0]


def test_parser_requires_a_command():
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([])
    assert info.value.code == 2


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "show" in out and "store" in out and "examples:" in out


def test_subprocess_exit_codes(store, tmp_path):
    """show, store ls (python -m) and store verify (entry point) run as separate processes."""
    h5 = store / run_dirname(SETTINGS) / "interactions" / "epoch_0000.h5"
    good = tmp_path / "copy.h5"
    shutil.copy(h5, good)
    h5.write_bytes(h5.read_bytes()[:300])
    module = [sys.executable, "-m", "harsanyi.cli"]
    entry = [shutil.which("harsanyi")] if shutil.which("harsanyi") else module
    commands = {
        "show": [*module, "show", str(good)],
        "ls": [*module, "store", "ls", str(store)],
        "verify": [*entry, "store", "verify", str(store)],
    }
    # started together: each process spends seconds importing torch
    running = {
        name: subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, command in commands.items()
    }
    done = {
        name: (process.wait(timeout=300), *process.communicate())
        for name, process in running.items()
    }
    assert done["show"][0] == 0, done["show"][2]
    assert "n = 3" in done["show"][1]
    assert done["ls"][0] == 0, done["ls"][2]
    assert run_dirname(SETTINGS) in done["ls"][1]
    assert done["verify"][0] == 1, done["verify"][2]
    assert done["verify"][1].strip().startswith(str(h5))
