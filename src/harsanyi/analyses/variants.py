"""Decomposition variants: every claim scored on the stored games decomposed again under other
settings (config `analysis.variants`: the published `sgd`, another `qthres`, …) beside the
main extraction.

A variant's results files are written by `harsanyi.extraction.redecompose` (rule
`redecompose`: no forward pass) under their own extraction id, and scored per run by the same
`scorecard.run_step` as the main files (rule `scorecard_run`).  `scorecard_step` (rule
`variant_scorecard`) adds the shared-interactions claim from the variant's first and last
checkpoints and writes the variant's scorecard; `study_step` (rule `variants_study`) sets every
claim of every run side by side under the main extraction and each variant.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from harsanyi.analyses.common import check_files, read_tsv
from harsanyi.analyses.scorecard import CLAIMS, _entry, scorecard
from harsanyi.analyses.similarity import shared_claims, shared_samples_table
from harsanyi.io import write_text, write_tsv
from harsanyi.stats import DEFAULT_RATIO
from harsanyi.verdicts import N_BOOT, not_applicable

MAIN = "main"
# What a variant cannot score: measuring it needs new forward passes (perturbed inputs).
NOT_REDECOMPOSED = {
    "higher_orders_sensitive": "not measured for a decomposition variant (needs new forward "
    "passes); see the main scorecard",
}
# Per variant in the comparison table: these scorecard columns, as `<column>_<variant>`.
COMPARED = ("verdict", "effect", "low", "high", "bound")


def variant_scorecard(
    records: Sequence[Mapping], interactions: Sequence[str | Path], **shared_options
) -> pd.DataFrame:
    """The scorecard (`scorecard.COLUMNS`) of a variant from its runs' claims (`run_step`
    JSON) and its first and last results files of every run (the shared-interactions claim;
    `shared_options`: stages, label_noise, tau, n_boot of `similarity`)."""
    n_boot = shared_options.pop("n_boot", N_BOOT)
    tau = shared_options.pop("tau", DEFAULT_RATIO)
    samples = shared_samples_table(interactions, tau1=tau, tau2=tau, **shared_options)
    records = [dict(record, claims=list(record["claims"])) for record in records]
    for record in records:
        for index, entry in enumerate(record["claims"]):
            if entry["key"] in NOT_REDECOMPOSED:
                result = not_applicable(NOT_REDECOMPOSED[entry["key"]])
                record["claims"][index] = _entry(entry["key"], result, {}, result.reason)
    return scorecard(records, shared_claims(samples, n_boot=n_boot))


def scorecard_step(
    *,
    claims: Sequence[str | Path],
    interactions: Sequence[str | Path],
    table: str | Path,
    variant: str,
    stages: Sequence[str | int] = ("init", "final"),
    label_noise: Mapping[str, float] | None = None,
    tau: float = DEFAULT_RATIO,
    n_boot: int = N_BOOT,
) -> None:
    """A variant's scorecard → TSV (rule variant_scorecard)."""
    records = [json.loads(Path(p).read_text()) for p in check_files(claims, "run claims")]
    files = check_files(interactions, f"results files of variant {variant!r}")
    card = variant_scorecard(
        records, files, stages=stages, label_noise=label_noise, tau=tau, n_boot=n_boot
    )
    write_tsv(card, table)


