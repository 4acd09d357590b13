"""Store tools: study records, `store studies`, `store du`, `store gc` (dry run by default)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harsanyi.cli import main
from harsanyi.config import load_study
from harsanyi.maintenance import find_garbage, read_study_records, study_record, write_study_record
from harsanyi.store import run_dirname, write_manifest

REPO = Path(__file__).resolve().parents[1]
RUN_AIDS = {"two_phase_run": "a-111111111111", "jaccard_run": "a-222222222222"}


@pytest.fixture
def store(tmp_path) -> dict:
    """The tiny study's runs recorded by a study, plus one of everything gc must collect."""
    root = tmp_path / "results"
    study = load_study(REPO / "tests/data/tiny.yaml")
    record = study_record(study, RUN_AIDS)
    write_study_record(root / "studies" / study.study_id / study.analysis_id / "study.json", record)
    paths = {"root": root}
    for run in study.runs:
        run_dir = root / run.dataset / "runs" / run.name
        write_manifest(run_dir, run.settings)
        xid = study.extraction_id(run)
        (run_dir / "games" / study.game_id(run)).mkdir(parents=True)
        (run_dir / "interactions" / xid).mkdir(parents=True)
        (run_dir / "interactions" / xid / "epoch_0000.h5").write_bytes(b"x" * 100)
        for aid in RUN_AIDS.values():
            (run_dir / "analysis" / xid / aid).mkdir(parents=True)
    used = root / "digits" / "runs" / study.runs[0].name
    paths["used"] = used
    paths["stale_x"] = used / "interactions" / "x-000000000000"
    paths["stale_x"].mkdir()
    (paths["stale_x"] / "epoch_0000.h5").write_bytes(b"y" * 1000)
    paths["stale_g"] = used / "games" / "g-000000000000"  # games of other settings
    paths["stale_g"].mkdir()
    paths["stale_x_analysis"] = used / "analysis" / "x-000000000000"
    paths["stale_x_analysis"].mkdir()
    xid = study.extraction_id(study.runs[0])
    paths["stale_a"] = used / "analysis" / xid / "a-999999999999"
    paths["stale_a"].mkdir()
    # sensitivity files of the recorded settings are kept, of other settings collected
    (used / "sensitivity" / xid / study.sensitivity_id).mkdir(parents=True)
    paths["stale_s"] = used / "sensitivity" / xid / "s-999999999999"
    paths["stale_s"].mkdir()
    paths["stale_j"] = root / "digits" / "joint" / "j-999999999999"  # no recorded group
    paths["stale_j"].mkdir(parents=True)
    unused_settings = {**study.runs[0].settings, "seed": 99}
    paths["unused_run"] = root / "digits" / "runs" / run_dirname(unused_settings)
    write_manifest(paths["unused_run"], unused_settings)
    samples = root / "digits" / "samples"
    samples.mkdir(parents=True)
    (samples / f"{study.datasets['digits'].selection_id}.json").write_text("{}")
    paths["unused_sel"] = samples / "sel-000000000000.json"
    paths["unused_sel"].write_text("{}")
    paths["finished_resume"] = root / "digits" / "resume" / study.runs[0].name
    paths["finished_resume"].mkdir(parents=True)
    # a used run still training (no run.json yet): its resume state must be kept
    running = root / "digits" / "runs" / study.runs[1].name / "run.json"
    running.unlink()
    paths["running_resume"] = root / "digits" / "resume" / study.runs[1].name
    paths["running_resume"].mkdir(parents=True)
    paths["study"] = study
    age(root, days=2)  # older than gc's grace period
    return paths


def age(root: Path, days: float) -> None:
    """Every path under `root` last modified `days` ago."""
    then = time.time() - days * 86400
    for directory, subdirectories, names in os.walk(root):
        for name in subdirectories + names:
            os.utime(Path(directory) / name, (then, then), follow_symlinks=False)


STALE = [
    "stale_g",
    "stale_x",
    "stale_x_analysis",
    "stale_a",
    "stale_s",
    "stale_j",
    "unused_run",
    "unused_sel",
    "finished_resume",
]


def test_gc_finds_exactly_what_no_study_uses(store):
    found = {item.path for item in find_garbage(store["root"])}
    assert found == {store[key] for key in STALE}


