# The analyses, one module each in harsanyi.analyses: rule <name>_run calls its run_step,
# <name>_study (and scorecard) its study_step, through scripts/analysis_step.py, with the
# rule's named inputs, outputs and params as keyword arguments.  Per-run tables live under
# run_analysis(run, rule, ...), study tables and figures under STUDY_DIR (common.smk).

from harsanyi.maintenance import study_record

NOISY_RUNS = [run for run in STUDY.runs if run.label_noise > 0]
SIMILARITY_STAGES = ["init", "final"]


STUDY_TARGETS = [
    f"{STUDY_DIR}/{name}.png"
    for name in [
        "jaccard",
        "similarity",
        "theory",
        "theory_ratio",
        "shapley",
        "attributions",
        "scorecard",
    ]
]
STUDY_TARGETS += [f"{STUDY_DIR}/ood.png"] if NOISY_RUNS else []
STUDY_TARGETS += (
    [f"{STUDY_DIR}/sensitivity.png"] if STUDY.sensitivity["enabled"] else []
)
STUDY_TARGETS += (
    [f"{STUDY_DIR}/joint.png", f"{STUDY_DIR}/joint_summary.tsv"] if JOINT_GROUPS else []
)
STUDY_TARGETS += [f"{STUDY_DIR}/scorecard_variants.tsv"] if VARIANTS else []
# The first and the last checkpoint of every run: the stages SIMILARITY_STAGES names.
STAGE_FILES = sorted(
    {
        path
        for run in STUDY.runs
        for path in interaction_files(run)[:: len(run.epochs) - 1 or 1]
    }
)


# The study's record in the store (harsanyi.maintenance): no input, so it is written when
# the study starts, and `harsanyi store gc` keeps what a running study is about to use.
# First of all jobs: a study's record is what keeps `store gc` off its runs while it runs.
rule study_record:
    output:
        f"{STUDY_DIR}/study.json",
    log:
        f"{STUDY_DIR}/logs/study_record.log",
    priority: 1000
    localrule: True
    conda:
        "../../envs/harsanyi.yaml"
    params:
        record=sorted_keys(study_record(STUDY, RUN_ANALYSIS_IDS)),
    script:
        "../../scripts/study_record.py"


rule run_analyses:
    input:
        unpack(lambda wildcards: run_tables(run_of(wildcards))),
    output:
        f"{RESULTS}/{{dataset}}/runs/{{run}}/analysis/{{xid}}/analyses-{STUDY.analysis_id}.json",
    log:
        f"{RESULTS}/logs/run_analyses/{{dataset}}/{{run}}-{{xid}}-{STUDY.analysis_id}.log",
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["run_analyses"],
    script:
        "../../scripts/run_analyses.py"


rule two_phase_run:
    input:
        interactions=lambda wildcards: interaction_files(run_of(wildcards)),
        metrics=f"{RESULTS}/{{dataset}}/runs/{{run}}/metrics.tsv",
    output:
        table=run_output("two_phase_run", "order_strength.tsv"),
        points=run_output("two_phase_run", "two_phase.json"),
        figure=report(
            run_output("two_phase_run", "two_phase.png"),
            caption="../report/two_phase_run.rst",
            category="Two-phase dynamics",
            subcategory="Runs",
            labels={"run": "{run}"},
        ),
    log:
        run_log("two_phase_run"),
    benchmark:
        run_benchmark("two_phase_run")
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["two_phase_run"],
    params:
        ratio=SETTINGS_OF["two_phase_run"]["salient_ratio"],
        shown=SETTINGS_OF["two_phase_run"]["shown_checkpoints"],
        fraction=SETTINGS_OF["two_phase_run"]["gap_fraction"],
    script:
        "../../scripts/analysis_step.py"


