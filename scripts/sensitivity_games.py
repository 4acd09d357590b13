"""Rule sensitivity_games: v of a checkpoint's sensitivity samples, clean and perturbed, on
every mask (the model runs)."""

from pathlib import Path

from harsanyi.extraction import evaluate_sensitivity_games
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
evaluate_sensitivity_games(
    checkpoint=Path(snakemake.input.checkpoints) / f"epoch_{snakemake.params.epoch:04d}.pt",  # noqa: F821
    manifest_path=snakemake.input.samples,  # noqa: F821
    settings=snakemake.params.run,  # noqa: F821
    extraction=snakemake.params.extraction,  # noqa: F821
    sensitivity=snakemake.params.sensitivity,  # noqa: F821
    root=snakemake.params.root,  # noqa: F821
    out=snakemake.output[0],  # noqa: F821
    run=snakemake.params.name,  # noqa: F821
    epoch=snakemake.params.epoch,  # noqa: F821
    device=snakemake.config["device"],  # noqa: F821
)
