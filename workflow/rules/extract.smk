# The games of a checkpoint: v on every mask of every explained sample (harsanyi.extraction.
# evaluate_games). The only extraction step that runs the model, so the only one with a GPU.
rule games:
    input:
        checkpoints=f"{RESULTS}/{{dataset}}/runs/{{run}}/checkpoints",
        metrics=f"{RESULTS}/{{dataset}}/runs/{{run}}/metrics.tsv",
        samples=lambda wildcards: manifest_path(wildcards.dataset),
    output:
        f"{RESULTS}/{{dataset}}/runs/{{run}}/games/{{gid}}/epoch_{{epoch}}.h5",
    log:
        f"{RESULTS}/logs/games/{{dataset}}/{{run}}/{{gid}}/{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/games/{{dataset}}/{{run}}/{{gid}}/{{epoch}}.tsv"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["games"],
    params:
        run=lambda wildcards: sorted_keys(run_of(wildcards).settings),
        name=lambda wildcards: wildcards.run,
        root=lambda wildcards: STUDY.datasets[wildcards.dataset].root,
        extraction=lambda wildcards: sorted_keys(
            STUDY.games_job_settings(wildcards.dataset, run_of(wildcards).arch)
        ),
        epoch=lambda wildcards: int(wildcards.epoch),
    script:
        "../../scripts/games.py"


# The sparse AND-OR decomposition of a checkpoint's stored games (harsanyi.extraction.
# decompose): CPU only, no model.
rule extract:
    input:
        games=games_of,
        run_games=run_games,
    output:
        f"{RESULTS}/{{dataset}}/runs/{{run}}/interactions/{{xid}}/epoch_{{epoch}}.h5",
    log:
        f"{RESULTS}/logs/extract/{{dataset}}/{{run}}/{{xid}}/{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract/{{dataset}}/{{run}}/{{xid}}/{{epoch}}.tsv"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["extract"],
    params:
        extraction=lambda wildcards: sorted_keys(
            STUDY.extraction_settings(wildcards.dataset, run_of(wildcards).arch)
        ),
    script:
        "../../scripts/extract.py"


# The games of the sensitivity analysis, per checkpoint (config `sensitivity`; harsanyi.
# extraction.evaluate_sensitivity_games): v on every mask of the clean and perturbed inputs.
# It runs the model (PGD needs its gradients), so it is the sensitivity step with a GPU.
rule sensitivity_games:
    input:
        checkpoints=f"{RESULTS}/{{dataset}}/runs/{{run}}/checkpoints",
        samples=lambda wildcards: manifest_path(wildcards.dataset),
    output:
        f"{RESULTS}/{{dataset}}/runs/{{run}}/sensitivity/{{xid}}/{{sid}}/games/epoch_{{epoch}}.h5",
    log:
        f"{RESULTS}/logs/sensitivity_games/{{dataset}}/{{run}}/{{xid}}/{{sid}}/{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sensitivity_games/{{dataset}}/{{run}}/{{xid}}/{{sid}}/{{epoch}}.tsv"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["sensitivity_games"],
    params:
        run=lambda wildcards: sorted_keys(run_of(wildcards).settings),
        name=lambda wildcards: wildcards.run,
        root=lambda wildcards: STUDY.datasets[wildcards.dataset].root,
        extraction=lambda wildcards: sorted_keys(
            STUDY.extraction_settings(wildcards.dataset, run_of(wildcards).arch)
        ),
        sensitivity=sorted_keys(STUDY.sensitivity),
        epoch=lambda wildcards: int(wildcards.epoch),
    script:
        "../../scripts/sensitivity_games.py"


# Sensitivity of the interactions to input perturbations, per checkpoint (harsanyi.extraction.
# decompose_sensitivity): the exact LPs of the stored clean and perturbed games, CPU only.
rule sensitivity:
    input:
        games=f"{RESULTS}/{{dataset}}/runs/{{run}}/sensitivity/{{xid}}/{{sid}}/games/epoch_{{epoch}}.h5",
        run_games=run_sensitivity_games,
    output:
        f"{RESULTS}/{{dataset}}/runs/{{run}}/sensitivity/{{xid}}/{{sid}}/epoch_{{epoch}}.json",
    log:
        f"{RESULTS}/logs/sensitivity/{{dataset}}/{{run}}/{{xid}}/{{sid}}/{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sensitivity/{{dataset}}/{{run}}/{{xid}}/{{sid}}/{{epoch}}.tsv"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["sensitivity"],
    params:
        qthres=lambda wildcards: STUDY.extraction_settings(
            wildcards.dataset, run_of(wildcards).arch
        )["qthres"],
        sensitivity=sorted_keys(STUDY.sensitivity),
    script:
        "../../scripts/sensitivity.py"


# Joint extraction of the runs that differ only in their architecture (config `joint`;
# harsanyi.analyses.joint.extract_step), from their games files (CPU only).
rule joint_extract:
    input:
        interactions=lambda wildcards: joint_games(
            wildcards.group, int(wildcards.epoch)
        ),
    output:
        f"{RESULTS}/{{dataset}}/joint/{{group}}/epoch_{{epoch}}.h5",
    log:
        f"{RESULTS}/logs/joint_extract/{{dataset}}/{{group}}/{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/joint_extract/{{dataset}}/{{group}}/{{epoch}}.tsv"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["joint_extract"],
    params:
        alpha=STUDY.joint["alpha"],
        qthres=STUDY.extraction["qthres"],
        samples_per_split=STUDY.joint["samples_per_split"],
    script:
        "../../scripts/joint_extract.py"


# A decomposition variant (config `analysis.variants`): a checkpoint's games decomposed
# under the variant's settings (harsanyi.extraction.redecompose), as a results file of the
# variant's own extraction id: no model, no forward pass, CPU only.
rule redecompose:
    input:
        games=games_of,
        run_games=run_games,
    output:
        f"{RESULTS}/{{dataset}}/runs/{{run}}/interactions/{{xid}}/epoch_{{epoch}}.h5",
    log:
        f"{RESULTS}/logs/redecompose/{{dataset}}/{{run}}/{{xid}}/{{epoch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/redecompose/{{dataset}}/{{run}}/{{xid}}/{{epoch}}.tsv"
    wildcard_constraints:
        xid=VARIANT_XIDS,
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["redecompose"],
    params:
        extraction=lambda wildcards: sorted_keys(
            STUDY.variant_settings(*variant_of(wildcards))
        ),
    script:
        "../../scripts/redecompose.py"


# A variant's files match extract's output pattern too: they are redecompose's.
ruleorder: redecompose > extract