rule two_phase_study:
    input:
        tables=[
            run_analysis(run, "two_phase_run", "order_strength.tsv")
            for run in STUDY.runs
        ],
        metrics=[f"{run_dir(run)}/metrics.tsv" for run in STUDY.runs],
        points=[
            run_analysis(run, "two_phase_run", "two_phase.json") for run in STUDY.runs
        ],
    output:
        table=f"{STUDY_DIR}/two_phase.tsv",
        summary=f"{STUDY_DIR}/two_phase_summary.tsv",
        figure=report(
            f"{STUDY_DIR}/two_phase.png",
            caption="../report/two_phase_study.rst",
            category="Two-phase dynamics",
            subcategory="Study",
        ),
    log:
        f"{STUDY_DIR}/logs/two_phase_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/two_phase_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["two_phase_study"],
    params:
        shown=STUDY.analysis["shown_checkpoints"],
    script:
        "../../scripts/analysis_step.py"


rule jaccard_run:
    input:
        interactions=lambda wildcards: interaction_files(run_of(wildcards)),
    output:
        table=run_output("jaccard_run", "jaccard.tsv"),
    log:
        run_log("jaccard_run"),
    benchmark:
        run_benchmark("jaccard_run")
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["jaccard_run"],
    script:
        "../../scripts/analysis_step.py"


rule jaccard_study:
    input:
        tables=[run_analysis(run, "jaccard_run", "jaccard.tsv") for run in STUDY.runs],
        points=[
            run_analysis(run, "two_phase_run", "two_phase.json") for run in STUDY.runs
        ],
    output:
        table=f"{STUDY_DIR}/jaccard.tsv",
        figure=report(
            f"{STUDY_DIR}/jaccard.png",
            caption="../report/jaccard_study.rst",
            category="Generalisation",
        ),
    log:
        f"{STUDY_DIR}/logs/jaccard_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/jaccard_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["jaccard_study"],
    params:
        variant=STUDY.analysis["jaccard_variant"],
    script:
        "../../scripts/analysis_step.py"


rule ood_run:
    input:
        interactions=lambda wildcards: interaction_files(run_of(wildcards)),
    output:
        table=run_output("ood_run", "ood_strength.tsv"),
        verdict=run_output("ood_run", "ood_verdict.json"),
    log:
        run_log("ood_run"),
    benchmark:
        run_benchmark("ood_run")
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["ood_run"],
    params:
        ratio=SETTINGS_OF["ood_run"]["salient_ratio"],
        n_boot=SETTINGS_OF["ood_run"]["bootstrap"],
    script:
        "../../scripts/analysis_step.py"


rule ood_study:
    input:
        tables=[run_analysis(run, "ood_run", "ood_strength.tsv") for run in NOISY_RUNS],
        verdicts=[
            run_analysis(run, "ood_run", "ood_verdict.json") for run in NOISY_RUNS
        ],
        claims=[run_analysis(run, "scorecard_run", "claims.json") for run in NOISY_RUNS],
    output:
        table=f"{STUDY_DIR}/ood_strength.tsv",
        verdict_table=f"{STUDY_DIR}/ood_verdicts.tsv",
        figure=report(
            f"{STUDY_DIR}/ood.png",
            caption="../report/ood_study.rst",
            category="Label noise",
        ),
    log:
        f"{STUDY_DIR}/logs/ood_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/ood_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["ood_study"],
    script:
        "../../scripts/analysis_step.py"


rule similarity_study:
    input:
        interactions=STAGE_FILES,
    output:
        coverage=f"{STUDY_DIR}/similarity_coverage.tsv",
        orders=f"{STUDY_DIR}/similarity_orders.tsv",
        topk=f"{STUDY_DIR}/similarity_topk.tsv",
        samples=f"{STUDY_DIR}/similarity_samples.tsv",
        figure=report(
            f"{STUDY_DIR}/similarity.png",
            caption="../report/similarity_study.rst",
            category="Cross-model similarity",
        ),
    log:
        f"{STUDY_DIR}/logs/similarity_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/similarity_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["similarity_study"],
    params:
        stages=SIMILARITY_STAGES,
        label_noise={run.name: run.label_noise for run in STUDY.runs},
        tau=STUDY.analysis["salient_ratio"],
    script:
        "../../scripts/analysis_step.py"


