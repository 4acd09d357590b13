"""Sensitivity by order and joint extraction as study steps: per-checkpoint files, the
tables, the scorecard claim against its permutation null, and the config that turns them on."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_studies import make_results, random_interactions, write

from harsanyi.analyses import joint as joint_analysis
from harsanyi.analyses import sensitivity as sens
from harsanyi.analyses.common import shown_epochs
from harsanyi.analyses.scorecard import CLAIMS, run_claims
from harsanyi.config import ConfigError, resolve
from harsanyi.extraction import (
    build_masker,
    decompose_sensitivity,
    evaluate_sensitivity_games,
    explained_samples,
    extract_sensitivity,
    load_data,
    read_sensitivity,
    select_samples,
)
from harsanyi.joint import read_joint, shared_specific
from harsanyi.models import build_model, load_checkpoint
from harsanyi.players import Players
from harsanyi.sensitivity import sensitivity_by_order
from harsanyi.store import (
    StoredGames,
    _file_problem,
    is_games_file,
    read_games,
    read_results,
    write_games,
)


def rows_from(relative: np.ndarray, names=("gauss:0.05", "pgd:0.01"), run="r", epoch=0):
    """Long sensitivity rows (read_tables' shape) from r of shape (perturbations, samples, n)."""
    p, s, n = relative.shape
    return pd.DataFrame(
        {
            "run": run,
            "epoch": epoch,
            "sample_id": np.tile(np.repeat(np.arange(s), n), p),
            "split": "train",
            "label": 0,
            "perturbation": np.repeat(list(names)[:p], s * n),
            "order": np.tile(np.arange(1, n + 1), p * s),
            "relative": relative.ravel(),
        }
    )


def test_rising_change_with_order_scores_yes_and_its_null_is_centred():
    rng = np.random.default_rng(0)
    rising = np.exp(np.arange(6))[None, None, :] * rng.uniform(0.5, 1.5, (2, 30, 6))
    result, extra = sens.sensitivity_claim(rows_from(rising), n_boot=300)
    assert result.verdict == "yes" and result.effect > 0.8
    assert abs(np.mean(extra["null_replicates"])) < 0.1


def test_change_without_order_trend_is_not_yes():
    rng = np.random.default_rng(1)
    flat = rng.uniform(0.5, 1.5, (2, 30, 6))
    result, _ = sens.sensitivity_claim(rows_from(flat), n_boot=300)
    assert result.verdict != "yes" and abs(result.effect) < 0.2


def test_falling_change_is_no():
    rng = np.random.default_rng(2)
    falling = np.exp(-np.arange(6))[None, None, :] * rng.uniform(0.5, 1.5, (1, 30, 6))
    result, _ = sens.sensitivity_claim(rows_from(falling, names=("gauss:0.05",)), n_boot=300)
    assert result.verdict == "no" and result.effect < -0.8


def test_tables_match_the_library_summary():
    rng = np.random.default_rng(3)
    rel = rng.uniform(0.1, 2.0, (2, 12, 5))
    rel[0, 3, 4] = np.nan
    summary, trend = sens.sensitivity_tables(rows_from(rel), n_boot=200, n_perm=200)
    names, back = sens.relative_array(rows_from(rel))
    np.testing.assert_array_equal(back, rel)
    means = summary.set_index(["perturbation", "order"])["mean"]
    assert means[("gauss:0.05", 5)] == pytest.approx(np.nanmean(rel[0, :, 4]))
    assert set(trend.perturbation) == set(names) and (trend.n_samples == 12).all()


def test_spread_epochs_keeps_first_and_last():
    assert shown_epochs([0, 1, 2, 3, 4, 5, 10, 20], 4) == [
        0,
        2,
        5,
        20,
    ]  # positions 0, 7/3, 14/3, 7 rounded
    assert shown_epochs([0, 1], 4) == [0, 1]


def test_config_turns_sensitivity_on_and_refuses_token_inputs(tmp_path):
    base = {"datasets": {"digits": {"architectures": ["mlp"], "players": {"grid": [4, 4]}}}}
    off = resolve(base)
    on = resolve({**base, "sensitivity": {"enabled": True}})
    assert not off.sensitivity["enabled"] and on.sensitivity["enabled"]
    assert on.analysis_id != off.analysis_id  # its tables live apart
    root = tmp_path / "sst2"
    root.mkdir()
    text = {
        "datasets": {
            "sst2": {"architectures": ["bert_small"], "players": {"n": 4}, "root": str(root)}
        }
    }
    with pytest.raises(ConfigError, match="sensitivity.enabled"):
        resolve({**text, "sensitivity": {"enabled": True}}, check_data=False)


def test_joint_groups_pair_architectures_of_the_same_seed_and_noise():
    study = resolve(
        {
            "datasets": {
                "digits": {"architectures": ["lenet", "mlp"], "players": {"grid": [4, 4]}},
                "breast_cancer": {"architectures": ["mlp"], "players": {"n": 4}},
            },
            "label_noise": [0.0, 0.1],
            "seeds": [0, 1],
            "joint": {"enabled": True, "checkpoints": 3},
        }
    )
    groups = study.joint_groups()
    assert len(groups) == 4  # digits × 2 seeds × 2 noise levels; breast_cancer has one arch
    for runs in groups.values():
        assert {r.arch for r in runs} == {"lenet", "mlp"}
        assert len({(r.seed, r.label_noise, r.dataset) for r in runs}) == 1
        assert len(study.joint_epochs(runs)) == 3


def _sensitivity_checkpoint(tmp_path):
    """A study with sensitivity on, its manifest and an untrained MLP checkpoint at epoch 2."""
    study = resolve(
        {
            "datasets": {
                "breast_cancer": {
                    "architectures": ["mlp"],
                    "players": {"n": 4},
                    "samples": {"train_per_class": 2, "test_per_class": 2},
                }
            },
            "sensitivity": {"enabled": True, "samples_per_split": 3, "permutations": 200},
        }
    )
    plan = study.datasets["breast_cancer"]
    manifest = tmp_path / "manifest.json"
    select_samples(plan, None, manifest)
    model = build_model("mlp", plan.input_shape, plan.num_classes, seed=0)
    checkpoint = tmp_path / "epoch_0002.pt"
    torch.save({"state_dict": model.state_dict(), "epoch": 2, "meta": {"arch": "mlp"}}, checkpoint)
    return study, manifest, checkpoint


def test_extract_sensitivity_file_matches_the_library(tmp_path):
    study, manifest, checkpoint = _sensitivity_checkpoint(tmp_path)
    run = study.runs[0]
    extraction = study.extraction_settings("breast_cancer", "mlp")
    out = tmp_path / "sens.json"
    extract_sensitivity(
        checkpoint,
        manifest,
        run.settings,
        extraction,
        study.sensitivity,
        None,
        out,
        run=run.name,
        epoch=2,
        device="cpu",
    )
    record, table = read_sensitivity(out)
    assert record["epoch"] == 2 and record["model"]["arch"] == "mlp"
    assert record["provenance"]["device"].startswith("cpu") and record["uncertified"] == 0
    assert set(table.split) == {"train", "test"} and table.sample_id.nunique() <= 6
    # the same numbers from the library on the same model, masker and samples
    data = load_data(run.settings, None)
    loaded = load_checkpoint(checkpoint, "mlp", data.input_shape, len(data.classes))
    document = json.loads(manifest.read_text())
    masker = build_masker(Players.from_dict(document["players"]), extraction["baseline"], data)
    train = explained_samples(document, data, 0.0)[0]
    rows = torch.as_tensor(train["positions"][:3])
    direct = sensitivity_by_order(
        loaded,
        masker,
        train["source"].x[rows],
        torch.as_tensor(train["labels"][:3]),
        sigmas=[0.05],
        pgd_eps=[0.01],
        n_perm=200,
    )
    mine = table[table.split == "train"]
    _, got = sens.relative_array(mine)
    np.testing.assert_allclose(got, direct.relative, rtol=1e-9, equal_nan=True)


def test_sensitivity_in_two_jobs_gives_the_file_of_one(tmp_path):
    """Rule sensitivity_games (the model) then rule sensitivity (the LPs, from the stored
    games) write the file that the one-process extract_sensitivity writes."""
    study, manifest, checkpoint = _sensitivity_checkpoint(tmp_path)
    run = study.runs[0]
    extraction = study.extraction_settings("breast_cancer", "mlp")
    common = dict(run=run.name, epoch=2, device="cpu")
    args = (checkpoint, manifest, run.settings, extraction, study.sensitivity, None)
    extract_sensitivity(*args, tmp_path / "one.json", **common)
    games = evaluate_sensitivity_games(*args, tmp_path / "games" / "epoch_0002.h5", **common)
    stored = read_games(games)
    kinds = stored.meta["extra"]["perturbation"]
    assert kinds.count("clean") == 6  # 3 samples per split, each split's clean rows once
    settings = study.sensitivity
    assert set(kinds) == {"clean"} | {f"gauss:{s:g}" for s in settings["sigmas"]} | {
        f"pgd:{e:g}" for e in settings["pgd_eps"]
    }
    assert stored.meta["provenance"]["device"].startswith("cpu")  # where the model ran
    decompose_sensitivity(
        games, tmp_path / "two.json", qthres=extraction["qthres"], sensitivity=study.sensitivity
    )
    one, one_table = read_sensitivity(tmp_path / "one.json")
    two, two_table = read_sensitivity(tmp_path / "two.json")
    pd.testing.assert_frame_equal(one_table, two_table)
    assert two["provenance"]["device"] is None  # no model ran in the decomposition
    assert two["games_provenance"]["device"].startswith("cpu") and two["games_file"] == str(games)
    for key in ("run", "epoch", "model", "players", "baseline", "output", "settings"):
        assert one[key] == two[key], key
    # the store's check reads it as a games file, finding nothing wrong
    assert is_games_file(games) and _file_problem(games) is None


def test_sensitivity_refuses_games_without_perturbations(tmp_path):
    v = np.random.default_rng(0).normal(size=(3, 16))
    path = write_games(
        tmp_path / "plain.h5",
        StoredGames(
            v=v,
            sample_ids=np.arange(3),
            labels=np.zeros(3, dtype=np.int64),
            split=np.array(["train"] * 3),
            n=4,
            meta={"players": {}, "baseline": {}, "output": "log_odds", "model": {}},
        ),
    )
    with pytest.raises(ValueError, match="plain.h5: not sensitivity games"):
        decompose_sensitivity(path, tmp_path / "out.json", qthres=0.02, sensitivity={})


def test_scorecard_run_claims_carry_the_sensitivity_claim():
    rng = np.random.default_rng(4)
    epochs = {}
    for epoch in (0, 5):
        i_and, i_or = random_interactions(12, seed=epoch)
        epochs[epoch] = make_results(i_and, i_or, ["train"] * 6 + ["test"] * 6, epoch=epoch)
    rising = np.exp(np.arange(4))[None, None, :] * rng.uniform(0.5, 1.5, (1, 12, 4))
    flat = rng.uniform(0.5, 1.5, (1, 12, 4))
    rows = pd.concat([rows_from(flat, epoch=0), rows_from(rising, epoch=5)])
    entries = run_claims(epochs, None, n_boot=200, sensitivity_rows=rows)
    by_key = {e["key"]: e for e in entries}
    assert set(by_key) == set(CLAIMS) - {"shared_interactions"}
    assert by_key["higher_orders_sensitive"]["verdict"] == "yes"
    assert len(by_key["higher_orders_sensitive"]["null_replicates"]) == 200
    before = sens.mean_sample_rho(rows_from(flat))
    assert by_key["higher_orders_sensitive"]["details"].endswith(
        f"at epoch 0: mean ρ = {before:.2f}"
    )
    missing = {e["key"]: e for e in run_claims(epochs, None, n_boot=200)}
    assert missing["higher_orders_sensitive"]["verdict"] == "n/a"


def test_joint_steps_from_stored_games(tmp_path):
    files = {}
    for arch in ("lenet", "mlp"):
        for epoch in (0, 3):
            i_and, i_or = random_interactions(5, seed=epoch + (arch == "mlp"))
            results = make_results(i_and, i_or, ["train"] * 3 + ["test"] * 2, epoch=epoch)
            results.meta["model"].update(
                arch=arch, run=f"digits-{arch}-s0-0123456789ab", dataset="digits"
            )
            results.meta.update(players={"type": "features", "columns": [0, 1, 2, 3]})
            results.meta.update(baseline={"type": "zero"}, output="log_odds")
            files[(arch, epoch)] = write(tmp_path, f"{arch}-{epoch}.h5", results)
    joint = []
    for epoch in (0, 3):
        out = tmp_path / "j-0123456789ab" / f"epoch_{epoch:04d}.h5"
        joint_analysis.extract_step(
            interactions=[files[("lenet", epoch)], files[("mlp", epoch)]], out=out
        )
        joint.append(out)
        stored = read_joint(out)
        assert stored.certified.all() and [m["arch"] for m in stored.models] == ["lenet", "mlp"]
        assert stored.meta["extra"]["split"] == ["train"] * 3 + ["test"] * 2
    table = joint_analysis.shared_table(joint, list(files.values()))
    assert set(table.method) == {"joint", "separate"} and set(table.epoch) == {0, 3}
    assert set(table.model) == {"lenet", "mlp"}
    assert table.group_label.iloc[0] == "digits s0: lenet + mlp"
    joint_analysis.study_step(
        joint=joint,
        separate=list(files.values()),
        table=tmp_path / "joint.tsv",
        summary=tmp_path / "summary.tsv",
        figure=tmp_path / "joint.png",
    )
    summary = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    assert list(summary.epoch) == [0, 3]
    for row in summary.itertuples():  # the mean over models of Σ shared / Σ (shared + specific)
        part = table[(table.epoch == row.epoch) & (table.method == "joint")]
        sums = part.groupby("model")[["shared", "specific"]].sum()
        expected = (sums.shared / (sums.shared + sums.specific)).mean()
        assert row.shared_fraction_joint == pytest.approx(expected)
    assert (tmp_path / "joint.png").exists() and (tmp_path / "joint.pdf").exists()


def test_a_group_of_three_is_reported_whole_and_pair_by_pair(tmp_path):
    files = []
    for k, arch in enumerate(("lenet", "mlp", "vgg11")):
        i_and, i_or = random_interactions(4, seed=10 + k)
        results = make_results(i_and, i_or, ["train"] * 4, epoch=2)
        results.meta["model"].update(arch=arch, run=f"digits-{arch}-s0-0123456789ab")
        results.meta.update(players={"type": "features"}, baseline={"type": "zero"}, output="x")
        files.append(write(tmp_path, f"{arch}.h5", results))
    out = tmp_path / "j-0123456789ab" / "epoch_0002.h5"
    joint_analysis.extract_step(interactions=files, out=out)
    table = joint_analysis.shared_table([out], files)
    pairs = {"lenet + mlp", "lenet + vgg11", "mlp + vgg11"}
    assert set(table.models) == {"lenet + mlp + vgg11"} | pairs
    stored = read_joint(out)
    for models, subset in (("lenet + vgg11", [0, 2]), ("lenet + mlp + vgg11", [0, 1, 2])):
        rows = table[(table.models == models) & (table.method == "joint")]
        expected = shared_specific(stored, group=subset)
        np.testing.assert_allclose(rows.shared.to_numpy(), expected.shared.to_numpy())
    whole = joint_analysis.whole_groups(table)
    assert set(whole.models) == {"lenet + mlp + vgg11"}
    summary = joint_analysis.shared_summary(table)
    assert set(summary.models) == {"lenet + mlp + vgg11"} | pairs


def test_joint_step_refuses_files_of_other_samples(tmp_path):
    paths = []
    for k, count in enumerate((4, 5)):
        i_and, i_or = random_interactions(count, seed=k)
        results = make_results(i_and, i_or, ["train"] * count)
        results.meta.update(players={"type": "features"}, baseline={"type": "zero"}, output="x")
        paths.append(write(tmp_path, f"m{k}.h5", results))
    with pytest.raises(ValueError, match="differ in their samples"):
        joint_analysis.extract_step(interactions=paths, out=tmp_path / "j.h5")


def test_the_joint_part_of_the_study_results_counts_and_averages_whole_groups():
    """The sentence in the docs' study results comes from joint_summary.tsv: planted shares,
    pairs out of a larger group left out."""
    rows = []
    for group, (first, last) in {"j-1": (0.5, 0.7), "j-2": (0.3, 0.9)}.items():
        for epoch, joint_share in ((0, first), (40, last)):
            rows.append({"group_label": f"digits {group}: lenet + mlp", "group": group,
                         "models": "lenet + mlp", "epoch": epoch,
                         "shared_fraction_joint": joint_share,
                         "shared_fraction_separate": 0.6})  # fmt: skip
    rows.append({**rows[0], "models": "lenet", "shared_fraction_joint": 9.0})  # not whole
    text = joint_analysis.readme_part(pd.DataFrame(rows))
    assert "at 2 of 4 group × checkpoint cells (2 groups)" in text  # 0.7 and 0.9 beat 0.6
    assert "epoch 0: 0.40 against 0.60; epoch 40: 0.80 against 0.60." in text


def test_the_attribution_part_of_the_study_results_reads_its_tables():
    from harsanyi.analyses.attributions import readme_part

    shapley = pd.DataFrame(
        {"run": ["a", "b"], "max_abs_diff": [2e-14, 5e-15], "passed": [True, True]}
    )
    attributions = pd.DataFrame(
        [
            {"run": run, "method": method, "allocation": allocation, "explained_share": share}
            for run, bump in (("a", 0.0), ("b", 0.1))
            for method, allocation, share in (
                ("occlusion", "occlusion", 0.8),
                ("saliency", "occlusion", 0.1),
                ("saliency", "shapley", 0.99),  # the other allocation: left out
            )
            for share in [share + bump]
        ]
    )
    text = readme_part(shapley, attributions)
    assert "to 2.0e-14 at most, within tolerance in all 2 runs" in text
    assert "feature ablation 0.8–0.9, saliency 0.1–0.2." in text
    assert "NOT within" in readme_part(shapley.assign(passed=[True, False]), attributions)


@pytest.mark.parametrize("count", [None, 1, 2, 5])
def test_first_per_split_keeps_the_first_rows_of_each_split(count):
    split = np.array(["train", "test", "train", "flipped", "test", "train", "test", "train"])
    rows = joint_analysis.first_per_split(split, count)
    seen: dict = {}
    expected = []
    for row, name in enumerate(split):  # the definition, row by row
        seen[name] = seen.get(name, 0) + 1
        if count is None or seen[name] <= count:
            expected.append(row)
    assert rows.tolist() == expected
    with pytest.raises(ValueError, match="at least 1"):
        joint_analysis.first_per_split(split, 0)


def test_a_joint_extraction_of_some_samples_is_the_whole_one_on_those_samples(tmp_path):
    # ids repeat across splits (train 0..2, test 0..1), so samples match by split and id
    splits, ids = ["train"] * 3 + ["test"] * 2, [0, 1, 2, 0, 1]
    files = []
    for k, arch in enumerate(("lenet", "mlp")):
        i_and, i_or = random_interactions(5, seed=20 + k)
        results = make_results(i_and, i_or, splits, ids=ids, epoch=1)
        results.meta["model"].update(arch=arch, run=f"digits-{arch}-s0-0123456789ab")
        results.meta.update(players={"type": "features"}, baseline={"type": "zero"}, output="x")
        files.append(write(tmp_path, f"{arch}.h5", results))
    whole, part = tmp_path / "whole" / "epoch_0001.h5", tmp_path / "part" / "epoch_0001.h5"
    joint_analysis.extract_step(interactions=files, out=whole)
    joint_analysis.extract_step(interactions=files, out=part, samples_per_split=1)
    whole_joint, part_joint = read_joint(whole), read_joint(part)
    assert part_joint.sample_ids.tolist() == [0, 0]
    assert part_joint.meta["extra"]["split"] == ["train", "test"]
    assert part_joint.meta["extra"]["samples_per_split"] == 1
    # the joint LP is one per sample: the first train and first test rows of the whole one
    for name in ("I_and", "I_or"):
        np.testing.assert_allclose(
            getattr(part_joint, name), getattr(whole_joint, name)[:, [0, 3]], atol=1e-7
        )
    separate = joint_analysis.shared_table([part], files)
    separate = separate[separate.method == "separate"].reset_index(drop=True)
    expected = shared_specific(
        tuple(
            np.stack([getattr(read_results(f), name)[[0, 3]] for f in files])
            for name in ("I_and", "I_or")
        )
    )
    np.testing.assert_allclose(separate.shared, expected.shared)
    np.testing.assert_allclose(separate.specific, expected.specific)


def test_joint_samples_per_split_keeps_older_ids_and_names_its_own():
    config = {
        "datasets": {"digits": {"architectures": ["lenet", "mlp"], "players": {"grid": [4, 4]}}},
        "joint": {"enabled": True},
    }
    before = resolve(config)
    unset = resolve({**config, "joint": {"enabled": True, "samples_per_split": None}})
    some = resolve({**config, "joint": {"enabled": True, "samples_per_split": 2}})
    assert unset.analysis_id == before.analysis_id
    assert list(unset.joint_groups()) == list(before.joint_groups())
    assert some.analysis_id != before.analysis_id
    assert set(some.joint_groups()).isdisjoint(before.joint_groups())


@pytest.mark.parametrize(
    ("joint", "match"),
    [({"samples_per_split": 0}, "joint.samples_per_split"), ({"alpha": 0}, "joint.alpha")],
)
def test_bad_joint_settings_fail_naming_the_key_without_the_schema(joint, match):
    config = {
        "datasets": {"digits": {"architectures": ["lenet", "mlp"], "players": {"grid": [4, 4]}}},
        "joint": {"enabled": True, **joint},
    }
    with pytest.raises(ConfigError, match=match):
        resolve(config)
