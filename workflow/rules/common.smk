import os
import sys
import time
from pathlib import Path

import yaml

from snakemake.exceptions import WorkflowError

from harsanyi.config import (
    VARIANT_KEYS,
    ConfigError,
    check_extraction_memory,
    check_types,
    refuse_templating,
    resolve,
)
from harsanyi.extraction import check_before_training
from harsanyi.io import settings_hash
from harsanyi.provenance import record_workflow_dir

# The checkout this workflow's files come from: workflow.basedir is the working directory's
# Snakefile when this workflow runs as a module of a deployed one (harsanyi deploy).
WORKFLOW_DIR = Path(workflow.current_basedir).parents[1]
# Provenance names the commit of this workflow checkout (not of wherever harsanyi is
# installed from); jobs inherit the variable, locally and under SLURM.
record_workflow_dir(WORKFLOW_DIR)
# When this run of the workflow started: its failed jobs are those whose logs are newer.
WORKFLOW_START = time.time()
RESOURCES_FILE = WORKFLOW_DIR / "workflow" / "resources.yaml"
# Resources of every rule (gpu, mem_mb, runtime); workflow/resources.yaml says why there.
RESOURCES = yaml.safe_load(RESOURCES_FILE.read_text())

try:
    refuse_templating(workflow.overwrite_configfiles or ["config/config.yaml"])
    check_types(config)
    STUDY = resolve(config)
    # the mem_mb of an extract job: a command-line --set-resources, else resources.yaml
    extract_mem_mb = (
        workflow.resource_settings.overwrite_resources.get("extract") or {}
    ).get("mem_mb")
    extract_mem_mb = getattr(extract_mem_mb, "value", extract_mem_mb)
    if extract_mem_mb is None:
        extract_mem_mb = RESOURCES["extract"]["mem_mb"]
    if not isinstance(extract_mem_mb, (int, float)):
        extract_mem_mb = None
    for estimate in check_extraction_memory(STUDY, extract_mem_mb):
        print(f"extraction estimate: {estimate.describe()}", file=sys.stderr)
except ConfigError as error:
    raise WorkflowError(f"config: {error}") from None

if config.get("group_writable"):
    from harsanyi.sharing import apply_group_umask

    apply_group_umask()  # and every job it starts: HARSANYI_GROUP_UMASK

RESULTS = str(STUDY.results)
RUNS = {run.name: run for run in STUDY.runs}
STUDY_ID = STUDY.study_id
# The study's tables and figures: under STUDY_ROOT/<a-id>, STUDY_DIR below.
STUDY_ROOT = f"{RESULTS}/studies/{STUDY_ID}"
# Paths and hashes computed once: input functions ask for them thousands of times in a
# lab-scale study (a run's name hashes its settings).
RUN_DIRS = {run: f"{RESULTS}/{run.dataset}/runs/{name}" for name, run in RUNS.items()}
EXTRACTION_IDS = {run: STUDY.extraction_id(run) for run in STUDY.runs}
GAME_IDS = {run: STUDY.game_id(run) for run in STUDY.runs}
MANIFESTS = {
    name: f"{RESULTS}/{name}/samples/{plan.selection_id}.json"
    for name, plan in STUDY.datasets.items()
}


wildcard_constraints:
    dataset="|".join(STUDY.datasets),
    run="[A-Za-z0-9_.-]+-[0-9a-f]{12}",
    epoch="[0-9]{4}",
    xid="x-[0-9a-f]{12}",
    gid="g-[0-9a-f]{12}",
    sel="sel-[0-9a-f]{12}",
    sid="s-[0-9a-f]{12}",
    group="j-[0-9a-f]{12}",


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


# What would otherwise fail only after the trainings (a sample selection that cannot be
# made, a feature-map layer the model lacks) fails now, naming its key. A dataset whose
# manifest does not exist yet is loaded here once more for that; not again in every job that
# a cluster runs as a Snakemake of its own.
if workflow.is_main_process:
    try:
        for note in check_before_training(
            STUDY,
            skip_selection={n for n, path in MANIFESTS.items() if os.path.exists(path)},
        ):
            print(note, file=sys.stderr)
    except ValueError as error:
        raise WorkflowError(f"config: {error}") from None


def games_file(run, epoch):
    """The games file of one checkpoint of `run` (rule games)."""
    if epoch not in run.epochs:
        raise WorkflowError(f"run {run.name} has no checkpoint of epoch {epoch}")
    return f"{run_dir(run)}/games/{GAME_IDS[run]}/epoch_{epoch:04d}.h5"


def games_of(wildcards):
    """The games file an extract or redecompose job decomposes."""
    return games_file(run_of(wildcards), int(wildcards.epoch))


