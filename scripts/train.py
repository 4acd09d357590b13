"""Rule train: one run (dataset × architecture × seed × label noise), resumable."""

from pathlib import Path

from harsanyi.pipeline import setup_job, train

setup_job(snakemake.log, snakemake.threads)  # noqa: F821
train(
    settings=snakemake.params.settings,  # noqa: F821
    root=snakemake.params.root,  # noqa: F821
    run_dir=Path(snakemake.output.metrics).parent,  # noqa: F821
    state_dir=snakemake.params.state_dir,  # noqa: F821
    device=snakemake.config.get("device", "auto"),  # noqa: F821
)
