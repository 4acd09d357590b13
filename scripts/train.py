"""Rule train: one run (dataset × architecture × seed × label noise), resumable."""

from pathlib import Path

from harsanyi.jobs import setup_job
from harsanyi.train import train_from_settings

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
train_from_settings(
    settings=snakemake.params.settings,  # noqa: F821
    root=snakemake.params.root,  # noqa: F821
    run_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
    state_dir=snakemake.params.state_dir,  # noqa: F821
    device=snakemake.config["device"],  # noqa: F821
)
