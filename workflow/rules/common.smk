import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from harsanyi.config import ConfigError, resolve

try:
    STUDY = resolve(config)
except ConfigError as error:
    raise WorkflowError(f"config: {error}") from None

RESULTS = str(STUDY.results)
RUNS = {run.name: run for run in STUDY.runs}
STUDY_ID = STUDY.study_id
STUDY_DIR = f"{RESULTS}/studies/{STUDY_ID}"
# Paths and hashes computed once: input functions ask for them thousands of times in a
# lab-scale study (a run's name hashes its settings).
RUN_DIRS = {run: f"{RESULTS}/{run.dataset}/runs/{name}" for name, run in RUNS.items()}
EXTRACTION_IDS = {run: STUDY.extraction_id(run) for run in STUDY.runs}
MANIFESTS = {
    name: f"{RESULTS}/{name}/samples/{plan.selection_id}.json"
    for name, plan in STUDY.datasets.items()
}


wildcard_constraints:
    dataset="|".join(STUDY.datasets),
    run="[A-Za-z0-9_.-]+-[0-9a-f]{12}",
    epoch="[0-9]{4}",
    xid="x-[0-9a-f]{12}",
    sel="sel-[0-9a-f]{12}",


def sorted_keys(value):
    """`value` with the keys of every dict in sorted order.

    Snakemake compares params by repr, so without this the order of the keys in a config
    file would count as a change of settings and rerun every job (the hashes sort keys).
    """
    if isinstance(value, dict):
        return {key: sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(sorted_keys(item) for item in value)
    return value


def run_dir(run):
    return RUN_DIRS[run]


def manifest_path(dataset):
    return MANIFESTS[dataset]


def interaction_files(run):
    xid = EXTRACTION_IDS[run]
    return [
        f"{run_dir(run)}/interactions/{xid}/epoch_{epoch:04d}.h5"
        for epoch in run.epochs
    ]


def run_analysis(run, name):
    return f"{run_dir(run)}/analysis/{EXTRACTION_IDS[run]}/{name}"


def run_of(wildcards):
    return RUNS[wildcards.run]


def all_targets():
    targets = [f"{STUDY_DIR}/two_phase.tsv", f"{STUDY_DIR}/two_phase.png"]
    for run in STUDY.runs:
        targets.append(run_analysis(run, "two_phase.png"))
    return targets + STUDY_TARGETS
