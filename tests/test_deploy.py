"""`harsanyi deploy`: a lab member's own working directory (snakedeploy's layout: the workflow
as a module, the study config in config/, the profiles), its results in the shared store."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harsanyi.cli import main
from harsanyi.deploy import deploy

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "data" / "tiny.yaml"


def planned_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Job counts of `snakemake -n` in `workdir`."""
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = done.stdout.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_deploy_writes_a_working_directory_on_the_store(tmp_path, capsys):
    store = tmp_path / "store"
    argv = ["deploy", str(tmp_path / "me"), "--results", str(store), "--config", str(TINY)]
    assert main(argv) == 0
    me = tmp_path / "me"
    config = yaml.safe_load((me / "config" / "config.yaml").read_text())
    assert config["results"] == str(store) and config["study"] == "tiny"
    assert f'"{REPO / "Snakefile"}"' in (me / "Snakefile").read_text()
    assert (me / "profiles" / "default" / "config.yaml").is_file()
    slurm = yaml.safe_load((me / "profiles" / "slurm" / "config.yaml").read_text())
    assert slurm["slurm-logdir"] == str(store / "logs" / "slurm")
    assert "python3 -m snakemake --profile profiles/slurm" in capsys.readouterr().out


def test_deploy_refuses_before_writing(tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="used: exists and is not empty"):
        deploy(tmp_path / "used", results=tmp_path / "store", config=TINY)
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\n")
    with pytest.raises(ValueError, match="bad.yaml: not a study config"):
        deploy(tmp_path / "new", results=tmp_path / "store", config=bad)
    assert not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="no Snakefile"):
        deploy(tmp_path / "new", results=tmp_path / "store", workflow=tmp_path)


def test_the_deployed_directory_plans_the_study_the_repository_plans(tmp_path):
    """The module wiring: the same jobs as the repository's own Snakefile on the same config
    and store."""
    store = tmp_path / "store"
    me = deploy(tmp_path / "me", results=store, config=TINY)
    deployed = planned_jobs(me)
    here = planned_jobs(REPO, "--configfile", str(TINY), "--config", f"results={store}")
    assert deployed == here and deployed["train"] == 2
