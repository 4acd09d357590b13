"""Rule attributions_study: every run's attribution summary in one table and figure."""

from harsanyi.pipeline import attributions_study, setup_job

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
attributions_study(
    tables=list(snakemake.input.tables),  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
)
