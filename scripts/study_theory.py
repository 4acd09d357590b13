"""Rule theory_study: theory vs measurement of every run, and the pure r(k) curves."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import theory_study_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
theory_study_step(
    orders_tables=list(snakemake.input.orders),  # noqa: F821
    fit_tables=list(snakemake.input.fits),  # noqa: F821
    points_paths=list(snakemake.input.points),  # noqa: F821
    orders_out=snakemake.output.orders,  # noqa: F821
    fit_out=snakemake.output.fit,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
    ratio_out=snakemake.output.ratio,  # noqa: F821
    ratio_figure_out=snakemake.output.ratio_figure,  # noqa: F821
    shown=snakemake.params.shown,  # noqa: F821
)
