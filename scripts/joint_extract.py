"""Rule joint_extract: the joint AND-OR decomposition of a group's games at one checkpoint."""

from harsanyi.analyses.joint import extract_step
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
extract_step(
    interactions=list(snakemake.input.interactions),  # noqa: F821
    out=snakemake.output[0],  # noqa: F821
    alpha=snakemake.params.alpha,  # noqa: F821
    qthres=snakemake.params.qthres,  # noqa: F821
    samples_per_split=snakemake.params.samples_per_split,  # noqa: F821
)
