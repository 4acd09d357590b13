"""Rule two_phase_study: every run of the study in one table and one figure."""

from harsanyi.pipeline import setup_job, two_phase_study

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
two_phase_study(
    tables=list(snakemake.input.tables),  # noqa: F821
    metrics_paths=list(snakemake.input.metrics),  # noqa: F821
    points_paths=list(snakemake.input.points),  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
    summary_out=snakemake.output.summary,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
    shown=snakemake.params.shown,  # noqa: F821
)
