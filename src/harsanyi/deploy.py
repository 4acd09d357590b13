"""A lab member's own working directory for the workflow, pointing at a shared results store.

`deploy(dest, results=...)` lays out what `snakedeploy deploy-workflow` makes for a workflow
of the Snakemake catalog, from a local checkout (no network): a `Snakefile` that uses this
workflow as a module (`module harsanyi: snakefile: <checkout>/Snakefile`, `use rule * from
harsanyi`), the study config in `config/config.yaml` with `results:` set to the store, and
`profiles/default` (the workflow profile: rerun triggers) and `profiles/slurm` (its SLURM
logs under the store).  Only the results store is shared: each member's working directory
keeps its own `.snakemake/` state and lock.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

import harsanyi
from harsanyi.config import resolve

SNAKEFILE = """\
# A working directory of the harsanyi workflow (written by `harsanyi deploy`): the study
# config is config/config.yaml, the results go to its `results:` (the lab's store).
#
#   snakemake --cores 2                       # here, on this machine
#   snakemake --profile profiles/slurm        # on the cluster
import time

from snakemake.utils import min_version

min_version("9.0")
WORKFLOW_START = time.time()


configfile: "config/config.yaml"


module harsanyi:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from harsanyi


# A module's own onsuccess and onerror do not run: the study's last lines and its failed
# jobs' reasons are said here.
onsuccess:
    from harsanyi.deploy import study_finished

    study_finished(config, workflow.overwrite_configfiles)


onerror:
    from harsanyi.deploy import study_failed

    study_failed(config, WORKFLOW_START)
"""


def workflow_checkout() -> Path:
    """The checkout the installed package comes from (an editable install of the repository),
    which holds the workflow; ValueError where there is none."""
    root = Path(harsanyi.__file__).resolve().parents[2]
    if not (root / "Snakefile").is_file() or not (root / "workflow" / "rules").is_dir():
        raise ValueError(
            f"no workflow next to the installed package ({root}): install harsanyi from a "
            "clone with `pip install -e .`, or give the clone with --workflow"
        )
    return root


def deploy(
    dest: str | Path,
    *,
    results: str | Path,
    config: str | Path | None = None,
    workflow: str | Path | None = None,
) -> Path:
    """Write a working directory at `dest` (new or empty) for the workflow in `workflow`
    (default: `workflow_checkout()`), its study config copied from `config` (default: the
    workflow's `config/config.yaml`) with `results` made absolute; returns `dest`.

    ValueError names what is wrong before anything is written: `dest` not empty, a config
    that is not a study config, a workflow directory without a Snakefile."""
    dest = Path(dest).expanduser().absolute()
    root = Path(workflow).expanduser().resolve() if workflow else workflow_checkout()
    if not (root / "Snakefile").is_file():
        raise ValueError(f"{root}: no Snakefile (give the workflow's clone)")
    source = Path(config) if config else root / "config" / "config.yaml"
    text = source.read_text()
    study = yaml.safe_load(text)
    if not isinstance(study, dict) or "datasets" not in study:
        raise ValueError(f"{source}: not a study config (no `datasets`)")
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest}: exists and is not empty; give a new directory")
    store = Path(results).expanduser().absolute()
    line = f"results: {store}"
    if re.search(r"^results:.*$", text, flags=re.M):
        text = re.sub(r"^results:.*$", line, text, count=1, flags=re.M)
    else:
        text = f"{line}\n{text}"

    (dest / "config").mkdir(parents=True, exist_ok=True)
    (dest / "config" / "config.yaml").write_text(text)
    (dest / "Snakefile").write_text(SNAKEFILE.format(snakefile=root / "Snakefile"))
    shutil.copytree(root / "profiles" / "default", dest / "profiles" / "default")
    shutil.copytree(root / "profiles" / "slurm", dest / "profiles" / "slurm")
    slurm = dest / "profiles" / "slurm" / "config.yaml"
    slurm.write_text(
        re.sub(
            r"^slurm-logdir:.*$",
            f"slurm-logdir: {store / 'logs' / 'slurm'}",
            slurm.read_text(),
            flags=re.M,
        )
    )
    return dest


def study_dir(config: dict) -> Path:
    """Where a study config's tables and figures land:
    `<results>/studies/<study id>/<analysis id>`."""
    study = resolve(config, check_data=False)
    return Path(study.results) / "studies" / study.study_id / study.analysis_id


def study_finished(config: dict, configfiles=()) -> None:
    """The workflow's last lines on success: where to look (`where_to_look`)."""
    from snakemake.logging import logger

    from harsanyi.analyses.scorecard import where_to_look

    logger.info(where_to_look(study_dir(config), configfiles or ()))


def study_failed(config: dict, since: float) -> None:
    """The workflow's last lines on failure: one per failed job of this run (rule, run,
    reason, logs) and the command that lists them all."""
    from snakemake.logging import logger

    from harsanyi.jobs import failed_jobs

    results = resolve(config, check_data=False).results
    for job in failed_jobs(results, since=since):
        logger.error(job.one_line())
    logger.error(f"every failed job with its log's last lines: harsanyi failed {results}")
