rule extract:
    input:
        checkpoints=f"{RESULTS}/{{dataset}}/runs/{{run}}/checkpoints",
        metrics=f"{RESULTS}/{{dataset}}/runs/{{run}}/metrics.tsv",
        samples=lambda wildcards: manifest_path(wildcards.dataset),
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
        run=lambda wildcards: sorted_keys(run_of(wildcards).settings),
        name=lambda wildcards: wildcards.run,
        root=lambda wildcards: STUDY.datasets[wildcards.dataset].root,
        extraction=lambda wildcards: sorted_keys(
            STUDY.extraction_settings(wildcards.dataset, run_of(wildcards).arch)
        ),
        epoch=lambda wildcards: int(wildcards.epoch),
    script:
        "../../scripts/extract.py"
