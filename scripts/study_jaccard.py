"""Rule jaccard_study: every run's Jaccard table in one TSV, and the figure."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import jaccard_study_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
jaccard_study_step(
    tables=list(snakemake.input.tables),  # noqa: F821
    points_paths=list(snakemake.input.points),  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
    variant=snakemake.params.variant,  # noqa: F821
)
