"""The scorecard: every published claim measured in every run as an effect with its interval,
against a null control computed by the same code, with a verdict and the rule behind it.

`run_step` (rule scorecard_run) measures the claims one run can answer from its own
interactions and losses; `study_step` (rule scorecard) adds the claim that needs other runs
(shared interactions), writes one row per run × claim, pools the runs that differ only in
their seed (two-stage bootstrap over seeds and samples), and renders the table.  The
statistics are in `harsanyi.verdicts`; each claim's effect and null in its analysis module.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.analyses import jaccard, ood, similarity, theory, two_phase
from harsanyi.analyses.common import by_run, check_files, read_tsv
from harsanyi.analyses.jaccard import jaccard_claim
from harsanyi.analyses.ood import OOD_GROUPS, ood_claim
from harsanyi.analyses.sensitivity import SMALLEST_RHO, read_tables, sensitivity_change_claim
from harsanyi.analyses.similarity import shared_claims
from harsanyi.analyses.theory import spindle_claim
from harsanyi.analyses.two_phase import gap_claim, phase_claims, strength_cube
from harsanyi.io import write_json, write_tsv
from harsanyi.stats import DEFAULT_RATIO
from harsanyi.store import FACE_ENDS
from harsanyi.verdicts import (
    N_BOOT,
    Claim,
    claim,
    clustered_bootstrap,
    decide,
    not_applicable,
)

CLAIMS = {
    "spindle_at_init": "spindle at initialisation",
    "phase1_drop": "phase 1 removes middle and high orders",
    "phase2_rise": "phase 2 raises the order",
    "phase2_near_gap": "phase-2 start near loss-gap onset",
    "jaccard_falls": "Jaccard similarity falls with order",
    "ood_high_order": "OOD samples carry more high-order strength",
    "shared_interactions": "models share salient interactions",
    "higher_orders_sensitive": "higher orders become more sensitive to perturbations",
}
# Claims about what training does: a study of networks that never learn must score none of
# them "yes" (the spindle is a claim about initialisation; sensitivity is measured as its
# change from initialisation, so it is one too).
TRAINING_CLAIMS = tuple(key for key in CLAIMS if key != "spindle_at_init")

# One line per claim: the effect, its null and when it counts as "yes" (docs/interactions.md,
# "Verdicts", says the same at length).
RULES = {
    "spindle_at_init": (
        "TV(p₀, flat) − TV(p₀, spindle) of the epoch-0 order distribution, spindle ∝ C(n,k) "
        "(the seed's theorem; C(n,k)·2^{k/2} for i.i.d. v in the details); yes if its 95 % "
        "interval lies above 0 and the effect ≥ 0.05"
    ),
    "phase1_drop": (
        "mean order at epoch 0 − minimum after it; yes if its 95 % interval lies above the "
        "95th percentile of the same statistic with each sample's checkpoints shuffled, by ≥ 0.1"
    ),
    "phase2_rise": (
        "mean order at the end − minimum after epoch 0; yes if its 95 % interval lies above the "
        "95th percentile with each sample's checkpoints from that minimum on shuffled, by ≥ 0.1"
    ),
    "phase2_near_gap": (
        "checkpoints between phase-2 start and loss-gap onset; yes if its 95 % interval lies "
        "below the 5th percentile of two points placed at random on the same grid; a grid of "
        "fewer than 20 checkpoints cannot decide it for one run (seeds pooled can)"
    ),
    "jaccard_falls": (
        "mean Jaccard (train vs test) over orders 1..⌊n/3⌋ − mean over ⌊n/3⌋+1..n−1 at the end; "
        "yes if its 95 % interval lies above 0 and above the 95th percentile of the same "
        "statistic with train and test shuffled within class, by ≥ 0.05"
    ),
    "ood_high_order": (
        "per-sample change of mean order from epoch 0 to the end, flipped − normal; yes if its "
        "95 % interval lies above 0 and above the 95th percentile of the same statistic with "
        "the flipped / normal labels shuffled, by ≥ 0.1"
    ),
    "shared_interactions": (
        "coverage − order-matched random coverage at the end, mean over partners; yes if its "
        "95 % interval lies above 0 and above that of the same untrained pairs, by ≥ 0.02"
    ),
    "higher_orders_sensitive": (
        "per-sample Spearman ρ(order, relative change), averaged over perturbations, at the "
        "last measured checkpoint − at the first; yes if its 95 % interval lies above the 95th "
        "percentile of the same statistic with each sample's two checkpoints shuffled, by ≥ 0.1"
    ),
}

# The smallest effect each claim must show beyond its null bound to count as "yes".
SMALLEST_EFFECTS = {
    "spindle_at_init": theory.SMALLEST_TV_GAIN,
    "phase1_drop": two_phase.SMALLEST_ORDER_CHANGE,
    "phase2_rise": two_phase.SMALLEST_ORDER_CHANGE,
    "phase2_near_gap": 0.0,
    "jaccard_falls": jaccard.SMALLEST_DIFFERENCE,
    "ood_high_order": ood.SMALLEST_ORDER_DIFFERENCE,
    "shared_interactions": similarity.SMALLEST_EXCESS,
    "higher_orders_sensitive": SMALLEST_RHO,
}

COLUMNS = [
    "run",
    "claim",
    "key",
    "effect",
    "low",
    "high",
    "null",
    "null_low",
    "null_high",
    "bound",
    "direction",
    "n",
    "verdict",
    "reason",
    "rule",
    "measured",
    "details",
    # Claims about orders at the two ends of the optimal face ("verdict: effect [interval] vs
    # bound"), and the verdict the canonical optimum alone would get; empty for other claims.
    "low_end",
    "high_end",
    "canonical_verdict",
]


def _floats(values) -> list:
    return [None if not math.isfinite(v) else float(v) for v in np.asarray(values, float).ravel()]


def _entry(key: str, result: Claim, extra: Mapping, measured: str, details: str = "") -> dict:
    entry = {"key": key, **result.as_row(), "measured": measured, "details": details}
    for name, value in extra.items():
        entry[name] = _floats(value) if name.endswith("replicates") else value
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in entry.items()
    }


def _interval_text(result: Claim, digits: int = 2) -> str:
    if not math.isfinite(result.effect):
        return result.reason
    f = f"{{:.{digits}f}}"
    return (
        f"{f.format(result.effect)} [{f.format(result.low)}, {f.format(result.high)}] "
        f"vs null {f.format(result.null)} (bound {f.format(result.bound)})"
    )


def run_claims(
    epochs: Mapping[int, object],
    onset: int | None,
    *,
    ratio: float = DEFAULT_RATIO,
    variant: str = "average_then_split",
    n_boot: int = N_BOOT,
    seed: int = 0,
    sensitivity_rows: pd.DataFrame | None = None,
    spindle_template: str = "binomial",
) -> list[dict]:
    """The claims one run answers: {key, Claim fields, measured, replicates, …} per claim.

    `epochs`: {epoch: InteractionResults} of the run; `onset`: its loss-gap onset epoch;
    `sensitivity_rows`: the run's sensitivity rows (`analyses.sensitivity.read_tables`), or
    None when the study measured none; `spindle_template`: the spindle the claim tests
    ("binomial", the seed's theorem, or the alternative "iid_v", `theory.SPINDLE_TEMPLATES`).
    """
    epochs = dict(sorted(epochs.items()))
    first, last = epochs[min(epochs)], epochs[max(epochs)]
    entries = []
    result, extra = spindle_claim(
        first, ratio=ratio, n_boot=n_boot, seed=seed, template=spindle_template
    )
    others = [k[len("effect_") :] for k in extra if k.startswith("effect_")]
    details = f"spindle {spindle_template}" + "".join(
        f"; with the {o} template: {extra[f'effect_{o}']:.2f}" for o in others
    )
    entries.append(_entry("spindle_at_init", result, extra, _interval_text(result), details))
    cube = strength_cube(epochs, ratio=ratio)
    for key, (result, extra) in phase_claims(cube, n_boot=n_boot, seed=seed).items():
        entries.append(_entry(key, result, extra, _interval_text(result)))
    result, extra = gap_claim(cube, list(epochs), onset, n_boot=n_boot, seed=seed)
    details = "" if onset is None else f"loss-gap onset at epoch {onset}"
    entries.append(_entry("phase2_near_gap", result, extra, _interval_text(result, 1), details))
    result, extra = jaccard_claim(first, last, variant=variant, n_boot=n_boot, seed=seed)
    details = ""
    if extra:
        details = (
            f"{extra['bands']}; resampled: {extra['resampled']} ({extra['units']}); "
            f"at epoch {min(epochs)}: {extra['effect_at_init']:.3f}"
        )
    entries.append(_entry("jaccard_falls", result, extra, _interval_text(result, 3), details))
    has_flipped = (np.asarray(last.split).astype(str) == OOD_GROUPS["flipped"]).any()
    if has_flipped:
        result, extra = ood_claim(first, last, ratio=ratio, n_boot=n_boot, seed=seed)
        text, details = _interval_text(result), extra.get("power", "")
        if extra:
            details = (
                f"mean order change flipped {extra['change_flipped']:.2f}, normal "
                f"{extra['change_normal']:.2f}; {details}"
            )
    else:
        result, extra = not_applicable("no flipped samples (clean run)"), {}
        text, details = result.reason, ""
    entries.append(_entry("ood_high_order", result, extra, text, details))
    if sensitivity_rows is None or sensitivity_rows.empty:
        result, extra = not_applicable("sensitivity not measured (config sensitivity.enabled)"), {}
        text, details = result.reason, ""
    elif sensitivity_rows.epoch.nunique() < 2:
        at = int(sensitivity_rows.epoch.max())
        reason = f"one measured checkpoint (epoch {at}): no change from initialisation"
        result, extra = not_applicable(reason), {}
        text, details = result.reason, ""
    else:
        at, start = int(sensitivity_rows.epoch.max()), int(sensitivity_rows.epoch.min())
        result, extra = sensitivity_change_claim(
            sensitivity_rows[sensitivity_rows.epoch == start],
            sensitivity_rows[sensitivity_rows.epoch == at],
            n_boot=n_boot,
            seed=seed,
        )
        text = _interval_text(result)
        names = ", ".join(extra.get("perturbations", []))
        details = f"epoch {at} − epoch {start}"
        if names:
            details += f"; perturbations {names}"
        if extra:
            details += (
                f"; at epoch {at}: mean ρ = {extra['rho_last']:.2f}"
                f"; at epoch {start}: mean ρ = {extra['rho_first']:.2f}"
            )
    entries.append(_entry("higher_orders_sensitive", result, extra, text, details))
    return entries


# Claims about orders: measured again at both ends of the optimal face (harsanyi.face), and
# "yes" or "no" only where both ends agree.  The others do not depend on which optimum is
# stored in the same way (shared interactions compares salient sets; sensitivity has its own
# decompositions of perturbed inputs) and are scored on the canonical optimum alone.
ORDER_CLAIMS = (
    "spindle_at_init",
    "phase1_drop",
    "phase2_rise",
    "phase2_near_gap",
    "jaccard_falls",
    "ood_high_order",
)
DEPENDS = "depends on the decomposition"
VERDICTS = ("yes", "no", DEPENDS, "inconclusive", "n/a")
END_FIELDS = ("effect", "low", "high", "null", "bound", "verdict", "reason")


def verdict_counts(table: str | Path | pd.DataFrame) -> dict[str, int]:
    """{verdict: rows} of a scorecard (scorecard.tsv or its table), every one of `VERDICTS`
    in their order (0 where none), then any other value found.  "n/a" is read as text."""
    card = read_tsv(table) if isinstance(table, (str, Path)) else table
    found = card.verdict.astype(str).value_counts() if len(card) else pd.Series(dtype=int)
    counts = {verdict: int(found.get(verdict, 0)) for verdict in VERDICTS}
    counts.update({str(v): int(c) for v, c in found.items() if v not in counts})
    return counts


def verdict_text(counts: Mapping[str, int]) -> str:
    """'3 yes, 10 no, 0 depends on the decomposition, 2 inconclusive, 9 n/a'."""
    return ", ".join(f"{count} {verdict}" for verdict, count in counts.items())


@dataclass(frozen=True)
class ScorecardDifference:
    """Where two scorecards of one study differ, cell by cell (`compare_scorecards`)."""

    cells: pd.DataFrame  # run, key, column, first, second, difference (numbers only)
    rows: int  # run × claim rows compared
    verdicts_changed: int  # rows whose verdict differs
    largest_effect_change: float  # max |Δ effect| over the rows (0 where none)

    @property
    def same(self) -> bool:
        return self.cells.empty

    def summary(self) -> str:
        if self.same:
            return f"same scorecard: {self.rows} rows, every cell equal"
        return (
            f"{self.verdicts_changed} of {self.rows} verdicts differ; {len(self.cells)} cells "
            f"differ in {self.cells[['run', 'key']].drop_duplicates().shape[0]} rows; "
            f"largest |effect change| {self.largest_effect_change:.3g}"
        )


def compare_scorecards(
    first: str | Path | pd.DataFrame,
    second: str | Path | pd.DataFrame,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-9,
    common: bool = False,
) -> ScorecardDifference:
    """Every cell of two scorecards of one study (scorecard.tsv), matched by run and claim:
    texts exactly, numbers to `rtol`/`atol`.  ValueError when their columns or their
    run × claim rows differ (not the same study), unless `common`: then only the rows both
    score are compared (e.g. a one-seed study against its three-seed extension)."""
    tables = [read_tsv(t) if isinstance(t, (str, Path)) else t.copy() for t in (first, second)]
    keys = ["run", "key"]
    if common:
        shared = set(map(tuple, tables[0][keys].values)) & set(map(tuple, tables[1][keys].values))
        if not shared:
            raise ValueError("the scorecards score no run and claim in common")
        tables = [t[[tuple(row) in shared for row in t[keys].values]] for t in tables]
    if list(tables[0].columns) != list(tables[1].columns):
        raise ValueError(
            f"the scorecards have different columns: {list(tables[0].columns)} and "
            f"{list(tables[1].columns)}"
        )
    a, b = (t.sort_values(keys).reset_index(drop=True) for t in tables)
    if not a[keys].equals(b[keys]):
        only = set(map(tuple, a[keys].values)) ^ set(map(tuple, b[keys].values))
        raise ValueError(f"the scorecards score different runs or claims, e.g. {sorted(only)[:3]}")
    cells = []
    for column in a.columns:
        if column in keys:
            continue
        x, y = a[column], b[column]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            fx, fy = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            differs = ~(np.isclose(fx, fy, rtol=rtol, atol=atol) | (np.isnan(fx) & np.isnan(fy)))
            change = np.abs(fx - fy)
        else:
            differs = (x.fillna("").astype(str) != y.fillna("").astype(str)).to_numpy()
            change = np.full(len(x), np.nan)
        for i in np.flatnonzero(differs):
            cells.append(
                {
                    "run": a.run[i],
                    "key": a.key[i],
                    "column": column,
                    "first": x[i],
                    "second": y[i],
                    "difference": change[i],
                }
            )
    columns = ["run", "key", "column", "first", "second", "difference"]
    effect = np.abs(a.effect.astype(float) - b.effect.astype(float))
    return ScorecardDifference(
        cells=pd.DataFrame(cells, columns=columns),
        rows=len(a),
        verdicts_changed=int((a.verdict.astype(str) != b.verdict.astype(str)).sum()),
        largest_effect_change=float(np.nanmax(effect)) if effect.notna().any() else 0.0,
    )


def where_to_look(study_dir: str | Path, configfiles: Sequence[str | Path] = ()) -> str:
    """The lines that end a study (the workflow's `onsuccess`): its scorecard (figure, table,
    verdict counts), its figures' directory and the command that builds its report."""
    directory = Path(study_dir)
    lines = [f"Study finished: {directory}"]
    card = directory / "scorecard.tsv"
    if card.is_file():
        lines.append(f"  verdicts   {verdict_text(verdict_counts(card))}")
        lines.append(f"  scorecard  {directory / 'scorecard.png'} (table: {card})")
    figures = sorted(path.name for path in directory.glob("*.png"))
    if figures:
        lines.append(f"  figures    {directory}/ ({', '.join(figures)}; PDF beside each)")
    # one --configfile with every file: a second --configfile would replace the first
    files = " ".join(shlex.quote(str(path)) for path in configfiles)
    config = f" --configfile {files}" if files else ""
    lines.append(f"  report     python3 -m snakemake{config} --report report.zip")
    return "\n".join(lines)


def both_ends(low: Mapping, high: Mapping) -> tuple[str, str]:
    """(verdict, reason) of a claim measured at the low and the high end of the optimal face:
    the ends' verdict where they agree, "depends on the decomposition" where they do not."""
    if low["verdict"] == high["verdict"]:
        return low["verdict"], f"both ends of the optimal face: {low['reason']}"
    return DEPENDS, (
        f"low end {low['verdict']} ({low['reason']}); high end {high['verdict']} ({high['reason']})"
    )


def claims_at_both_ends(epochs: Mapping[int, object], onset: int | None, **options) -> list[dict]:
    """`run_claims` on the stored (canonical) optimum and, where every file holds the optimal
    face, again at its low and high ends: each claim of `ORDER_CLAIMS` then carries `ends`
    ({"low" | "high": its effect, interval, null bound, verdict, reason and replicates}) and
    the verdict of `both_ends`; the canonical verdict stays in `canonical_verdict`."""
    entries = run_claims(epochs, onset, **options)
    if not all(r.has_face for r in epochs.values()):
        for entry in entries:
            if entry["key"] in ORDER_CLAIMS:
                entry["ends"] = None
                entry["canonical_verdict"] = entry["verdict"]
        return entries
    options = {**options, "sensitivity_rows": None}
    at = {
        end: {
            e["key"]: e
            for e in run_claims({k: r.at_end(end) for k, r in epochs.items()}, onset, **options)
        }
        for end in FACE_ENDS
    }
    for entry in entries:
        if entry["key"] not in ORDER_CLAIMS:
            continue
        ends = {end: at[end][entry["key"]] for end in FACE_ENDS}
        entry["ends"] = {
            end: {
                **{name: e.get(name) for name in END_FIELDS},
                "replicates": e.get("replicates"),
                "null_replicates": e.get("null_replicates"),
            }
            for end, e in ends.items()
        }
        entry["canonical_verdict"] = entry["verdict"]
        entry["verdict"], entry["reason"] = both_ends(ends["low"], ends["high"])
    return entries


def run_step(
    *,
    interactions: Sequence[str | Path],
    points: str | Path,
    claims: str | Path,
    ratio: float = DEFAULT_RATIO,
    variant: str = "average_then_split",
    n_boot: int = N_BOOT,
    label_noise: float = 0.0,
    seed: int = 0,
    sensitivity: Sequence[str | Path] = (),
) -> None:
    """One run's claims (all but shared interactions) with their replicates → JSON.

    `sensitivity`: the run's sensitivity files (none: that claim is "n/a")."""
    runs = by_run(check_files(interactions, "interaction files"))
    if len(runs) != 1:
        raise ValueError(f"scorecard_run needs one run's files, got runs {sorted(runs)}")
    ((run, epochs),) = runs.items()
    point = json.loads(Path(points).read_text())
    info = next(iter(epochs.values())).meta["model"]
    rows = read_tables(sensitivity) if len(sensitivity) else None
    if rows is not None and set(rows.run) != {run}:
        raise ValueError(f"sensitivity files of runs {sorted(set(rows.run))}, not of run {run}")
    entries = claims_at_both_ends(
        epochs,
        point.get("gap_onset"),
        ratio=ratio,
        variant=variant,
        n_boot=n_boot,
        sensitivity_rows=rows,
    )
    write_json(
        {
            "run": run,
            "arch": info["arch"],
            "dataset": info["dataset"],
            "label_noise": float(label_noise),
            "seed": int(seed),
            "claims": entries,
        },
        claims,
    )


def _end_text(end: Mapping) -> str:
    if end.get("effect") is None or not math.isfinite(end["effect"]):
        return str(end["verdict"])
    return (
        f"{end['verdict']}: {end['effect']:.2f} [{end['low']:.2f}, {end['high']:.2f}] "
        f"vs {end['bound']:.2f}"
    )


def _row(run: str, entry: Mapping) -> dict:
    row = {name: entry.get(name) for name in COLUMNS}
    row.update(run=run, claim=CLAIMS[entry["key"]], rule=RULES[entry["key"]])
    ends = entry.get("ends")
    row.update(
        low_end=_end_text(ends["low"]) if ends else None,
        high_end=_end_text(ends["high"]) if ends else None,
    )
    return row


def scorecard(
    run_claims_list: Sequence[Mapping], shared: Mapping[str, tuple[Claim, dict]] | None = None
) -> pd.DataFrame:
    """One row per run × claim (`COLUMNS`), in the order of `CLAIMS`.

    `run_claims_list`: the runs' claims (`run_step` JSON); `shared`: run → shared-interaction
    claim (`similarity.shared_claims`); runs without one get "n/a".
    """
    rows = []
    for record in sorted(run_claims_list, key=lambda r: r["run"]):
        run = record["run"]
        by_key = {entry["key"]: entry for entry in record["claims"]}
        if shared and run in shared:
            result, extra = shared[run]
            details = ""
            if "coverage" in extra:
                details = (
                    f"coverage {extra['coverage']:.2f}, order-matched random "
                    f"{extra['random_matched']:.2f}, uniform {extra['random_uniform']:.2f}, "
                    f"{extra['partners']} partner(s)"
                )
            by_key["shared_interactions"] = _entry(
                "shared_interactions", result, extra, _interval_text(result), details
            )
        else:
            result = not_applicable("no comparable run")
            by_key["shared_interactions"] = _entry("shared_interactions", result, {}, result.reason)
        for key in CLAIMS:
            rows.append(_row(run, by_key[key]))
    return pd.DataFrame(rows, columns=COLUMNS)


def _replicates(entry: Mapping, name: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in entry.get(name) or []], dtype=float)


