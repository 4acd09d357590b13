"""Rule run_analyses: the index of a run's analysis tables (and the group job they share)."""

from harsanyi.jobs import setup_job
from harsanyi.maintenance import write_analysis_index

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
write_analysis_index(snakemake.output[0], dict(snakemake.input.items()))  # noqa: F821
