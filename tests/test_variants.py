"""Decomposition variants (config `analysis.variants`): the stored games decomposed again
without a forward pass (`extraction.redecompose`), their ids and config checks, their
scorecards side by side with the main one, and the workflow's jobs for them."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_sparsifier import planted_batch
from test_studies import make_results, random_interactions, write

from harsanyi import sparsifier as sp
from harsanyi.analyses import variants
from harsanyi.analyses.scorecard import CLAIMS, COLUMNS
from harsanyi.config import ANALYSIS_DEFAULTS, VARIANT_KEYS, ConfigError, resolve
from harsanyi.extraction import redecompose
from harsanyi.maintenance import find_garbage, study_record, write_study_record
from harsanyi.store import read_results

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"
SETTINGS = {"solver": "exact", "qthres": 0.02, "lr": None, "iters": None, "normalize": True}


@pytest.fixture
def stored(tmp_path):
    """A results file whose v are planted games (n = 5) with a sample of each split."""
    games, _ = planted_batch(5, 3, 3, samples=3, seed=11, v_empty=0.4)
    decomposition = sp.sparsify(games)
    results = make_results(
        decomposition.I_and, decomposition.I_or, ["train", "test", "flipped"], run="r-1"
    )
    results.v, results.p, results.q, results.n = games, decomposition.p, decomposition.q, 5
    results.meta.update(players={"type": "columns"}, baseline={"type": "zero"}, output="x")
    return write(tmp_path, "epoch_0003.h5", results), games


@pytest.mark.parametrize(
    "change",
    [{"qthres": 0.0}, {"solver": "sgd", "iters": 300}, {"solver": "lp", "qthres": 0.05}],
    ids=["qthres0", "sgd", "lp"],
)
def test_redecompose_equals_sparsify_on_the_stored_games(stored, tmp_path, change):
    source, games = stored
    settings = {**SETTINGS, **change}
    out = redecompose(source, tmp_path / "variant.h5", {**settings, "version": 1})
    result = read_results(out)
    expected = sp.sparsify(
        games, **{k: settings[k] for k in ("solver", "qthres", "lr", "iters", "normalize")}
    )
    for name in ("I_and", "I_or", "p", "q"):
        np.testing.assert_allclose(getattr(result, name), getattr(expected, name), atol=1e-12)
    np.testing.assert_allclose(result.l1, expected.l1_final, rtol=1e-12)
    np.testing.assert_array_equal(result.certified, expected.certified)
    # the same samples, game and model; the source named
    source_results = read_results(source)
    np.testing.assert_array_equal(result.v, source_results.v)
    np.testing.assert_array_equal(result.sample_ids, source_results.sample_ids)
    assert result.split.tolist() == ["train", "test", "flipped"]
    assert result.meta["model"] == source_results.meta["model"]
    assert result.meta["solver"]["name"] == settings["solver"]
    assert result.meta["solver"]["qthres"] == settings["qthres"]
    extra = result.meta["extra"]
    assert extra["redecomposed_from"]["path"] == source
    assert extra["above_start"] == expected.above_start.tolist()
    assert result.meta["provenance"]["device"] is None  # no model ran


def test_a_certified_variant_of_a_study_with_the_face_stores_its_ends(stored, tmp_path):
    from harsanyi.face import face_ends

    source, games = stored
    settings = {**SETTINGS, "qthres": 0.0, "face_ends": True}
    result = read_results(redecompose(source, tmp_path / "face.h5", settings))
    expected = face_ends(games, sp.sparsify(games, qthres=0.0))
    for end in ("low", "high"):
        np.testing.assert_allclose(
            result.face[end]["weighted_order"], expected.end(end).weighted_order, rtol=1e-9
        )
    assert read_results(redecompose(source, tmp_path / "none.h5", SETTINGS)).face is None
    study = resolve(
        {
            **yaml.safe_load(TINY.read_text()),
            "analysis": {
                "variants": [
                    {"name": "zero", "qthres": 0.0},
                    {"name": "published", "solver": "sgd"},
                ]
            },
        }
    )
    run = study.runs[0]
    assert study.variant_settings(run, "zero")["face_ends"] is True
    assert "face_ends" not in study.variant_settings(run, "published")


def test_redecompose_at_qthres0_reproduces_v_exactly_and_another_bound_moves_q(stored, tmp_path):
    source, games = stored
    zero = read_results(redecompose(source, tmp_path / "z.h5", {**SETTINGS, "qthres": 0.0}))
    assert np.abs(zero.q).max() == 0.0
    wide = read_results(redecompose(source, tmp_path / "w.h5", {**SETTINGS, "qthres": 0.3}))
    assert np.abs(wide.q).max() > 0 and (wide.l1 < zero.l1).all()


def test_samples_left_at_or_above_their_start_are_flagged_and_logged(stored, tmp_path, caplog):
    source, games = stored
    diverging = {**SETTINGS, "solver": "sgd", "lr": 50.0, "iters": 3}  # far too large a step
    expected = sp.sparsify(games, solver="sgd", lr=50.0, iters=3).above_start
    assert expected.any()
    with caplog.at_level("WARNING", logger="harsanyi.extraction"):
        result = read_results(redecompose(source, tmp_path / "d.h5", diverging))
    assert result.meta["extra"]["above_start"] == expected.tolist()
    assert result.meta["solver"]["above_start"] == int(expected.sum())
    message = f"{int(expected.sum())} of 3 samples ended at or above their starting L1"
    assert message in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="harsanyi.extraction"):
        redecompose(source, tmp_path / "e.h5", {**SETTINGS, "qthres": 0.0})
    assert "starting L1" not in caplog.text  # exact: never


def test_redecompose_rejects_incomplete_settings_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"lack \['iters', 'normalize'\]"):
        redecompose(
            tmp_path / "missing.h5",
            tmp_path / "out.h5",
            {"solver": "exact", "qthres": 0, "lr": None},
        )


# --------------------------------------------------------------------------- config


def tiny_config(**analysis):
    import yaml

    config = yaml.safe_load(TINY.read_text())
    config["analysis"] = analysis
    return config


PUBLISHED_AND_QTHRES0 = [{"name": "published", "solver": "sgd"}, {"name": "qthres0", "qthres": 0.0}]


def test_variants_have_their_own_extraction_ids_and_settings():
    plain = resolve(tiny_config())
    study = resolve(tiny_config(variants=PUBLISHED_AND_QTHRES0))
    assert study.variants == {"published": {"solver": "sgd"}, "qthres0": {"qthres": 0.0}}
    for run in study.runs:
        main = study.extraction_settings(run.dataset, run.arch)
        sgd = study.variant_settings(run, "published")
        zero = study.variant_settings(run, "qthres0")
        assert sgd["solver"] == "sgd" and "canonical_version" not in sgd
        assert sgd["sgd_version"] == sp.SGD_VERSION
        assert zero["qthres"] == 0.0 and zero["canonical_version"] == sp.CANONICAL_VERSION
        assert "face_ends" not in sgd and zero["face_ends"] is True
        ignored = (*VARIANT_KEYS, "face_ends", "canonical_version", "sgd_version")
        for settings in (sgd, zero):  # everything but the decomposition is the run's own
            same = {k: v for k, v in settings.items() if k not in ignored}
            assert same == {k: v for k, v in main.items() if k not in ignored}
        ids = {study.extraction_id(run), study.variant_id(run, "published")}
        ids.add(study.variant_id(run, "qthres0"))
        assert len(ids) == 3 and study.extraction_id(run) == plain.extraction_id(run)
    # no variants: the study keeps its analysis id; variants: a new one
    assert ANALYSIS_DEFAULTS["variants"] == []
    assert resolve(tiny_config(variants=[])).analysis_id == plain.analysis_id
    assert study.analysis_id != plain.analysis_id


def test_sgd_extractions_name_the_version_of_the_defaults_they_used():
    config = tiny_config()
    config["extraction"] = {"solver": "sgd"}
    study = resolve(config)
    run = study.runs[0]
    assert study.extraction_settings(run.dataset, run.arch)["sgd_version"] == sp.SGD_VERSION
    config["extraction"] = {"solver": "sgd", "lr": 1e-5, "iters": 100}
    explicit = resolve(config)
    assert "sgd_version" not in explicit.extraction_settings(run.dataset, run.arch)


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        (
            [{"name": "a", "qthres": 0.0}, {"name": "a", "solver": "sgd"}],
            r"variants\[1\]\.name.*'a'",
        ),
        ([{"name": "seeds", "qthres": 0.0}], r"variants\[0\]\.name.*reserved"),
        ([{"name": "main", "qthres": 0.0}], r"variants\[0\]\.name.*reserved"),
        ([{"name": "same", "qthres": 0.02}], r"variants\[0\] \('same'\): the same decomposition"),
        ([{"name": "x", "solver": "newton"}], r"variants\[0\]\.solver.*'newton'"),
        ([{"name": "x", "qthres": -1.0}], r"variants\[0\]\.qthres"),
        ([{"name": "x", "colour": 1}], r"variants\[0\]: unknown keys \['colour'\]"),
        (
            [{"name": "a", "qthres": 0.0}, {"name": "b", "qthres": 0.0, "solver": "exact"}],
            r"variants\[1\] \('b'\): the same settings as variant 'a'",
        ),
    ],
)
def test_bad_variants_fail_naming_the_entry(entries, match):
    with pytest.raises(ConfigError, match=match):
        resolve(tiny_config(variants=entries))


def test_schema_rejects_a_variant_without_a_name_or_with_a_bad_one(tmp_path):
    import yaml

    from harsanyi.config import load_study

    for entry, match in (
        ({"qthres": 0.0}, r"analysis\.variants\.0: 'name' is a required"),
        ({"name": "A b"}, r"analysis\.variants\.0\.name: 'A b' does not match"),
    ):
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(tiny_config(variants=[entry])))
        with pytest.raises(ConfigError, match=match):
            load_study(path)


def test_study_record_keeps_the_variants_files_from_garbage_collection(tmp_path):
    study = resolve(tiny_config(variants=PUBLISHED_AND_QTHRES0))
    record = study_record(study, {"scorecard_run": "a-000000000000"})
    root = tmp_path
    write_study_record(root / "studies" / study.study_id / study.analysis_id / "study.json", record)
    stale = []
    for run in study.runs:
        run_dir = root / run.dataset / "runs" / run.name
        (run_dir).mkdir(parents=True)
        (run_dir / "run.json").write_text("{}")
        for xid in (study.extraction_id(run), *(study.variant_id(run, n) for n in study.variants)):
            (run_dir / "interactions" / xid).mkdir(parents=True)
        other = run_dir / "interactions" / "x-0123456789ab"
        other.mkdir()
        stale.append(other)
    assert sorted(g.path for g in find_garbage(root, grace_hours=0)) == sorted(stale)


# --------------------------------------------------------------------------- scorecards


def card(verdicts: dict[str, str], runs=("r-1", "r-2"), effect=0.3) -> pd.DataFrame:
    rows = []
    for run in runs:
        for key in CLAIMS:
            verdict = verdicts.get(key, "no")
            row = dict.fromkeys(COLUMNS)
            row.update(run=run, key=key, claim=CLAIMS[key], verdict=verdict, effect=effect)
            row.update(low=effect - 0.1, high=effect + 0.1, bound=0.05)
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def test_comparison_sets_each_scorecard_side_by_side():
    main = card({"spindle_at_init": "no"})
    zero = card({"spindle_at_init": "yes"}, effect=0.4)
    table = variants.comparison_table({"main": main, "qthres0": zero})
    assert len(table) == 2 * len(CLAIMS)
    assert list(table.columns[:3]) == ["run", "key", "claim"]
    spindle = table[table.key == "spindle_at_init"]
    assert (spindle.verdict_main == "no").all() and (spindle.verdict_qthres0 == "yes").all()
    assert (spindle.effect_qthres0 == 0.4).all() and not spindle.same_verdict.any()
    assert table[table.key != "spindle_at_init"].same_verdict.all()
    assert table.key.tolist()[: len(CLAIMS)] == list(CLAIMS)  # claims in scorecard order
    text = variants.comparison_markdown(
        table, {"main": {"qthres": 0.02, "solver": "exact"}, "qthres0": {"qthres": 0.0}}
    )
    assert "- `qthres0`: qthres 0.0" in text and "2 of 16 run × claim verdicts differ" in text
    assert "| r-1 | no: 0.30 [0.20, 0.40] vs 0.05 | yes: 0.40 [0.30, 0.50] vs 0.05 |" in text


def test_readme_part_shows_every_verdict_and_the_spindle_under_each_decomposition():
    main = card({"spindle_at_init": "no"}, runs=("digits-lenet-s0-0123456789ab",))
    zero = card({"spindle_at_init": "yes"}, runs=("digits-lenet-s0-0123456789ab",), effect=0.4)
    table = variants.comparison_table({"main": main, "qthres0": zero})
    part = variants.readme_markdown(table, {"main": {"qthres": 0.02}, "qthres0": {"qthres": 0.0}})
    lines = part.splitlines()
    assert "| digits lenet s0 | no / yes | " + " | ".join(["no / no"] * 7) + " |" in lines
    assert (
        "| digits lenet s0 | no: 0.30 [0.20, 0.40] vs 0.05 | yes: 0.40 [0.30, 0.50] vs 0.05 |"
        in lines
    )
    section = "<!-- begin -->\nscorecard\n<!-- end -->\n"
    spliced = variants.with_readme_part(section, part, "<!-- end -->")
    assert spliced.startswith("<!-- begin -->\nscorecard\n\nDecomposition variants")
    assert spliced.endswith("vs 0.05 |\n\n<!-- end -->\n")
    with pytest.raises(ValueError, match="end marker"):
        variants.with_readme_part("no marker", part, "<!-- end -->")


def test_comparison_leaves_a_run_one_scorecard_lacks_empty():
    table = variants.comparison_table({"main": card({}), "v": card({}, runs=("r-1",))})
    missing = table[table.run == "r-2"]
    assert missing.verdict_v.isna().all() and not missing.same_verdict.any()
    with pytest.raises(ValueError, match="lacks the columns"):
        variants.comparison_table({"main": card({}).drop(columns="bound")})


def test_variant_scorecard_scores_shared_interactions_and_not_sensitivity(tmp_path):
    files, records = [], []
    for run, seed in (("a-1", 0), ("b-1", 1)):
        for epoch in (0, 3):
            results = make_results(
                *random_interactions(4, seed=seed + epoch), ["train"] * 2 + ["test"] * 2, run=run
            )
            results.meta["model"]["epoch"] = epoch
            files.append(write(tmp_path, f"{run}-{epoch}.h5", results))
        entries = [
            {"key": key, "verdict": "no", "effect": 0.1, "reason": "r", "measured": "m"}
            for key in CLAIMS
            if key != "shared_interactions"
        ]
        records.append({"run": run, "claims": entries})
        (tmp_path / f"{run}.json").write_text(json.dumps(records[-1]))
    table = tmp_path / "scorecard_v.tsv"
    variants.scorecard_step(
        claims=[tmp_path / "a-1.json", tmp_path / "b-1.json"],
        interactions=files,
        table=table,
        variant="v",
        n_boot=200,
    )
    result = pd.read_csv(table, sep="\t", keep_default_na=False)
    assert len(result) == 2 * len(CLAIMS)
    sensitive = result[result.key == "higher_orders_sensitive"]
    assert (sensitive.verdict == "n/a").all() and sensitive.reason.str.contains("forward").all()
    shared = result[result.key == "shared_interactions"]
    assert (shared.verdict != "n/a").all()  # a and b are comparable: measured, not n/a
    kept = result[result.key == "phase1_drop"]
    assert (kept.verdict == "no").all()


# --------------------------------------------------------------------------- workflow


def job_counts(output: str) -> dict[str, int]:
    table = output.partition("Job stats:")[2]
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.fullmatch(r"(\S+)\s+(\d+)", line.strip())
        if match is None or match[1] == "total":
            break
        counts[match[1]] = int(match[2])
    return counts


def test_dry_run_redecomposes_every_checkpoint_of_every_run_per_variant(tmp_path):
    import yaml

    from harsanyi.config import load_study

    config = tmp_path / "variants.yaml"
    config.write_text(
        yaml.safe_dump({**tiny_config(variants=PUBLISHED_AND_QTHRES0), "results": str(tmp_path)})
    )
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--forceall", "--nolock", "--cores", "1"]
        + ["--configfile", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    counts = job_counts(done.stdout)
    study = load_study(config)
    checkpoints = sum(len(run.epochs) for run in study.runs)
    assert counts["extract"] == checkpoints  # no new forward pass for a variant
    assert counts["redecompose"] == 2 * checkpoints
    assert counts["scorecard_run"] == 3 * len(study.runs)
    assert counts["variant_scorecard"] == 2 and counts["variants_study"] == 1
    resources = yaml.safe_load((REPO / "workflow" / "resources.yaml").read_text())
    rule = None
    for line in done.stdout.splitlines():
        match = re.match(r"(?:localrule|rule) (\w+):", line.strip())
        if match:
            rule = match[1]
        elif line.strip().startswith("resources:") and rule in resources:
            if rule in ("redecompose", "variant_scorecard", "variants_study"):
                assert "gpu" not in line, line  # CPU only: no model runs
                assert f"mem_mb={resources[rule]['mem_mb']}," in line, line


@pytest.mark.slow
def test_tiny_study_with_variants_end_to_end(tmp_path_factory, tmp_path):
    """The finished tiny study run again with two variants: only the variants' jobs and the
    study tables of the new analysis id run; their files hold the same games, decomposed as
    the variant says, and every claim is scored under each."""
    import shutil

    import yaml
    from test_reruns import finished_tiny_study, snakemake

    from harsanyi.config import load_study
    from harsanyi.store import verify_results

    finished = finished_tiny_study(tmp_path_factory)
    shutil.copytree(finished / "results", tmp_path / "results")
    config = tmp_path / "variants.yaml"
    config.write_text(yaml.safe_dump(tiny_config(variants=PUBLISHED_AND_QTHRES0)))
    output = snakemake(tmp_path, "--cores", "2", config=config)
    assert "rule extract:" not in output and "rule train:" not in output
    study = load_study(config, check_data=False)
    results = tmp_path / "results"
    for run in study.runs:
        run_dir = results / run.dataset / "runs" / run.name
        main = run_dir / "interactions" / study.extraction_id(run)
        for name, settings in study.variants.items():
            files = sorted((run_dir / "interactions" / study.variant_id(run, name)).glob("*.h5"))
            assert [int(f.stem.split("_")[1]) for f in files] == run.epochs
            for path in files:
                verify_results(path)
                variant, source = read_results(path), read_results(main / path.name)
                np.testing.assert_array_equal(variant.v, source.v)
                solver = variant.meta["solver"]
                assert solver["name"] == settings.get("solver", "exact")
                assert solver["qthres"] == settings.get("qthres", 0.02)
    study_dir = results / "studies" / study.study_id / study.analysis_id
    for name in study.variants:
        card_ = pd.read_csv(study_dir / f"scorecard_{name}.tsv", sep="\t", keep_default_na=False)
        assert len(card_) == len(CLAIMS) * len(study.runs)
        assert (card_[card_.key == "higher_orders_sensitive"].verdict == "n/a").all()
    table = pd.read_csv(study_dir / "scorecard_variants.tsv", sep="\t", keep_default_na=False)
    assert len(table) == len(CLAIMS) * len(study.runs)
    assert {"verdict_main", "verdict_published", "verdict_qthres0"} <= set(table.columns)
