"""Text studies choose only sentences with at least n playable tokens, so a player count
above the shortest sentence no longer fails after training (issue #22 item 4)."""

from __future__ import annotations

import json

import yaml

from harsanyi.config import load_study
from harsanyi.data import load_configured
from harsanyi.extraction import select_samples
from harsanyi.players import token_counts


def study(tmp_path, dataset: str, players: dict):
    entry = {"architectures": ["bert_small" if dataset == "sentiment" else "mlp"]}
    entry.update({"players": players, "samples": {"train_per_class": 5, "test_per_class": 5}})
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({"datasets": {dataset: entry}, "label_noise": [0.0, 0.1]}))
    return load_study(path)


def test_a_text_selection_chooses_only_sentences_with_n_tokens(tmp_path):
    plan = study(tmp_path, "sentiment", {"n": 7, "seed": 0}).datasets["sentiment"]
    data = load_configured("sentiment", plan.data_options, None)
    counts = {
        "train": token_counts(data.train.x, data.train.attention_mask, data.special_token_ids),
        "test": token_counts(data.test.x, data.test.attention_mask, data.special_token_ids),
    }
    assert int(counts["train"].min()) < 7  # shorter sentences exist and would fail
    manifest = select_samples(plan, None, tmp_path / "samples.json")
    for split in ("train", "test", "flipped"):
        source = counts["test" if split == "test" else "train"]
        chosen = manifest[split]["positions"]
        assert chosen and all(int(source[p]) >= 7 for p in chosen), split
    positions = json.loads((tmp_path / "samples.json").read_text())["players"]["positions"]
    assert all(len(row) == 7 for rows in positions.values() for row in rows)


def test_the_eligibility_names_text_selections_only(tmp_path):
    text = study(tmp_path, "sentiment", {"n": 4, "seed": 0}).datasets["sentiment"]
    table = study(tmp_path, "breast_cancer", {"n": 4, "seed": 0}).datasets["breast_cancer"]
    assert text.selection["eligible"] == "tokens >= n"
    assert "eligible" not in table.selection


def test_a_selection_that_cannot_be_made_stops_the_workflow_before_training(tmp_path):
    """`samples.train_per_class` beyond what a class holds fails at start-up, naming the key,
    not in select_samples after the trainings (which do not wait for it) have run."""
    from test_preflight import workflow_dry_run

    config = tmp_path / "study.yaml"
    config.write_text(
        "study: too_many\n"
        f"results: {tmp_path / 'results'}\n"
        "seeds: [0]\n"
        "datasets:\n"
        "  digits:\n"
        "    architectures: [lenet]\n"
        "    players: {grid: [4, 4], n: 6}\n"
        "    samples: {train_per_class: 500}\n"
    )
    done = workflow_dry_run(config)
    assert done.returncode != 0
    assert "datasets.digits.samples.train_per_class: class 0 has" in done.stdout + done.stderr
