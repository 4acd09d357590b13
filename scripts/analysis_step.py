"""Every analysis rule: the step `harsanyi.analyses.step_for_rule` names for the rule, called
with the rule's named inputs, outputs and params as keyword arguments."""

import inspect

from harsanyi.analyses import step_for_rule
from harsanyi.jobs import setup_job

setup_job(snakemake.log, snakemake.threads, snakemake.rule, dict(snakemake.wildcards.items()))  # noqa: F821
step = step_for_rule(snakemake.rule)  # noqa: F821
arguments = {
    **dict(snakemake.input.items()),  # noqa: F821
    **dict(snakemake.output.items()),  # noqa: F821
    **dict(snakemake.params.items()),  # noqa: F821
}
if "device" in inspect.signature(step).parameters:
    arguments["device"] = snakemake.config["device"]  # noqa: F821
step(**arguments)
