"""Rule sensitivity: relative change per order of a checkpoint's interactions under input
perturbations, from its stored sensitivity games (CPU only)."""

from harsanyi.extraction import decompose_sensitivity
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
decompose_sensitivity(
    snakemake.input.games,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    qthres=snakemake.params.qthres,  # noqa: F821
    sensitivity=snakemake.params.sensitivity,  # noqa: F821
)
