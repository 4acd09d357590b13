"""Rule ood_study: the runs with label noise in one table, one verdict row each, a figure."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import ood_study_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
ood_study_step(
    strength_tables=list(snakemake.input.tables),  # noqa: F821
    verdict_paths=list(snakemake.input.verdicts),  # noqa: F821
    strength_out=snakemake.output.table,  # noqa: F821
    verdicts_out=snakemake.output.verdicts,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
)
