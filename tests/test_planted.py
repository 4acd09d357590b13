"""Planted positive controls: the recovery criterion on games with known AND / OR terms, the
generated datasets and their rules, training with masked players, and (slow) the studies
users run (tests/data/planted_*.yaml), which must recover the planted rule in most samples."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_reruns import REPO, snakemake

import harsanyi
from harsanyi.config import ConfigError, load_study, resolve
from harsanyi.data import (
    PLANTED_RULES,
    generate_planted,
    load_dataset,
    planted_presence,
)
from harsanyi.masks import index_of
from harsanyi.planted import (
    PlantedTerm,
    last_checkpoint_files,
    planted_recovery,
    planted_terms,
    term_recovered,
)
from harsanyi.store import InteractionResults, read_results
from harsanyi.train import Masking, TrainConfig, train_run

N = 5
A, B = 1, 3  # the planted pair


# --------------------------------------------------------------------------- synthetic games


def game(terms: list[tuple[str, tuple[int, ...], float]], noise: float = 0.0, seed: int = 0):
    """v on all 2^N masks from AND terms (v += c if T ⊆ S) and OR terms (v += c if T ∩ S)."""
    present = np.array([[(s >> (N - 1 - j)) & 1 for j in range(N)] for s in range(2**N)], bool)
    v = np.full(2**N, -1.0)
    for kind, players, value in terms:
        held = present[:, list(players)]
        v += value * (held.all(axis=1) if kind == "and" else held.any(axis=1))
    return v + noise * np.random.default_rng(seed).standard_normal(2**N)


MAIN_EFFECTS = [("and", (0,), 0.8), ("and", (2,), -0.5), ("and", (4,), 0.3)]


def decompose(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    result = harsanyi.sparsify(v[None], solver="exact", qthres=0.02)
    return result.I_and[0], result.I_or[0]


@pytest.mark.parametrize("kind", ["and", "or"])
def test_a_planted_term_is_recovered_from_its_game(kind):
    v = game([*MAIN_EFFECTS, (kind, (A, B), 3.0)], noise=0.02)
    i_and, i_or = decompose(v)
    assert term_recovered(i_and, i_or, PlantedTerm((A, B), kind))
    assert term_recovered(i_and, i_or, PlantedTerm((B, A), kind))  # order of players is free
    other = "or" if kind == "and" else "and"
    assert not term_recovered(i_and, i_or, PlantedTerm((A, B), other))  # wrong part
    assert not term_recovered(i_and, i_or, PlantedTerm((A, B), kind, sign=-1))  # wrong sign
    assert not term_recovered(i_and, i_or, PlantedTerm((0, 2), kind))  # another pair


def test_games_without_the_planted_term_fail():
    # main effects only: the pair carries nothing
    i_and, i_or = decompose(game(MAIN_EFFECTS, noise=0.02))
    assert not term_recovered(i_and, i_or, PlantedTerm((A, B), "and"))
    # a stronger other pair outranks the planted one; top_k 2 admits it
    v = game([*MAIN_EFFECTS, ("and", (A, B), 1.0), ("and", (0, 4), 3.0)])
    i_and, i_or = decompose(v)
    assert not term_recovered(i_and, i_or, PlantedTerm((A, B), "and"))
    assert term_recovered(i_and, i_or, PlantedTerm((A, B), "and"), top_k=2)


def test_criterion_on_given_interactions_and_its_errors():
    i_and, i_or = np.zeros(2**N), np.zeros(2**N)
    pair = index_of((A, B), N)
    i_and[0] = 100.0  # ∅ never counts
    i_and[index_of((0,), N)] = 5.0  # a main effect: ranked only with min_order 1
    i_and[pair] = 2.0
    i_or[index_of((0, 2), N)] = 2.0  # a tie counts against the planted term
    term = PlantedTerm((A, B), "and")
    assert not term_recovered(i_and, i_or, term)
    assert term_recovered(i_and, i_or, term, top_k=2)
    i_or[index_of((0, 2), N)] = 1.9
    assert term_recovered(i_and, i_or, term)
    assert not term_recovered(i_and, i_or, term, min_order=1)
    # below the salience threshold (5 % of the largest |I|, a main effect here): not recovered
    i_and[index_of((0,), N)] = 50.0
    assert not term_recovered(i_and, i_or, term)
    assert term_recovered(i_and, i_or, term, salient_ratio=0.01)
    with pytest.raises(ValueError, match="top_k"):
        term_recovered(i_and, i_or, term, top_k=0)
    with pytest.raises(ValueError, match="outside the 5 players"):
        term_recovered(i_and, i_or, PlantedTerm((1, 7), "and"))
    with pytest.raises(ValueError, match="kind"):
        PlantedTerm((1, 2), "xor")
    with pytest.raises(ValueError, match="distinct"):
        PlantedTerm((1, 1), "and")


def results_of(v: np.ndarray, meta: dict, split, sample_ids, positions=None):
    result = harsanyi.sparsify(v, solver="exact", qthres=0.02)
    count = v.shape[0]
    return InteractionResults(
        v=v,
        I_and=result.I_and,
        I_or=result.I_or,
        p=result.p,
        q=result.q,
        sample_ids=np.asarray(sample_ids, dtype=np.int64),
        labels=np.ones(count, dtype=np.int64),
        split=np.asarray(split),
        n=N,
        meta=meta,
        player_positions=positions,
    )


def test_planted_recovery_counts_the_samples_where_the_rule_applies():
    v = np.stack(
        [
            game([*MAIN_EFFECTS, ("and", (A, B), 3.0)], 0.02, 0),
            game(MAIN_EFFECTS, 0.02, 1),
            game([*MAIN_EFFECTS, ("and", (A, B), 3.0)], 0.02, 2),
        ]
    )
    results = results_of(v, {}, ["train"] * 3, [0, 1, 2])
    term = PlantedTerm((A, B), "and")
    recovery = planted_recovery(results, [term, term, None])
    assert (recovery.recovered, recovery.total) == (1, 2)
    assert recovery.per_sample == (True, False, None)
    with pytest.raises(ValueError, match="3 samples"):
        planted_recovery(results, [term])


# --------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("name", sorted(PLANTED_RULES))
def test_planted_datasets_label_is_the_rule_and_the_baseline_is_absence(name):
    rule = PLANTED_RULES[name]
    ds = load_dataset(name, n_train=400, n_test=100)
    for split_name, split in (("train", ds.train), ("test", ds.test)):
        present = planted_presence(name, split_name, split.ids, n_train=400, n_test=100)
        expected = present.all(axis=1) if rule.kind == "and" else present.any(axis=1)
        np.testing.assert_array_equal(split.y.numpy(), expected.astype(np.int64))
    assert 0.2 < ds.train.y.float().mean() < 0.8
    raw, labels = generate_planted(name, 400, [0, 0, 0])
    np.testing.assert_array_equal(labels, ds.train.y.numpy())
    # absent inputs are ≈ 0 in raw values, and the raw mean (the baseline) is ≈ 0 too
    present = planted_presence(name, "train", np.arange(400), n_train=400, n_test=100)
    if name.startswith("planted_tabular"):
        first = raw[:, rule.inputs[0]]
    else:
        row, col = rule.inputs[0]
        first = raw[:, 0, 2 * row, 2 * col]
    assert np.abs(first[~present[:, 0]]).max() < 0.6 < np.abs(first[present[:, 0]]).min()
    assert abs(raw.mean()) < 0.05
    with pytest.raises(ValueError, match="ids must lie"):
        planted_presence(name, "test", [100], n_train=400, n_test=100)
    with pytest.raises(ValueError, match="no planted rule"):
        planted_presence("digits", "train", [0])


def test_planted_terms_follow_players_presence_and_split():
    name = "planted_tabular_and"
    present = planted_presence(name, "train", np.arange(2000))
    both = int(np.flatnonzero(present.all(axis=1))[0])
    one = int(np.flatnonzero(present.sum(axis=1) == 1)[0])
    columns = [0, 2, 4, 5, 7]  # the planted columns 2, 5 are players 1 and 3
    meta = {"players": {"type": "features", "columns": columns}, "model": {"dataset": name}}
    v = np.stack([game([("and", (A, B), 3.0)])] * 3)
    results = results_of(v, meta, ["train", "train", "flipped"], [both, one, both])
    terms = planted_terms(results)
    assert terms == [PlantedTerm((1, 3), "and"), None, None]
    assert planted_recovery(results, terms).total == 1
    meta["players"]["columns"] = [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"planted inputs \[5\] are not players"):
        planted_terms(results)
    meta["model"]["dataset"] = "digits"
    with pytest.raises(ValueError, match="no planted rule"):
        planted_terms(results)


def test_sentiment_terms_are_the_negation_and_adjective_players():
    ds = load_dataset("sentiment")
    from harsanyi.data import minilm_tokenizer

    tokenizer = minilm_tokenizer()
    words = [tokenizer.convert_ids_to_tokens(row.tolist()) for row in ds.train.x[:200]]
    negated = next(i for i, w in enumerate(words) if "not" in w or "never" in w)
    plain = next(i for i, w in enumerate(words) if "not" not in w and "never" not in w)
    tokens = words[negated]
    negation = next(p for p, w in enumerate(tokens) if w in ("not", "never"))
    adjective = next(p for p, w in enumerate(tokens) if p > negation and w not in ("very",))
    while tokens[adjective] in ("really", "extremely", "truly", "very"):
        adjective += 1
    positions = np.array(
        [[1, 2, negation, adjective], [1, 2, 3, 4], [1, 2, negation, adjective]], dtype=np.int64
    )
    positions.sort(axis=1)
    meta = {"players": {"type": "tokens", "n": 4}, "model": {"dataset": "sentiment"}}
    v = np.stack([game([("and", (2, 3), 1.0)])] * 3)[:, : 2**4]
    results = InteractionResults(
        v=v,
        I_and=v,
        I_or=np.zeros_like(v),
        p=np.zeros_like(v),
        q=np.zeros_like(v),
        sample_ids=np.array([negated, plain, negated]),
        labels=np.ones(3, dtype=np.int64),
        split=np.array(["train", "train", "flipped"]),
        n=4,
        meta=meta,
        player_positions=positions,
    )
    terms = planted_terms(results)
    held = positions[0].tolist()
    assert terms == [PlantedTerm((held.index(negation), held.index(adjective)), "and"), None, None]


# --------------------------------------------------------------------------- masked training


def test_masking_replaces_only_attended_non_special_elements():
    x = torch.tensor([[101, 7, 8, 9, 102, 0], [101, 5, 6, 102, 0, 0]])
    attention = (x != 0).long()
    baseline = torch.full((6,), 103)
    drawn = torch.ones_like(x, dtype=torch.bool)
    masked = Masking(baseline, (0, 101, 102)).apply(x, attention, drawn)
    expected = torch.tensor([[101, 103, 103, 103, 102, 0], [101, 103, 103, 102, 0, 0]])
    assert torch.equal(masked, expected)
    assert torch.equal(Masking(baseline).apply(x, attention, torch.zeros_like(drawn)), x)
    tabular = Masking(torch.tensor([0.5, -0.5, 0.0]))
    rows = torch.ones(2, 3)
    out = tabular.apply(rows, None, torch.tensor([[True, False, False], [False, True, True]]))
    assert torch.equal(out, torch.tensor([[0.5, 1.0, 1.0], [1.0, -0.5, 0.0]]))


def test_mask_players_training_is_seeded_and_checked(tmp_path):
    ds = load_dataset("planted_tabular_and", n_train=200, n_test=50)
    masking = Masking(ds.feature_mean)

    def train(out: str, p: float) -> dict:
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(10, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
        )
        cfg = TrainConfig(epochs=2, lr=0.05, mask_players=p, seed=3)
        train_run(model, ds.train, ds.test, 2, cfg, tmp_path / out, progress=False, masking=masking)
        return torch.load(tmp_path / out / "checkpoints" / "epoch_0002.pt", weights_only=True)

    a, b, plain = train("a", 0.3), train("b", 0.3), train("plain", 0.0)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key])
    assert any(not torch.equal(a["state_dict"][k], plain["state_dict"][k]) for k in a["state_dict"])
    assert a["config"]["mask_players"] == 0.3 and "mask_players" not in plain["config"]
    with pytest.raises(ValueError, match="mask_players must lie"):
        TrainConfig(epochs=1, mask_players=1.0)
    with pytest.raises(ValueError, match="needs a Masking"):
        model = torch.nn.Linear(10, 2)
        train_run(model, ds.train, ds.test, 2, TrainConfig(epochs=1, mask_players=0.1), tmp_path)


def test_masked_run_resumes_to_the_same_weights(tmp_path):
    ds = load_dataset("planted_tabular_and", n_train=200, n_test=50)
    cfg = TrainConfig(epochs=3, lr=0.05, mask_players=0.3, seed=1)

    class Interrupt(Exception):
        pass

    def train(out: Path, stop_after: int | None = None) -> dict:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))

        def stop(epoch: int, row: dict) -> None:
            if epoch == stop_after:
                raise Interrupt

        train_run(
            model,
            ds.train,
            ds.test,
            2,
            cfg,
            out,
            progress=False,
            masking=Masking(ds.feature_mean),
            on_epoch_end=stop,
        )
        return torch.load(out / "checkpoints" / "epoch_0003.pt", weights_only=True)

    reference = train(tmp_path / "reference")
    with pytest.raises(Interrupt):
        train(tmp_path / "resumed" / "run", stop_after=1)
    resumed = train(tmp_path / "resumed" / "run")
    for key, value in reference["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key


def test_mask_players_config_keeps_hashes_and_refuses_images():
    def study(training: dict | None, name: str = "planted_tabular_and", **players):
        entry = {"architectures": ["mlp"], "players": {"n": 4, **players}}
        config = {"datasets": {name: entry}}
        if training is not None:
            config["training"] = training
        return resolve(config, check_data=False)

    plain = study(None).runs[0].name
    assert study({"mask_players": 0.0}).runs[0].name == plain
    masked = study({"mask_players": 0.2}).runs[0]
    assert masked.name != plain and masked.settings["training"]["mask_players"] == 0.2
    with pytest.raises(ConfigError, match="datasets.planted_image_and: training.mask_players"):
        study({"mask_players": 0.2}, "planted_image_and", grid=[4, 4])


# --------------------------------------------------------------------------- studies (slow)

CONTROLS = {
    "planted_tabular": 2,  # datasets (runs) in the study
    "planted_image": 2,
    "planted_text": 1,
}


def run_control(tmp_path: Path, control: str) -> list[Path]:
    """Run the control's study as users do (snakemake on its config), up to the extraction
    of every run's last checkpoint; the results files."""
    config = REPO / "tests" / "data" / f"{control}.yaml"
    results = tmp_path / "results"
    study = load_study(config)
    targets = [
        f"{results}/{run.dataset}/runs/{run.name}/interactions/{study.extraction_id(run)}/"
        f"epoch_{run.epochs[-1]:04d}.h5"
        for run in study.runs
    ]
    snakemake(tmp_path, "--cores", "2", *targets, config=config, timeout=1800)
    files = last_checkpoint_files([results])
    assert len(files) == CONTROLS[control] == len(targets)
    return files


