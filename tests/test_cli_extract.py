"""`harsanyi extract`: one checkpoint, chosen samples and players → a results file."""

import json

import pytest
import torch

from harsanyi.cli import main
from harsanyi.models import build_model
from harsanyi.store import read_results


@pytest.fixture
def checkpoint(tmp_path):
    model = build_model("mlp", (30,), 2, seed=0)
    path = tmp_path / "run" / "checkpoints" / "epoch_0003.pt"
    path.parent.mkdir(parents=True)
    torch.save({"state_dict": model.state_dict(), "epoch": 3, "meta": {"arch": "mlp"}}, path)
    return path


def test_extract_writes_a_results_file(checkpoint, tmp_path, capsys):
    out = tmp_path / "bc.h5"
    code = main(
        [
            "extract",
            str(checkpoint),
            "--dataset",
            "breast_cancer",
            "--features",
            "0",
            "3",
            "7",
            "--n",
            "3",
            "--train-per-class",
            "1",
            "--test-per-class",
            "2",
            "--out",
            str(out),
            "--threads",
            "1",
        ]
    )
    assert code == 0 and str(out) in capsys.readouterr().out
    results = read_results(out)
    assert results.n == 3 and results.v.shape == (6, 8)
    assert sorted(results.split.tolist()) == ["test"] * 4 + ["train"] * 2
    assert results.meta["players"] == {"type": "features", "columns": [0, 3, 7]}
    # The default solver is the certified one: every sample carries its proof.
    assert results.meta["solver"]["name"] == "exact"
    assert results.certified.all() and (results.gap <= 5e-3).all()
    assert (results.lower_bound <= results.l1 * (1 + 1e-12)).all()
    assert main(["show", str(out)]) == 0
    assert "6 of 6 samples" in capsys.readouterr().out
    assert results.meta["model"]["arch"] == "mlp" and results.meta["model"]["epoch"] == 3
    manifest = json.loads(out.with_name("bc.h5.samples.json").read_text())
    assert manifest["train"]["sample_ids"] == results.sample_ids[:2].tolist()


@pytest.mark.parametrize("solver", ["exact", "adam"])
def test_extract_stores_the_optimal_face_exactly_for_certified_solvers(
    checkpoint, tmp_path, solver
):
    out = tmp_path / f"{solver}.h5"
    args = ["extract", str(checkpoint), "--dataset", "breast_cancer", "--features", "0", "3"]
    args += ["--n", "2", "--train-per-class", "1", "--test-per-class", "1", "--out", str(out)]
    assert main([*args, "--solver", solver, "--threads", "1"]) == 0
    results = read_results(out)
    assert (results.face is not None) == (solver == "exact")
    if solver == "exact":
        low, high = results.face["low"], results.face["high"]
        assert (low["weighted_order"] <= high["weighted_order"] + 1e-9).all()


def test_extract_names_the_bad_key(checkpoint, tmp_path, capsys):
    code = main(
        [
            "extract",
            str(checkpoint),
            "--dataset",
            "breast_cancer",
            "--n",
            "31",
            "--out",
            str(tmp_path / "x.h5"),
        ]
    )
    assert code == 1
    assert (
        "datasets.breast_cancer.players.n = 31 exceeds the 30 features" in capsys.readouterr().err
    )
    assert not (tmp_path / "x.h5").exists()


def test_extract_help_is_readable(capsys):
    with pytest.raises(SystemExit):
        main(["extract", "--help"])
    text = capsys.readouterr().out
    for word in ["--dataset", "--grid", "--features", "--solver", "examples:"]:
        assert word in text


def test_extract_on_a_full_disk_says_so_in_one_line_and_leaves_nothing(
    checkpoint, tmp_path, capsys, monkeypatch
):
    import errno

    from harsanyi import extraction

    def full_disk(path, results):
        raise OSError(errno.ENOSPC, f"No space left on device while writing {path}")

    monkeypatch.setattr(extraction, "write_results", full_disk)
    out = tmp_path / "full.h5"
    args = ["extract", str(checkpoint), "--dataset", "breast_cancer", "--features", "0", "3"]
    args += ["--n", "2", "--train-per-class", "1", "--test-per-class", "1", "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("harsanyi: error: ") and "No space left on device" in last
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("full")) == []
