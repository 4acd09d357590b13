"""Games and decompositions as separate steps: a games file holds v of one checkpoint (the
only step that runs the model); decompose reads it on a CPU.  Both steps together give what
extract in one process gives, planted terms are recovered from a games file, and the store
checks games files like results files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import yaml

from harsanyi.config import load_study, resolve
from harsanyi.extraction import checkpoint_games, decompose, evaluate_games, extract, select_samples
from harsanyi.models import build_model
from harsanyi.store import (
    ResultsFileError,
    StoredGames,
    read_games,
    read_results,
    verify_store,
    write_games,
)
from harsanyi.transforms import and_inverse, or_inverse

EXTRACTION = {"solver": "exact", "qthres": 0.0, "lr": None, "iters": None, "normalize": True}


def planted(n: int = 4, seed: int = 0) -> tuple[StoredGames, np.ndarray, np.ndarray]:
    """Games of two samples built from known AND and OR terms on disjoint coalitions."""
    rng = np.random.default_rng(seed)
    width = 2**n
    I_and = np.zeros((2, width))
    I_or = np.zeros((2, width))
    I_and[:, 0b0011] = rng.uniform(1, 2, 2)
    I_or[:, 0b1100] = -rng.uniform(1, 2, 2)
    v = and_inverse(I_and) + or_inverse(I_or)
    games = StoredGames(
        v=v,
        sample_ids=np.array([5, 9]),
        labels=np.array([0, 1]),
        split=np.array(["train", "test"]),
        n=n,
        meta={
            "players": {"type": "features", "n": n},
            "baseline": {"type": "zero"},
            "output": "log_odds",
            "model": {"run": "r-000000000000", "arch": "mlp", "dataset": "d", "epoch": 3},
            "provenance": {"device": "cuda:0 (planted)"},
            "extra": {"games": {"version": 1}},
        },
    )
    return games, I_and, I_or


def test_a_games_file_round_trips_and_names_itself_when_broken(tmp_path):
    games, _, _ = planted()
    path = write_games(tmp_path / "games.h5", games)
    back = read_games(path)
    np.testing.assert_array_equal(back.v, games.v)
    np.testing.assert_array_equal(back.sample_ids, games.sample_ids)
    assert back.split.tolist() == ["train", "test"] and back.meta["model"]["epoch"] == 3
    with h5py.File(path, "r+") as h5:
        del h5["labels"]
    with pytest.raises(ResultsFileError, match="games.h5: missing datasets/attributes"):
        read_games(path)
    bad = StoredGames(**{**games.__dict__, "v": games.v[:, :3]})
    with pytest.raises(ValueError, match="v must have shape"):
        write_games(tmp_path / "bad.h5", bad)
    assert not (tmp_path / "bad.h5").exists()


def test_decompose_recovers_planted_terms_from_a_games_file(tmp_path):
    games, I_and, I_or = planted()
    source = write_games(tmp_path / "games.h5", games)
    result = read_results(decompose(source, tmp_path / "x.h5", EXTRACTION))
    for row in range(2):
        assert set(np.flatnonzero(np.abs(result.I_and[row]) > 1e-6)) <= {0b0011, 0b0000}
        np.testing.assert_allclose(result.I_and[row, 0b0011], I_and[row, 0b0011], atol=1e-6)
        np.testing.assert_allclose(result.I_or[row, 0b1100], I_or[row, 0b1100], atol=1e-6)
    assert result.certified.all()
    extra = result.meta["extra"]
    assert extra["games_file"] == str(source)
    assert extra["games_provenance"] == {"device": "cuda:0 (planted)"}
    assert result.meta["provenance"]["device"] is None  # no model ran in the decomposition
    assert result.meta["model"] == games.meta["model"]


def test_games_then_decompose_equals_extract_in_one_process(tmp_path):
    config = {
        "datasets": {
            "breast_cancer": {
                "architectures": ["mlp"],
                "players": {"n": 4, "features": [0, 1, 2, 3]},
                "samples": {"train_per_class": 1, "test_per_class": 1, "flipped": 1},
                "max_train": 80,
                "max_test": 40,
            }
        },
        "label_noise": [0.0, 0.1],
        "extraction": {"solver": "exact"},
    }
    study = resolve(config)
    plan = study.datasets["breast_cancer"]
    manifest = select_samples(plan, plan.root, tmp_path / "samples.json")
    run = next(r for r in study.runs if r.label_noise > 0)
    checkpoint = tmp_path / "epoch_0001.pt"
    model = build_model("mlp", plan.input_shape, plan.num_classes, seed=0)
    torch.save({"state_dict": model.state_dict(), "epoch": 1, "meta": {"arch": "mlp"}}, checkpoint)
    extraction = study.extraction_settings("breast_cancer", "mlp")
    common = dict(run=run.name, epoch=1, device="cpu", progress=False)
    args = (checkpoint, tmp_path / "samples.json", run.settings, extraction, plan.root)
    games_path = evaluate_games(*args, tmp_path / "games.h5", **common)
    two_steps = read_results(decompose(games_path, tmp_path / "two.h5", extraction))
    one_step = read_results(extract(*args, tmp_path / "one.h5", **common))
    for name in ("v", "I_and", "I_or", "p", "q", "sample_ids", "labels"):
        np.testing.assert_array_equal(getattr(two_steps, name), getattr(one_step, name), name)
    assert two_steps.split.tolist() == one_step.split.tolist()
    assert "flipped" in two_steps.split.tolist()
    assert len(two_steps.v) == sum(
        len(manifest[k]["positions"]) for k in ("train", "test", "flipped")
    )
    games = read_games(games_path)
    assert games.meta["extra"]["games"] == study.game_settings("breast_cancer", "mlp")
    assert games.meta["provenance"]["device"].startswith("cpu")
    again = checkpoint_games(*args, **common)
    np.testing.assert_array_equal(again.v, games.v)


def test_every_decomposition_of_a_checkpoint_shares_one_games_id(tmp_path):
    def study(**extraction):
        config = {
            "datasets": {
                "digits": {"architectures": ["lenet", "mlp"], "players": {"grid": [8, 8], "n": 6}}
            },
            "extraction": extraction,
        }
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(config))
        return load_study(path)

    main, other_solver, other_output = (
        study(),
        study(solver="lp", qthres=0.1),
        study(output="logit"),
    )
    for run, same, moved in zip(main.runs, other_solver.runs, other_output.runs, strict=True):
        assert main.game_id(run) == other_solver.game_id(same)
        assert main.extraction_id(run) != other_solver.extraction_id(same)
        assert main.game_id(run) != other_output.game_id(moved)


def test_store_verify_reads_games_files_and_their_place(tmp_path):
    games, _, _ = planted()
    run = tmp_path / "d" / "runs" / "r-000000000000"
    settings = games.meta["extra"]["games"]
    from harsanyi.io import settings_hash

    place = run / "games" / f"g-{settings_hash(settings)}"
    write_games(place / "epoch_0003.h5", games)
    assert not any("epoch_0003.h5" in p for p in verify_store(tmp_path))
    write_games(place / "epoch_0004.h5", games)  # epoch 3's games saved under epoch 4
    (problem,) = [p for p in verify_store(tmp_path) if "epoch_0004.h5" in p]
    assert "records epoch 3" in problem
    (place / "epoch_0005.h5").write_bytes(b"not hdf5")
    assert any("epoch_0005.h5" in p for p in verify_store(tmp_path))
