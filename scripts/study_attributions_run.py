"""Rule attributions_run: captum attributions against allocations of the interactions."""

from harsanyi.pipeline import attributions_run, setup_job

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
attributions_run(
    checkpoints=snakemake.input.checkpoints,  # noqa: F821
    manifest_path=snakemake.input.samples,  # noqa: F821
    results_file=snakemake.input.interactions,  # noqa: F821
    settings=snakemake.params.run,  # noqa: F821
    extraction=snakemake.params.extraction,  # noqa: F821
    root=snakemake.params.root,  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
    device=snakemake.config.get("device", "auto"),  # noqa: F821
)