def pooled_scorecard(
    run_claims_list: Sequence[Mapping], *, n_boot: int = N_BOOT, seed: int = 0
) -> pd.DataFrame:
    """Runs that differ only in their seed, pooled: the mean effect over seeds with a
    two-stage bootstrap (seeds, then each seed's own replicates over samples), against the
    null pooled the same way, decided by the same rule.  Groups of one run are left out."""
    groups: dict[tuple, list[Mapping]] = {}
    for record in run_claims_list:
        key = (record["dataset"], record["arch"], float(record["label_noise"]))
        groups.setdefault(key, []).append(record)
    rows = []
    for (dataset, arch, noise), records in sorted(groups.items()):
        if len(records) < 2:
            continue
        name = f"{dataset}-{arch}" + (f", {noise:.0%} noise" if noise else "")
        name += f" ({len(records)} seeds)"
        for key in CLAIMS:
            entries = [next((e for e in r["claims"] if e["key"] == key), None) for r in records]
            rows.append(_row(name, _pooled_entry(key, entries, n_boot, seed)))
    return pd.DataFrame(rows, columns=COLUMNS)


def _pooled_entry(key: str, entries: list, n_boot: int, seed: int) -> dict:
    """The seeds' entries of one claim pooled (`_pooled_one`), and for claims about orders
    whose seeds all hold the optimal face, pooled again at each end and decided by both."""
    entry = _pooled_one(key, entries, n_boot, seed)
    present = [e for e in entries if e]
    if key not in ORDER_CLAIMS or entry["verdict"] == "n/a":
        return entry
    if not present or not all(e.get("ends") for e in present):
        return entry
    ends = {
        end: _pooled_one(key, [{**e, **e["ends"][end]} for e in present], n_boot, seed)
        for end in FACE_ENDS
    }
    entry["ends"] = {end: {name: ends[end].get(name) for name in END_FIELDS} for end in ends}
    entry["canonical_verdict"] = entry["verdict"]
    entry["verdict"], entry["reason"] = both_ends(ends["low"], ends["high"])
    return entry


