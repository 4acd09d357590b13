"""harsanyi: AND-OR interactions of neural networks over training.

Run the embedded default study:   snakemake --cores 2
Another study:                    snakemake --cores 2 --configfile config/fashion_mnist.yaml
"""

from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded default study only when the command line names no config file: Snakemake
# would otherwise merge `--configfile X` into it, and X's study would inherit the default's
# datasets and runs.
if not workflow.overwrite_configfiles:

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


# The end of a run says where to look: the scorecard (its verdict counts), the figures and
# the command that builds the report.
onsuccess:
    from harsanyi.deploy import study_finished

    study_finished(config, workflow.overwrite_configfiles)


# A failed job's reason in one line (rule, run, reason, log file): Snakemake itself can only
# say "Detailed failure reason unavailable" where the cluster has no accounting.
onerror:
    from harsanyi.deploy import study_failed

    study_failed(config, WORKFLOW_START)