def run_games(wildcards):
    """The run's games files of its other checkpoints, as ancient inputs of a decomposition:
    the run's decompositions become ready together and go out as one SLURM array, not one
    sbatch call per checkpoint as each games job ends; being ancient, a newer games file of
    another checkpoint reruns nothing."""
    run = run_of(wildcards)
    return [
        ancient(games_file(run, epoch))
        for epoch in run.epochs
        if epoch != int(wildcards.epoch)
    ]


def interaction_files(run, xid=None):
    """The run's results files of extraction `xid`: its own (None) or a variant's."""
    if xid is None:
        xid = EXTRACTION_IDS[run]
    elif xid != EXTRACTION_IDS[run] and (run, xid) not in VARIANT_OF:
        raise WorkflowError(
            f"run {run.name}: {xid} is neither its extraction nor a variant"
        )
    return [
        f"{run_dir(run)}/interactions/{xid}/epoch_{epoch:04d}.h5"
        for epoch in run.epochs
    ]


# Decomposition variants (config `analysis.variants`): the stored games decomposed again under
# other settings, as results files of their own extraction id beside the run's own.
VARIANTS = STUDY.variants
VARIANT_IDS = {
    (run, name): STUDY.variant_id(run, name) for run in STUDY.runs for name in VARIANTS
}
VARIANT_OF = {(run, xid): name for (run, name), xid in VARIANT_IDS.items()}
# The decomposition settings of the main extraction and of each variant, for their tables.
VARIANT_SETTINGS = sorted_keys(
    {"main": {key: STUDY.extraction[key] for key in VARIANT_KEYS}, **VARIANTS}
)
# The variants' extraction ids (rule redecompose's only xids; "(?!)" matches nothing).
VARIANT_XIDS = "|".join(sorted(set(VARIANT_IDS.values()))) or "(?!)"


def variant_of(wildcards):
    """(run, variant name) of a redecompose job."""
    run = run_of(wildcards)
    name = VARIANT_OF.get((run, wildcards.xid))
    if name is None:
        raise WorkflowError(
            f"run {run.name}: {wildcards.xid} is not a variant's extraction"
        )
    return run, name


def variant_stage_files(name):
    """The first and last results files of every run under variant `name`."""
    files = []
    for run in STUDY.runs:
        paths = interaction_files(run, VARIANT_IDS[run, name])
        files += paths[:: len(paths) - 1 or 1]
    return files


def variant_claims(name):
    """Every run's claims under variant `name` (rule scorecard_run on its files)."""
    return [
        run_analysis(run, "scorecard_run", "claims.json", VARIANT_IDS[run, name])
        for run in STUDY.runs
    ]


def run_of(wildcards):
    return RUNS[wildcards.run]


SENSITIVITY_ID = STUDY.sensitivity_id


def sensitivity_files(run):
    """The run's sensitivity files (none unless the config enables sensitivity)."""
    if not STUDY.sensitivity["enabled"]:
        return []
    base = f"{run_dir(run)}/sensitivity/{EXTRACTION_IDS[run]}/{SENSITIVITY_ID}"
    return [f"{base}/epoch_{epoch:04d}.json" for epoch in STUDY.sensitivity_epochs(run)]


def run_sensitivity_games(wildcards):
    """The run's other sensitivity games files, as ancient inputs (as `run_games`): its
    sensitivity decompositions go out together, as one SLURM array."""
    run = run_of(wildcards)
    base = f"{run_dir(run)}/sensitivity/{wildcards.xid}/{wildcards.sid}/games"
    return [
        ancient(f"{base}/epoch_{epoch:04d}.h5")
        for epoch in STUDY.sensitivity_epochs(run)
        if epoch != int(wildcards.epoch)
    ]


# Groups of runs that differ only in their architecture, by j-<hash> (config `joint`).
JOINT_GROUPS = STUDY.joint_groups() if STUDY.joint["enabled"] else {}


def joint_games(group, epoch):
    """The games files of one checkpoint of every run of a joint group."""
    return [games_file(run, epoch) for run in JOINT_GROUPS[group]]


def joint_inputs(group, epoch):
    """The interaction files of one checkpoint of every run of a joint group."""
    files = []
    for run in JOINT_GROUPS[group]:
        if epoch not in run.epochs:
            raise WorkflowError(
                f"joint group {group}: run {run.name} has no epoch {epoch}"
            )
        xid = EXTRACTION_IDS[run]
        files.append(f"{run_dir(run)}/interactions/{xid}/epoch_{epoch:04d}.h5")
    return files


