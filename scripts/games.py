"""Rule games: v of the explained samples on every mask under one checkpoint (the model runs)."""

from pathlib import Path

from harsanyi.extraction import evaluate_games
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
evaluate_games(
    checkpoint=Path(snakemake.input.checkpoints) / f"epoch_{snakemake.params.epoch:04d}.pt",  # noqa: F821
    manifest_path=snakemake.input.samples,  # noqa: F821
    settings=snakemake.params.run,  # noqa: F821
    extraction=snakemake.params.extraction,  # noqa: F821
    root=snakemake.params.root,  # noqa: F821
    out=snakemake.output[0],  # noqa: F821
    run=snakemake.params.name,  # noqa: F821
    epoch=snakemake.params.epoch,  # noqa: F821
    device=snakemake.config["device"],  # noqa: F821
)
