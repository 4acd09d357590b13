"""Rule study_record: which runs, extractions and analyses the study uses, and who ran it."""

from harsanyi.jobs import setup_job
from harsanyi.maintenance import write_study_record

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
write_study_record(snakemake.output[0], snakemake.params.record)  # noqa: F821
