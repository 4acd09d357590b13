"""Rule shapley_run: Shapley values from the interactions checked against exact ones."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import shapley_run_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
shapley_run_step(
    file=snakemake.input.interactions,  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
    check_out=snakemake.output.check,  # noqa: F821
)