def _pooled_one(key: str, entries: list, n_boot: int, seed: int) -> dict:
    usable = [
        e
        for e in entries
        if e and e.get("verdict") != "n/a" and e.get("replicates") and e.get("onset_located", True)
    ]
    if len(usable) < 2:
        result = not_applicable("fewer than two seeds with this claim")
        return _entry(key, result, {}, result.reason)
    effects = [_replicates(e, "replicates") for e in usable]
    nulls = [_replicates(e, "null_replicates") for e in usable]
    effects = [r[np.isfinite(r)] for r in effects]
    nulls = [r[np.isfinite(r)] for r in nulls]
    if any(r.size == 0 for r in effects + nulls):
        result = not_applicable("a seed without replicates")
        return _entry(key, result, {}, result.reason)
    direction = usable[0]["direction"]
    point = float(np.mean([e["effect"] for e in usable]))
    replicates = clustered_bootstrap(effects, n_boot, seed)
    # The null of the mean over these seeds: each seed's null drawn on its own (no resampling
    # of seeds: they are the ones measured).
    rng = np.random.default_rng(seed + 1)
    null = np.mean([r[rng.integers(0, r.size, n_boot)] for r in nulls], axis=0)
    distribution = key in (
        "phase1_drop",
        "phase2_rise",
        "phase2_near_gap",
        "jaccard_falls",
        "ood_high_order",
        "higher_orders_sensitive",
    )
    # Permutation nulls of Jaccard and OOD are bounded below by 0 (their rules).
    floor = 0.0 if key in ("jaccard_falls", "ood_high_order", "shared_interactions") else None
    smallest = SMALLEST_EFFECTS[key]
    result = claim(
        point,
        replicates,
        null=float(np.mean([e["null"] for e in usable])),
        null_replicates=null,
        direction=direction,
        n=int(sum(e["n"] for e in usable)),
        min_n=2,
        smallest_effect=smallest,
        null_kind="distribution" if distribution or key == "spindle_at_init" else "interval",
        floor=floor,
    )
    if key == "phase2_near_gap":
        # The mean distance is discrete: yes needs the interval strictly below the bound.
        verdict, reason = decide(
            point,
            result.low,
            result.high,
            result.bound,
            direction=direction,
            n=result.n,
            min_n=2,
        )
        result = Claim(**{**result.as_row(), "verdict": verdict, "reason": reason})
    return _entry(key, result, {}, _interval_text(result))


