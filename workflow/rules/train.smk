rule select_samples:
    output:
        f"{RESULTS}/{{dataset}}/samples/{{sel}}.json",
    params:
        plan=lambda wildcards: STUDY.datasets[wildcards.dataset],
    log:
        f"{RESULTS}/logs/select_samples/{{dataset}}-{{sel}}.log",
    conda:
        "../../envs/harsanyi.yaml"
    script:
        "../../scripts/select_samples.py"


rule train:
    output:
        checkpoints=directory(f"{RESULTS}/{{dataset}}/runs/{{run}}/checkpoints"),
        metrics=f"{RESULTS}/{{dataset}}/runs/{{run}}/metrics.tsv",
        flipped=f"{RESULTS}/{{dataset}}/runs/{{run}}/flipped.tsv",
        manifest=f"{RESULTS}/{{dataset}}/runs/{{run}}/run.json",
    params:
        settings=lambda wildcards: run_of(wildcards).settings,
        root=lambda wildcards: STUDY.datasets[wildcards.dataset].root,
        state_dir=lambda wildcards: f"{RESULTS}/{wildcards.dataset}/resume/{wildcards.run}",
        device=STUDY.device,
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{run}}.tsv"
    conda:
        "../../envs/harsanyi.yaml"
    script:
        "../../scripts/train.py"
