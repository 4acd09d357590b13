"""Rule scorecard: which published claims every run reproduces."""

from harsanyi.pipeline import setup_job
from harsanyi.studies import scorecard_step

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
scorecard_step(
    points_paths=list(snakemake.input.points),  # noqa: F821
    strength_tables=list(snakemake.input.strength),  # noqa: F821
    jaccard_tables=list(snakemake.input.jaccard),  # noqa: F821
    theory_fits=list(snakemake.input.theory),  # noqa: F821
    ood_verdicts=list(snakemake.input.ood),  # noqa: F821
    coverage_table=snakemake.input.coverage,  # noqa: F821
    table_out=snakemake.output.table,  # noqa: F821
    figure_out=snakemake.output.figure,  # noqa: F821
    variant=snakemake.params.variant,  # noqa: F821
    max_checkpoint_distance=snakemake.params.max_checkpoint_distance,  # noqa: F821
    coverage_factor=snakemake.params.coverage_factor,  # noqa: F821
)