def comparison_table(cards: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per run × claim, the verdict, effect, interval and bound of each scorecard
    side by side (`<column>_<name>`, names in the order of `cards`, the main one first), and
    `same_verdict`: whether every scorecard says the same.  A run or claim that one
    scorecard lacks gets empty cells there."""
    if not cards:
        raise ValueError("comparison_table needs at least one scorecard")
    keys = list(CLAIMS)
    merged = None
    for name, card in cards.items():
        missing = {"run", "key", *COMPARED} - set(card.columns)
        if missing:
            raise ValueError(f"scorecard {name!r} lacks the columns {sorted(missing)}")
        part = card[["run", "key", *COMPARED]].rename(
            columns={column: f"{column}_{name}" for column in COMPARED}
        )
        merged = part if merged is None else merged.merge(part, on=["run", "key"], how="outer")
    merged.insert(2, "claim", merged.key.map(CLAIMS))
    verdicts = merged[[f"verdict_{name}" for name in cards]]
    merged["same_verdict"] = verdicts.nunique(axis=1, dropna=False).eq(1)
    order = merged.key.map({key: i for i, key in enumerate(keys)}).fillna(len(keys))
    return (
        merged.assign(_order=order)
        .sort_values(["run", "_order"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


def _cell(row: pd.Series, name: str) -> str:
    verdict = row[f"verdict_{name}"]
    if not isinstance(verdict, str):
        return "–"
    values = [row[f"{column}_{name}"] for column in ("effect", "low", "high", "bound")]
    if verdict == "n/a" or not all(_finite(v) for v in values):
        return verdict
    effect, low, high, bound = values
    return f"{verdict}: {effect:.2f} [{low:.2f}, {high:.2f}] vs {bound:.2f}"


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _settings_text(settings: Mapping) -> str:
    parts = [f"{key} {value}" for key, value in sorted(settings.items()) if value is not None]
    return ", ".join(parts)


def comparison_markdown(
    table: pd.DataFrame, settings: Mapping[str, Mapping], *, claims: Sequence[str] | None = None
) -> str:
    """The comparison as Markdown: one table per claim (`claims`, default all), one row per
    run, one column per scorecard ("verdict: effect [95 % interval] vs null bound"), with
    the decomposition settings of each scorecard above."""
    names = [column.removeprefix("verdict_") for column in table if column.startswith("verdict_")]
    lines = ["Decomposition settings of each scorecard (same stored games):", ""]
    lines += [f"- `{name}`: {_settings_text(settings.get(name, {}))}" for name in names]
    changed = int((~table.same_verdict.astype(bool)).sum())
    lines += ["", f"{changed} of {len(table)} run × claim verdicts differ between them.", ""]
    for key in claims or list(dict.fromkeys(table.key)):
        part = table[table.key == key]
        if part.empty:
            continue
        lines += [f"**{CLAIMS.get(key, key)}**", ""]
        lines += ["| run | " + " | ".join(f"`{name}`" for name in names) + " |"]
        lines += ["| --- |" + " --- |" * len(names)]
        for _, row in part.iterrows():
            lines.append(f"| {row.run} | " + " | ".join(_cell(row, n) for n in names) + " |")
        lines.append("")
    return "\n".join(lines)


def readme_markdown(table: pd.DataFrame, settings: Mapping[str, Mapping]) -> str:
    """The README's part on the variants: every run × claim verdict under each decomposition
    ("main / variant / …"), then the spindle at initialisation with its numbers under each."""
    from harsanyi.plots import _run_label, run_order

    names = [column.removeprefix("verdict_") for column in table if column.startswith("verdict_")]
    keys = [key for key in CLAIMS if key in set(table.key)]
    lines = [
        "Decomposition variants (`analysis.variants`): every claim under each decomposition of "
        "the same stored games, without a new forward pass:",
        "",
    ]
    lines += [f"- `{name}`: {_settings_text(settings.get(name, {}))}" for name in names]
    changed = int((~table.same_verdict.astype(bool)).sum())
    lines += [
        "",
        f"Verdicts {' / '.join(f'`{name}`' for name in names)} (`scorecard_variants.tsv`; "
        f"{changed} of {len(table)} run × claim verdicts differ):",
        "",
        "| run | " + " | ".join(CLAIMS[key] for key in keys) + " |",
        "| --- |" + " --- |" * len(keys),
    ]
    for run in run_order(table.run.unique()):
        part = table[table.run == run].set_index("key")
        cells = []
        for key in keys:
            verdicts = [
                part.loc[key, f"verdict_{name}"] if key in part.index else None for name in names
            ]
            cells.append(" / ".join(v if isinstance(v, str) else "–" for v in verdicts))
        lines.append(f"| {_run_label(run)} | " + " | ".join(cells) + " |")
    spindle = table[table.key == "spindle_at_init"]
    if not spindle.empty:
        lines += [
            "",
            "Spindle at initialisation under each decomposition (verdict: effect [95 % "
            "interval] vs null bound):",
            "",
            "| run | " + " | ".join(f"`{name}`" for name in names) + " |",
            "| --- |" + " --- |" * len(names),
        ]
        by_run = spindle.set_index("run")
        for run in run_order(spindle.run.unique()):
            row = by_run.loc[run]
            lines.append(
                f"| {_run_label(run)} | " + " | ".join(_cell(row, n) for n in names) + " |"
            )
    return "\n".join(lines) + "\n"


def with_readme_part(section: str, part: str, end_marker: str) -> str:
    """`section` (the README's study-results section) with `part` just before its end."""
    if section.count(end_marker) != 1:
        raise ValueError("the study-results section needs exactly one end marker")
    head, tail = section.split(end_marker)
    return head.rstrip("\n") + "\n\n" + part.rstrip("\n") + "\n\n" + end_marker + tail


def study_step(
    *,
    main: str | Path,
    variants: Sequence[str | Path],
    table: str | Path,
    markdown: str | Path,
    names: Sequence[str],
    settings: Mapping[str, Mapping],
) -> None:
    """The main scorecard and each variant's side by side → TSV and Markdown (rule
    variants_study); `names`: the variants, in the order of `variants`."""
    if len(names) != len(variants):
        raise ValueError(f"{len(variants)} variant scorecards for {len(names)} names {names}")
    paths = check_files([main, *variants], "scorecards")
    cards = {MAIN: read_tsv(paths[0])}
    cards.update({name: read_tsv(path) for name, path in zip(names, paths[1:], strict=True)})
    comparison = comparison_table(cards)
    write_tsv(comparison, table)
    write_text(comparison_markdown(comparison, settings) + "\n", markdown)