def joint_files():
    """Every joint extraction of the study, with the separate files it joins."""
    joint, separate = [], []
    for group, runs in JOINT_GROUPS.items():
        for epoch in STUDY.joint_epochs(runs):
            joint.append(
                f"{RESULTS}/{runs[0].dataset}/joint/{group}/epoch_{epoch:04d}.h5"
            )
            separate += joint_inputs(group, epoch)
    return joint, sorted(set(separate))


# The study's joint extractions and the interaction files they join, computed once.
JOINT_FILES, JOINT_SEPARATE_FILES = joint_files()


def all_targets():
    targets = [f"{STUDY_DIR}/study.json"] + [run_index(run) for run in STUDY.runs]
    targets += [f"{STUDY_DIR}/two_phase.tsv", f"{STUDY_DIR}/two_phase.png"]
    for run in STUDY.runs:
        targets.append(run_analysis(run, "two_phase_run", "two_phase.png"))
        # a target of its own: an index written before pictures existed is up to date
        # without it (an up-to-date job's missing inputs are not made again)
        targets.append(run_analysis(run, "pictures_run", "picture.png"))
    return targets + STUDY_TARGETS


# Analysis settings are part of every path they determine, as x-<hash> is for extraction:
# a per-run table lives under run_analysis(run, rule, ...) = .../analysis/<x-id>/<a-id>/, the
# a-id hashing the analysis settings its rule reads (RUN_RULE_SETTINGS), and the study tables
# and figures under STUDY_DIR = studies/<study-id>/<a-id of all analysis settings>/.  Other
# settings therefore compute new tables beside the old ones and never overwrite them.
# The analysis settings each per-run rule reads; its params may read only these (SETTINGS_OF
# raises a KeyError at start-up otherwise), so its path names all that its tables depend on.
RUN_RULE_SETTINGS = {
    "two_phase_run": ("salient_ratio", "shown_checkpoints", "gap_fraction"),
    "jaccard_run": (),
    "ood_run": ("salient_ratio", "bootstrap"),
    "theory_run": ("salient_ratio",),
    "shapley_run": (),
    "attributions_run": (),
    "pictures_run": ("shown_checkpoints",),
    "scorecard_run": ("salient_ratio", "jaccard_variant", "bootstrap"),
}
SETTINGS_OF = {
    name: {key: STUDY.analysis[key] for key in keys}
    for name, keys in RUN_RULE_SETTINGS.items()
}
# scorecard_run reads the sensitivity files when there are any: their settings name its path.
if STUDY.sensitivity["enabled"]:
    SETTINGS_OF["scorecard_run"]["sensitivity"] = STUDY.sensitivity
RUN_ANALYSIS_IDS = {
    name: f"a-{settings_hash(settings)}" for name, settings in SETTINGS_OF.items()
}
STUDY_DIR = f"{STUDY_ROOT}/{STUDY.analysis_id}"


def run_analysis(run, step, name, xid=None):
    """The file `name` that the per-run rule `step` writes for `run` (from the results files
    of extraction `xid`: the run's own when None, or a variant's)."""
    xid = xid or EXTRACTION_IDS[run]
    return f"{run_dir(run)}/analysis/{xid}/{RUN_ANALYSIS_IDS[step]}/{name}"


def run_output(step, name):
    """Output pattern of the per-run rule `step` (wildcards dataset, run, xid)."""
    analysis = f"{RESULTS}/{{dataset}}/runs/{{run}}/analysis/{{xid}}"
    return f"{analysis}/{RUN_ANALYSIS_IDS[step]}/{name}"


def run_benchmark(step):
    aid = RUN_ANALYSIS_IDS[step]
    return f"{RESULTS}/benchmarks/{step}/{{dataset}}/{{run}}-{{xid}}-{aid}.tsv"


def run_index(run):
    """The file that lists a run's analysis tables; its rule joins the run's analyses into
    one group job (one sbatch call per run instead of one per analysis)."""
    return f"{run_dir(run)}/analysis/{EXTRACTION_IDS[run]}/analyses-{STUDY.analysis_id}.json"


def run_log(step):
    aid = RUN_ANALYSIS_IDS[step]
    return f"{RESULTS}/logs/{step}/{{dataset}}/{{run}}-{{xid}}-{aid}.log"


# One table of every per-run analysis: what run_analyses waits for.
RUN_TABLES = {
    "two_phase_run": "order_strength.tsv",
    "jaccard_run": "jaccard.tsv",
    "ood_run": "ood_verdict.json",
    "theory_run": "theory_fit.tsv",
    "shapley_run": "shapley.tsv",
    "attributions_run": "attributions.tsv",
    "pictures_run": "picture.png",
    "scorecard_run": "claims.json",
}


def run_tables(run):
    steps = [step for step in RUN_TABLES if step != "ood_run" or run in NOISY_RUNS]
    return {step: run_analysis(run, step, RUN_TABLES[step]) for step in steps}
