"""Rule variant_scorecard: the scorecard of one decomposition variant (analyses.variants)."""

from harsanyi.analyses.variants import scorecard_step
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
scorecard_step(
    claims=list(snakemake.input.claims),  # noqa: F821
    interactions=list(snakemake.input.interactions),  # noqa: F821
    table=snakemake.output.table,  # noqa: F821
    variant=snakemake.wildcards.variant,  # noqa: F821
    stages=snakemake.params.stages,  # noqa: F821
    label_noise=snakemake.params.label_noise,  # noqa: F821
    tau=snakemake.params.tau,  # noqa: F821
    n_boot=snakemake.params.n_boot,  # noqa: F821
)