rule theory_run:
    input:
        interactions=lambda wildcards: interaction_files(run_of(wildcards)),
    output:
        orders=run_output("theory_run", "theory_orders.tsv"),
        fit=run_output("theory_run", "theory_fit.tsv"),
    log:
        run_log("theory_run"),
    benchmark:
        run_benchmark("theory_run")
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["theory_run"],
    params:
        ratio=SETTINGS_OF["theory_run"]["salient_ratio"],
    script:
        "../../scripts/analysis_step.py"


rule theory_study:
    input:
        orders_tables=[
            run_analysis(run, "theory_run", "theory_orders.tsv") for run in STUDY.runs
        ],
        fit_tables=[
            run_analysis(run, "theory_run", "theory_fit.tsv") for run in STUDY.runs
        ],
        points=[
            run_analysis(run, "two_phase_run", "two_phase.json") for run in STUDY.runs
        ],
    output:
        orders=f"{STUDY_DIR}/theory_orders.tsv",
        fit=f"{STUDY_DIR}/theory_fit.tsv",
        figure=report(
            f"{STUDY_DIR}/theory.png",
            caption="../report/theory_study.rst",
            category="Theory",
        ),
        ratio=f"{STUDY_DIR}/theory_ratio.tsv",
        ratio_figure=report(
            f"{STUDY_DIR}/theory_ratio.png",
            caption="../report/theory_ratio.rst",
            category="Theory",
        ),
    log:
        f"{STUDY_DIR}/logs/theory_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/theory_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["theory_study"],
    params:
        shown=STUDY.analysis["shown_checkpoints"],
    script:
        "../../scripts/analysis_step.py"


rule shapley_run:
    input:
        interactions=lambda wildcards: interaction_files(run_of(wildcards))[-1],
    output:
        table=run_output("shapley_run", "shapley.tsv"),
        check=run_output("shapley_run", "shapley_check.json"),
    log:
        run_log("shapley_run"),
    benchmark:
        run_benchmark("shapley_run")
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["shapley_run"],
    script:
        "../../scripts/analysis_step.py"


rule shapley_study:
    input:
        tables=[run_analysis(run, "shapley_run", "shapley.tsv") for run in STUDY.runs],
        checks=[
            run_analysis(run, "shapley_run", "shapley_check.json")
            for run in STUDY.runs
        ],
    output:
        table=f"{STUDY_DIR}/shapley.tsv",
        figure=report(
            f"{STUDY_DIR}/shapley.png",
            caption="../report/shapley_study.rst",
            category="Attributions",
        ),
    log:
        f"{STUDY_DIR}/logs/shapley_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/shapley_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["shapley_study"],
    script:
        "../../scripts/analysis_step.py"


# Also scores a decomposition variant's files (xid a variant's): its sensitivity claim is then
# n/a (measuring it needs new forward passes), its loss-gap onset the run's own.
rule scorecard_run:
    input:
        interactions=lambda wildcards: interaction_files(
            run_of(wildcards), wildcards.xid
        ),
        sensitivity=lambda wildcards: (
            sensitivity_files(run_of(wildcards))
            if wildcards.xid == EXTRACTION_IDS[run_of(wildcards)]
            else []
        ),
        points=lambda wildcards: run_analysis(
            run_of(wildcards), "two_phase_run", "two_phase.json"
        ),
    output:
        claims=run_output("scorecard_run", "claims.json"),
    log:
        run_log("scorecard_run"),
    benchmark:
        run_benchmark("scorecard_run")
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["scorecard_run"],
    params:
        ratio=SETTINGS_OF["scorecard_run"]["salient_ratio"],
        variant=SETTINGS_OF["scorecard_run"]["jaccard_variant"],
        n_boot=SETTINGS_OF["scorecard_run"]["bootstrap"],
        label_noise=lambda wildcards: run_of(wildcards).label_noise,
        seed=lambda wildcards: run_of(wildcards).seed,
    script:
        "../../scripts/analysis_step.py"


