rule select_samples:
    output:
        f"{RESULTS}/{{dataset}}/samples/{{sel}}.json",
    log:
        f"{RESULTS}/logs/select_samples/{{dataset}}-{{sel}}.log",
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["select_samples"],
    params:
        plan=lambda wildcards: STUDY.datasets[wildcards.dataset],
    script:
        "../../scripts/select_samples.py"


rule train:
    output:
        checkpoints=directory(f"{RESULTS}/{{dataset}}/runs/{{run}}/checkpoints"),
        metrics=f"{RESULTS}/{{dataset}}/runs/{{run}}/metrics.tsv",
        flipped=f"{RESULTS}/{{dataset}}/runs/{{run}}/flipped.tsv",
        manifest=f"{RESULTS}/{{dataset}}/runs/{{run}}/run.json",
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{run}}.tsv"
    conda:
        "../../envs/harsanyi.yaml"
    resources:
        **RESOURCES["train"],
    params:
        settings=lambda wildcards: sorted_keys(run_of(wildcards).settings),
        root=lambda wildcards: STUDY.datasets[wildcards.dataset].root,
        state_dir=lambda wildcards: f"{RESULTS}/{wildcards.dataset}/resume/{wildcards.run}",
    script:
        "../../scripts/train.py"
