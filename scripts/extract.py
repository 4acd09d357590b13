"""Rule extract: the AND-OR decomposition of one checkpoint's stored games (CPU only)."""

from harsanyi.extraction import decompose
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
decompose(
    games=snakemake.input.games,  # noqa: F821
    out=snakemake.output[0],  # noqa: F821
    extraction=snakemake.params.extraction,  # noqa: F821
)