rule scorecard:
    input:
        claims=[run_analysis(run, "scorecard_run", "claims.json") for run in STUDY.runs],
        samples=f"{STUDY_DIR}/similarity_samples.tsv",
    output:
        table=f"{STUDY_DIR}/scorecard.tsv",
        pooled=f"{STUDY_DIR}/scorecard_seeds.tsv",
        figure=report(
            f"{STUDY_DIR}/scorecard.png",
            caption="../report/scorecard.rst",
            category="Scorecard",
        ),
    log:
        f"{STUDY_DIR}/logs/scorecard.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/scorecard.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["scorecard"],
    params:
        n_boot=STUDY.analysis["bootstrap"],
    script:
        "../../scripts/analysis_step.py"


rule attributions_run:
    input:
        checkpoints=f"{RESULTS}/{{dataset}}/runs/{{run}}/checkpoints",
        samples=lambda wildcards: manifest_path(wildcards.dataset),
        interactions=lambda wildcards: interaction_files(run_of(wildcards))[-1],
    output:
        table=run_output("attributions_run", "attributions.tsv"),
    log:
        run_log("attributions_run"),
    benchmark:
        run_benchmark("attributions_run")
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["attributions_run"],
    params:
        run=lambda wildcards: sorted_keys(run_of(wildcards).settings),
        root=lambda wildcards: STUDY.datasets[wildcards.dataset].root,
        extraction=lambda wildcards: sorted_keys(
            STUDY.extraction_settings(wildcards.dataset, run_of(wildcards).arch)
        ),
    script:
        "../../scripts/analysis_step.py"


# One sample's salient AND and OR interactions drawn on its input at checkpoints spread over
# training (harsanyi.analyses.pictures; the `harsanyi draw` picture), for the report.
rule pictures_run:
    input:
        interactions=lambda wildcards: interaction_files(run_of(wildcards)),
    output:
        figure=report(
            run_output("pictures_run", "picture.png"),
            caption="../report/pictures_run.rst",
            category="Interactions on the input",
            subcategory="Runs",
            labels={"run": "{run}"},
        ),
    log:
        run_log("pictures_run"),
    benchmark:
        run_benchmark("pictures_run")
    group:
        "run_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["pictures_run"],
    params:
        shown_checkpoints=SETTINGS_OF["pictures_run"]["shown_checkpoints"],
        root=lambda wildcards: STUDY.datasets[wildcards.dataset].root,
    script:
        "../../scripts/analysis_step.py"


rule attributions_study:
    input:
        tables=[
            run_analysis(run, "attributions_run", "attributions.tsv")
            for run in STUDY.runs
        ],
    output:
        table=f"{STUDY_DIR}/attributions.tsv",
        figure=report(
            f"{STUDY_DIR}/attributions.png",
            caption="../report/attributions_study.rst",
            category="Attributions",
        ),
    log:
        f"{STUDY_DIR}/logs/attributions_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/attributions_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["attributions_study"],
    script:
        "../../scripts/analysis_step.py"


rule sensitivity_study:
    input:
        sensitivity=[path for run in STUDY.runs for path in sensitivity_files(run)],
    output:
        table=f"{STUDY_DIR}/sensitivity.tsv",
        trend=f"{STUDY_DIR}/sensitivity_trend.tsv",
        figure=report(
            f"{STUDY_DIR}/sensitivity.png",
            caption="../report/sensitivity_study.rst",
            category="Sensitivity",
        ),
    log:
        f"{STUDY_DIR}/logs/sensitivity_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/sensitivity_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["sensitivity_study"],
    params:
        n_boot=STUDY.analysis["bootstrap"],
    script:
        "../../scripts/analysis_step.py"


