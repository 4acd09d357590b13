"""Rule jaccard_run: Jaccard similarity per order, train vs test, of every checkpoint."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import jaccard_run_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
jaccard_run_step(
    files=list(snakemake.input.interactions),  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
)
