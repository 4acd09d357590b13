"""Rule ood_run: salient strength per order, flipped vs normal samples, and the verdict."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import ood_run_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
ood_run_step(
    files=list(snakemake.input.interactions),  # noqa: F821
    strength_out=snakemake.output.table,  # noqa: F821
    verdict_out=snakemake.output.verdict,  # noqa: F821
    ratio=snakemake.params.ratio,  # noqa: F821
    n_boot=snakemake.params.n_boot,  # noqa: F821
)
