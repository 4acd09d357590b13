"""Rule two_phase_run: order strength over training of one run, and its figure."""

from harsanyi.pipeline import setup_job, two_phase_run

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
two_phase_run(
    files=list(snakemake.input.interactions),  # noqa: F821
    metrics_path=snakemake.input.metrics,  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
    points_out=snakemake.output.points,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
    ratio=snakemake.params.ratio,  # noqa: F821
    shown=snakemake.params.shown,  # noqa: F821
    fraction=snakemake.params.fraction,  # noqa: F821
)
