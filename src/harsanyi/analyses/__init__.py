"""The analyses of a study, one module each, all with the same three kinds of entry point.

- Pure table functions (`jaccard_table`, `ood_tables`, `theory_tables`, …): results files
  or `InteractionResults` in, pandas tables out; no files written.
- `run_step(**files_and_params)`: one run's interaction files in, its tables out (modules
  without a per-run rule, similarity and scorecard, have none).
- `study_step(**files_and_params)`: the runs' tables in, the study's tables and figures out.

Steps take keyword arguments only, named exactly as the workflow rule names its inputs,
outputs and params, and write every file atomically (`harsanyi.io`).  The rule
`<analysis>_run` calls `run_step` of module `<analysis>`, `<analysis>_study` (and
`scorecard`) its `study_step`, all through `scripts/analysis_step.py` and `step_for_rule`.
Shared helpers live in `analyses.common`.

Adding an analysis: a module here with its table functions and steps, its rules in
workflow/rules/analyses.smk, its figure in plots.py and its caption in workflow/report/.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

ANALYSES = (
    "two_phase",
    "jaccard",
    "ood",
    "similarity",
    "theory",
    "shapley",
    "attributions",
    "pictures",
    "sensitivity",
    "joint",
    "scorecard",
    "variants",
)


def step_for_rule(rule: str) -> Callable[..., None]:
    """The step a workflow rule runs: `<analysis>_run` → run_step, else study_step."""
    name, _, kind = rule.rpartition("_")
    if kind not in ("run", "study"):
        name, kind = rule, "study"
    if name not in ANALYSES:
        raise ValueError(f"rule {rule!r} names no analysis; known: {ANALYSES}")
    module = importlib.import_module(f"harsanyi.analyses.{name}")
    return getattr(module, f"{kind}_step")
