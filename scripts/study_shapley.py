"""Rule shapley_study: the Shapley check of every run in one table, and the figure."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import shapley_study_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
shapley_study_step(
    tables=list(snakemake.input.tables),  # noqa: F821
    checks=list(snakemake.input.checks),  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
)