def report(files: list[Path], json_path: Path) -> str:
    import subprocess

    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "planted_report.py"), *map(str, files)]
        + ["--json", str(json_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("control", ["planted_tabular", "planted_image"])
def test_tabular_and_image_controls_recover_the_planted_rule(tmp_path, control):
    # About 1–2 minutes each on 2 free cores (training, selection, two extractions).
    files = run_control(tmp_path, control)
    for path in files:
        results = read_results(path)
        recovery = planted_recovery(results, planted_terms(results))
        assert recovery.total >= 8, path
        assert recovery.recovered >= 0.8 * recovery.total, (path, recovery)
    assert report(files, tmp_path / "planted.json").count("planted rule recovered in") == len(files)
    import json

    rows = json.loads((tmp_path / "planted.json").read_text())["rows"]
    for path, row in zip(files, rows, strict=True):
        results = read_results(path)
        recovery = planted_recovery(results, planted_terms(results))
        assert (row["recovered"], row["samples"]) == (recovery.recovered, recovery.total)
        assert row["run"] == results.meta["model"]["run"]


@pytest.mark.slow
def test_text_control_recovers_negation_and_adjective(tmp_path):
    # About 2–3 minutes on 2 free cores (bert_small, 8 epochs on 2000 sentences).
    (path,) = run_control(tmp_path, "planted_text")
    results = read_results(path)
    recovery = planted_recovery(results, planted_terms(results))
    assert recovery.total >= 5
    assert recovery.recovered >= 0.7 * recovery.total, recovery