def study_step(
    *,
    claims: Sequence[str | Path],
    samples: str | Path | None,
    table: str | Path,
    pooled: str | Path,
    figure: str | Path,
    n_boot: int = N_BOOT,
) -> None:
    """The scorecard of every run → TSV and figure; runs pooled over seeds → TSV.

    Inputs: every run's claims.json (`run_step`) and the study's similarity_samples.tsv.
    """
    from harsanyi.plots import scorecard_figure

    records = [json.loads(Path(p).read_text()) for p in check_files(claims, "run claims")]
    shared = None
    if samples is not None:
        shared = shared_claims(
            read_tsv(check_files([samples], "similarity samples")[0]), n_boot=n_boot
        )
    card = scorecard(records, shared)
    for record in records:
        if shared and record["run"] in shared:
            result, extra = shared[record["run"]]
            record["claims"].append(_entry("shared_interactions", result, extra, ""))
    write_tsv(card, table)
    write_tsv(pooled_scorecard(records, n_boot=n_boot), pooled)
    scorecard_figure(card, figure)


# --------------------------------------------------------------------------- README section

README_BEGIN = "<!-- study results: begin (written by scripts/readme_results.py; do not edit) -->"
README_END = "<!-- study results: end -->"


def _cell(row) -> str:
    ends = getattr(row, "low_end", None)
    if isinstance(ends, str) and ends and row.verdict != "n/a":
        return f"**{row.verdict}** (low end {row.low_end}; high end {row.high_end})"
    if row.verdict == "n/a" or not np.isfinite(row.effect):
        return row.verdict
    return f"{row.verdict}: {row.effect:.2f} [{row.low:.2f}, {row.high:.2f}] vs {row.bound:.2f}"


