rule two_phase_run:
    input:
        interactions=lambda wildcards: interaction_files(run_of(wildcards)),
        metrics=f"{RESULTS}/{{dataset}}/runs/{{run}}/metrics.tsv",
    output:
        table=f"{RESULTS}/{{dataset}}/runs/{{run}}/analysis/{{xid}}/order_strength.tsv",
        points=f"{RESULTS}/{{dataset}}/runs/{{run}}/analysis/{{xid}}/two_phase.json",
        figure=report(
            f"{RESULTS}/{{dataset}}/runs/{{run}}/analysis/{{xid}}/two_phase.png",
            caption="../report/two_phase_run.rst",
            category="Two-phase dynamics",
            subcategory="Runs",
            labels={"run": "{run}"},
        ),
    log:
        f"{RESULTS}/logs/two_phase_run/{{dataset}}/{{run}}-{{xid}}.log",
    conda:
        "../../envs/harsanyi.yaml"
    params:
        ratio=STUDY.analysis["salient_ratio"],
        shown=STUDY.analysis["shown_checkpoints"],
        fraction=STUDY.analysis["gap_fraction"],
    script:
        "../../scripts/two_phase_run.py"


rule two_phase_study:
    input:
        tables=[run_analysis(run, "order_strength.tsv") for run in STUDY.runs],
        metrics=[f"{run_dir(run)}/metrics.tsv" for run in STUDY.runs],
        points=[run_analysis(run, "two_phase.json") for run in STUDY.runs],
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
    conda:
        "../../envs/harsanyi.yaml"
    params:
        shown=STUDY.analysis["shown_checkpoints"],
    script:
        "../../scripts/two_phase_study.py"
