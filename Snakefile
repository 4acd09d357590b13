"""harsanyi: AND-OR interactions of neural networks over training.

Run the embedded default study:   snakemake --cores 2
Another study:                    snakemake --cores 2 --configfile config/fashion_mnist.yaml
"""

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/analyses.smk"


rule all:
    default_target: True
    input:
        all_targets(),
