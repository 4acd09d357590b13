"""Rule similarity_study: coverage and top-K overlap between comparable runs."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import similarity_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
similarity_step(
    files=list(snakemake.input.interactions),  # noqa: F821
    coverage_out=snakemake.output.coverage,  # noqa: F821
    orders_out=snakemake.output.orders,  # noqa: F821
    topk_out=snakemake.output.topk,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
    stages=list(snakemake.params.stages),  # noqa: F821
    label_noise=dict(snakemake.params.label_noise),  # noqa: F821
    tau=snakemake.params.tau,  # noqa: F821
)
