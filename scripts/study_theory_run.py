"""Rule theory_run: spindle at initialisation and the phase-2 σ² fit of one run."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import theory_run_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
theory_run_step(
    files=list(snakemake.input.interactions),  # noqa: F821
    orders_out=snakemake.output.orders,  # noqa: F821
    fit_out=snakemake.output.fit,  # noqa: F821
    ratio=snakemake.params.ratio,  # noqa: F821
)
