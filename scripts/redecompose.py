"""Rule redecompose: the games of a results file decomposed again under a variant's settings."""

from harsanyi.extraction import redecompose
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
redecompose(
    source=snakemake.input.games,  # noqa: F821
    out=snakemake.output[0],  # noqa: F821
    extraction=snakemake.params.extraction,  # noqa: F821
)
