"""Rule select_samples: the explained samples and the players of one dataset."""

from harsanyi.pipeline import log_to, select_samples

log_to(snakemake.log)  # noqa: F821
select_samples(
    snakemake.params.plan,  # noqa: F821
    snakemake.params.plan.root,  # noqa: F821
    snakemake.output[0],  # noqa: F821
)