def test_gc_is_a_dry_run_unless_applied(store, capsys):
    assert main(["store", "gc", str(store["root"])]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing removed" in out
    assert all(store[key].exists() for key in STALE)
    assert main(["store", "gc", str(store["root"]), "--apply"]) == 0
    assert not any(store[key].exists() for key in STALE)
    assert store["running_resume"].exists() and store["used"].exists()
    assert find_garbage(store["root"]) == []


def test_gc_refuses_a_store_without_study_records(store, capsys):
    for record in store["root"].glob("studies/*/*/study.json"):
        record.unlink()
    assert main(["store", "gc", str(store["root"]), "--apply"]) == 1
    assert "no study records" in capsys.readouterr().err
    assert all(store[key].exists() for key in STALE)


def test_studies_lists_each_study_and_its_runs(store, capsys):
    (record,) = read_study_records(store["root"])
    assert record["provenance"]["user"]
    assert main(["store", "studies", str(store["root"]), "--runs", "--format", "tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]
    assert {row["run"] for row in rows} == {run.name for run in store["study"].runs}
    assert {row["study_id"] for row in rows} == {store["study"].study_id}
    assert main(["store", "studies", str(store["root"])]) == 0
    assert "2 runs" in capsys.readouterr().out


def test_du_adds_up_every_part(store, capsys):
    assert main(["store", "du", str(store["root"]), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    interactions = sum(r["bytes"] for r in rows if r["kind"] == "interactions")
    assert interactions == 2 * 100 + 1000
    assert {"studies", "sample manifests", "resume states", "run files"} <= {
        r["kind"] for r in rows
    }
    assert main(["store", "du", str(store["root"])]) == 0
    assert "largest runs" in capsys.readouterr().out


def test_gc_keeps_what_changed_within_its_grace_period(store):
    """A study running now writes files no finished record names yet: they are kept."""
    fresh = store["stale_x"] / "epoch_0001.h5"
    fresh.write_bytes(b"z")  # written a moment ago: the whole x- directory is kept
    found = {item.path for item in find_garbage(store["root"])}
    assert store["stale_x"] not in found and store["stale_a"] in found
    assert store["stale_x"] in {item.path for item in find_garbage(store["root"], grace_hours=0)}
    assert main(["store", "gc", str(store["root"]), "--grace-hours", "0"]) == 0


def test_gc_never_follows_a_link_out_of_the_store(store, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    outside_run = elsewhere / "runs" / "digits-lenet-s7-000000000000"
    outside_run.mkdir(parents=True)
    (outside_run / "keep.txt").write_text("not the store's")
    (store["root"] / "cifar10").symlink_to(elsewhere, target_is_directory=True)
    target = tmp_path / "leaf-target"
    target.mkdir()
    (target / "epoch_0000.h5").write_bytes(b"data")
    leaf = store["used"] / "interactions" / "x-777777777777"
    leaf.symlink_to(target, target_is_directory=True)
    age(store["root"], days=2)
    age(tmp_path / "elsewhere", days=2)
    found = {item.path for item in find_garbage(store["root"])}
    assert not any("cifar10" in str(path) for path in found) and leaf not in found
    assert main(["store", "gc", str(store["root"]), "--apply"]) == 0
    assert (outside_run / "keep.txt").exists() and (target / "epoch_0000.h5").exists()
    assert leaf.is_symlink()


def test_gc_keeps_every_games_file_of_runs_recorded_before_games_files(store):
    import json

    (record_path,) = store["root"].glob("studies/*/*/study.json")
    record = json.loads(record_path.read_text())
    for run in record["runs"]:
        del run["games"]  # a record written before games files existed
    record_path.write_text(json.dumps(record))
    age(store["root"], days=2)
    found = {item.path for item in find_garbage(store["root"])}
    assert store["stale_g"] not in found
    assert found == {store[key] for key in STALE if key != "stale_g"}


def test_an_abandoned_study_releases_its_runs_and_a_running_or_finished_one_does_not(store):
    """A study recorded at its start keeps its runs; one that never finished and of which
    nothing changed in `abandoned_days` keeps nothing, and its study directory goes too."""
    (record,) = store["root"].glob("studies/*/*/study.json")
    runs = [store["root"] / "digits" / "runs" / run.name for run in store["study"].runs]
    assert {item.path for item in find_garbage(store["root"])} == {store[k] for k in STALE}
    age(store["root"], days=40)
    found = {item.path for item in find_garbage(store["root"])}
    assert record.parent in found and set(runs) <= found  # abandoned: nothing is kept
    reasons = {item.path: item.reason for item in find_garbage(store["root"])}
    assert reasons[record.parent].startswith("study abandoned: never finished")
    # a study still running writes into its runs: one file of a run keeps every run
    (runs[1] / "metrics.tsv").write_text("epoch\n")
    found = {item.path for item in find_garbage(store["root"])}
    assert record.parent not in found and not set(runs) & found
    age(store["root"], days=40)
    (record.parent / "scorecard.tsv").write_text("run\n")  # a finished study is kept for good
    age(store["root"], days=40)
    found = {item.path for item in find_garbage(store["root"])}
    assert record.parent not in found and not set(runs) & found
    assert {item.path for item in find_garbage(store["root"], abandoned_days=1)} == found
    (record.parent / "scorecard.tsv").unlink()
    age(store["root"], days=40)
    assert record.parent in {item.path for item in find_garbage(store["root"])}
    assert record.parent not in {
        item.path for item in find_garbage(store["root"], abandoned_days=50)
    }
    with pytest.raises(ValueError, match="abandoned_days"):
        find_garbage(store["root"], abandoned_days=0)