rule joint_study:
    input:
        joint=JOINT_FILES,
        separate=JOINT_SEPARATE_FILES,
    output:
        table=f"{STUDY_DIR}/joint_shared.tsv",
        summary=f"{STUDY_DIR}/joint_summary.tsv",
        figure=report(
            f"{STUDY_DIR}/joint.png",
            caption="../report/joint_study.rst",
            category="Cross-model similarity",
        ),
    log:
        f"{STUDY_DIR}/logs/joint_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/joint_study.tsv"
    group:
        "study_analyses"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["joint_study"],
    params:
        ratio=STUDY.analysis["salient_ratio"],
    script:
        "../../scripts/analysis_step.py"


# The scorecard of one decomposition variant (config `analysis.variants`): every run's claims
# on the variant's files, the shared-interactions claim from its first and last checkpoints.
rule variant_scorecard:
    input:
        claims=lambda wildcards: variant_claims(wildcards.variant),
        interactions=lambda wildcards: variant_stage_files(wildcards.variant),
    output:
        table=f"{STUDY_DIR}/scorecard_{{variant}}.tsv",
    log:
        f"{STUDY_DIR}/logs/variant_scorecard/{{variant}}.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/variant_scorecard/{{variant}}.tsv"
    wildcard_constraints:
        variant="|".join(VARIANTS) or "(?!)",
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["variant_scorecard"],
    params:
        stages=SIMILARITY_STAGES,
        label_noise={run.name: run.label_noise for run in STUDY.runs},
        tau=STUDY.analysis["salient_ratio"],
        n_boot=STUDY.analysis["bootstrap"],
    script:
        "../../scripts/variant_scorecard.py"


# Every claim under the main extraction and each variant side by side.
rule variants_study:
    input:
        main=f"{STUDY_DIR}/scorecard.tsv",
        variants=[f"{STUDY_DIR}/scorecard_{name}.tsv" for name in VARIANTS],
    output:
        table=f"{STUDY_DIR}/scorecard_variants.tsv",
        markdown=f"{STUDY_DIR}/scorecard_variants.md",
    log:
        f"{STUDY_DIR}/logs/variants_study.log",
    benchmark:
        f"{STUDY_DIR}/benchmarks/variants_study.tsv"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["variants_study"],
    params:
        names=list(VARIANTS),
        settings=VARIANT_SETTINGS,
    script:
        "../../scripts/analysis_step.py"


# Not part of `all`: the study-results section of docs/default-study.md, from the study's tables
# (snakemake --cores 2 readme, then scripts/readme_results.py splices it into that page).
rule readme:
    input:
        scorecard=f"{STUDY_DIR}/scorecard.tsv",
        pooled=f"{STUDY_DIR}/scorecard_seeds.tsv",
        figure=f"{STUDY_DIR}/two_phase.png",
        variants=[f"{STUDY_DIR}/scorecard_variants.tsv"] if VARIANTS else [],
        joint=[f"{STUDY_DIR}/joint_summary.tsv"] if JOINT_GROUPS else [],
        shapley=f"{STUDY_DIR}/shapley.tsv",
        attributions=f"{STUDY_DIR}/attributions.tsv",
    output:
        section=f"{STUDY_DIR}/readme/readme_results.md",
        figure=f"{STUDY_DIR}/readme/two_phase.png",
    log:
        f"{STUDY_DIR}/logs/readme.log",
    conda:
        "../../envs/harsanyi.yaml"
    params:
        study=STUDY_ID,
        variant_settings=VARIANT_SETTINGS,
        configfiles=[
            os.path.relpath(path) for path in workflow.overwrite_configfiles or []
        ],
    script:
        "../../scripts/readme_results.py"
