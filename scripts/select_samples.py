"""Rule select_samples: the explained samples and the players of one dataset."""

from harsanyi.extraction import select_samples
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
select_samples(
    snakemake.params.plan,  # noqa: F821
    snakemake.params.plan.root,  # noqa: F821
    snakemake.output[0],  # noqa: F821
)