def readme_markdown(
    card: pd.DataFrame, pooled: pd.DataFrame, *, study: str, figure: str, command: str
) -> str:
    """The README's study-results section: the figure, the runs pooled over seeds (first:
    the verdicts that do not hang on one training path), then the scorecard as one row per
    run, one column per claim ("verdict: effect [interval] vs null bound"), and the command
    that wrote it."""
    from harsanyi.plots import _run_label, run_order

    def table(frame: pd.DataFrame, label) -> list[str]:
        names = list(dict.fromkeys(frame.key))
        lines = [
            "| run | " + " | ".join(CLAIMS[k] for k in names) + " |",
            "| --- |" + " --- |" * len(names),
        ]
        runs = run_order(frame.run.unique()) if label else list(dict.fromkeys(frame.run))
        for run in runs:
            part = frame[frame.run == run].set_index("key")
            cells = [_cell(part.loc[k]) for k in names]
            lines.append(f"| {label(run) if label else run} | " + " | ".join(cells) + " |")
        return lines

    lines = [
        README_BEGIN,
        "",
        f"Written by `{command}` from the study `{study}`; every number below comes from",
        "`scorecard.tsv` / `scorecard_seeds.tsv` of that study. Cells: verdict: effect [95 %",
        'interval] vs the null bound it must clear (rules: docs/interactions.md, "Verdicts").',
        "Claims about orders are measured at both ends of the optimal face (the least and the",
        "most high-order equally sparse decompositions) and get **yes** or **no** only where",
        f"both ends agree, **{DEPENDS}** where they do not.",
        "",
        f"![two-phase dynamics of the study]({figure})",
        "",
    ]

    def summary(frame: pd.DataFrame) -> str:
        return verdict_text(verdict_counts(frame))

    if not pooled.empty:
        groups = pooled.run.nunique()
        lines += [
            f"Pooled over seeds, {groups} group{'s' if groups != 1 else ''} × "
            f"{pooled.key.nunique()} claims: {summary(pooled)} (runs that differ only in "
            "their seed; a two-stage bootstrap over seeds and samples).",
            "",
        ]
        lines += table(pooled, None)
        lines += ["", "Each run on its own:", ""]
    lines += [
        f"Scorecard, {card.run.nunique()} runs × {card.key.nunique()} claims: {summary(card)}.",
        "",
    ]
    lines += table(card, _run_label)
    details = card.details.fillna("").astype(str) if "details" in card else ""
    power = card[(card.key == "ood_high_order") & (details != "")]
    if not power.empty:
        lines += ["", "Power of the OOD test (mean-order difference, 80 % power, α = 5 %):", ""]
        lines += [f"- {_run_label(r.run)}: {r.details}" for r in power.itertuples()]
    lines += ["", README_END]
    return "\n".join(lines) + "\n"


def splice_readme(readme: str, section: str) -> str:
    """`readme` with the text between the study-results markers replaced by `section`."""
    if readme.count(README_BEGIN) != 1 or readme.count(README_END) != 1:
        raise ValueError("the README needs exactly one pair of study-results markers")
    head, rest = readme.split(README_BEGIN)
    _, tail = rest.split(README_END)
    return head + section.rstrip("\n") + tail
