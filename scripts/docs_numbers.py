"""The numbers the documentation quotes, from the files that the measuring commands wrote.

Each `docs/numbers/<name>.json` is written by the command that measured it, and records that
command; this script renders each into `docs/numbers/<name>.md`, which the pages include
(`--8<-- "docs/numbers/<name>.md"`), so no quoted number is typed by hand:

- `slurm_<study>.json`: `python3 benchmarks/bench_slurm_calls.py <config> --json ...`
  (a study on the one-node SLURM test cluster: wall time, sbatch calls and jobs per rule);
- `install.json`: `python3 scripts/install_size.py --json docs/numbers/install.json`;
- `tests.json`: `python3 scripts/docs_numbers.py --count-tests` (pytest's own collection);
- `lab_scale.json`: `python3 benchmarks/bench_dryrun.py --json docs/numbers/lab_scale.json`;
- `versions_<name>.json`: `python3 benchmarks/bench_versions.py --python ... --json ...` (the
  tiny study under other package versions against its committed scorecard);
- `transforms.json`, `certified.json` (and `certified_n12.json`), `face.json`:
  `python3 benchmarks/bench_transforms.py --json ...`, `python3 benchmarks/bench_certified.py
  --n 8 10 --workers 2 --json ...` (`--n 12`),
  `python3 benchmarks/bench_face.py --n 8 10 --json ...`;
- `first_order.json`, `generation.json`: `python3 benchmarks/bench_first_order.py --n 8 10
  --json ...`, `python3 benchmarks/bench_generation.py --n 8 10 --json ...`;
- `interior_point.json`: `python3 benchmarks/bench_interior_point.py --n 8 10 --per-kind 3
  --workers 1 --json ...` (the CPU rows; each row names its device, so a GPU run's file
  renders the same way);
- `extraction.json`: `python3 benchmarks/bench_extraction.py --json ...` (masked extraction
  against plain batched inference);
- `sgd.json`: `python3 benchmarks/bench_sgd.py --n 6 8 10 --lrs-4n 2 1 0.5 0.25 --iters 5000
  20000 --json ...` (the reference SGD's sweep that chose its defaults);
- `default_study.json`: `python3 benchmarks/bench_default_study.py --json ...` (the README's
  first command in a fresh clone: jobs, wall time, peak memory, its scorecards against the
  committed ones);
- `split.json`: `python3 benchmarks/bench_split.py --json ...` (GPU-seconds asked per sample
  with the games and their decomposition in one job and in two);
- `store.json`: `python3 benchmarks/bench_store.py --json ...` (HDF5 filters side by side);
- `planted[_<name>].json`: `python3 scripts/planted_report.py <results> --json ...` (the
  planted positive controls: in how many samples each run's decomposition shows the rule);
- `memory.json`: `python3 scripts/memory_peaks.py <results> --json ...` (each rule's peak memory
  in a finished study, from Snakemake's benchmark files, beside its ask);
- `gpu_check_<name>.json`: `benchmarks/gpu_check.sh [--cpu-small] --json ...` (the printed
  table, the device and the software).

Each study page that scripts/study_docs.py wrote (docs/<name>/ with its scorecard tables)
also gets `verdicts_<name>.md`: its verdict counts and pooled verdicts, for docs/studies.md.

    python3 scripts/docs_numbers.py                 # render every .json into its .md
    python3 scripts/docs_numbers.py --count-tests   # count the tests first, then render

tests/test_docs.py fails where a .md is not what its .json renders or no page includes it (an
include commented out, `<!-- --8<-- ... -->`, does not count), where the test counts moved, or
where the README's install line or default-study line differs from install.json or
default_study.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
NUMBERS = REPO / "docs" / "numbers"
# One collection in a fresh process; each test's markers printed as a JSON line.
COLLECT = """
import json, sys, pytest
class Markers:
    def pytest_collection_finish(self, session):
        sys.stdout.write("MARKERS " + json.dumps(
            [sorted({m.name for m in item.iter_markers()}) for item in session.items]) + "\\n")
code = pytest.main(["--collect-only", "-q", "-n0", "-p", "no:cacheprovider"], plugins=[Markers()])
sys.exit(int(code))
"""


def test_counts() -> dict:
    """How many tests pytest collects: all, fast (neither slow nor slurm), slow, slurm."""
    done = subprocess.run(
        [sys.executable, "-c", COLLECT], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("MARKERS ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"pytest could not collect the tests:\n{done.stdout[-3000:]}")
    markers = [set(names) for names in json.loads(line.removeprefix("MARKERS "))]
    return {
        "command": "python3 scripts/docs_numbers.py --count-tests",
        "all": len(markers),
        "fast": sum(not ({"slow", "slurm"} & names) for names in markers),
        "slow": sum("slow" in names for names in markers),
        "slurm": sum("slurm" in names for names in markers),
    }


def render_tests(record: dict) -> str:
    return (
        f'{record["all"]} tests: {record["fast"]} fast (`python3 -m pytest -m "not slow and '
        f'not slurm"`), {record["slow"]} slow end-to-end studies (`-m slow`) and '
        f"{record['slurm']} on the one-node SLURM cluster (`-m slurm`; some are slow too). "
        f"Counted by `{record['command']}`.\n"
    )


def render_install(record: dict) -> str:
    return f"{record['packages']} packages, {record['gigabytes']:.1f} GB (`{record['command']}`)\n"


def _seeds(record: dict) -> str:
    """` (seeds [0])`: the seeds of the study as it ran, where the record holds its config."""
    if "config_text" not in record:
        return ""
    seeds = yaml.safe_load(record["config_text"]).get("seeds")
    return f" (seeds {seeds})" if seeds is not None else ""


def render_slurm(record: dict) -> str:
    rows = [
        f"| `{rule}` | {calls} | {record['jobs'][rule]} |"
        for rule, calls in record["sbatch_calls"].items()
    ]
    return "\n".join(
        [
            f"`{record['config']}`{_seeds(record)} on the one-node SLURM test cluster, "
            f"commit {record['commit']}, "
            f"finished {record['finished']}: **{record['total_calls']} sbatch calls** for "
            f"{record['total_jobs']} SLURM jobs and array tasks, **{record['wall_s']} s** wall "
            f"time"
            + (
                f" against {record['local_wall_s']} s for the same study run locally "
                "(`snakemake --cores 2`, right after it)"
                if record.get("local_wall_s")
                else ""
            )
            + f" (`{record['command']}`).",
            "",
            "| rule or group | sbatch calls | jobs or array tasks |",
            "| --- | --- | --- |",
            *rows,
            f"| total | {record['total_calls']} | {record['total_jobs']} |",
            "",
        ]
    )


def render_lab_scale(record: dict) -> str:
    rows = [
        f"| `{rule}` | {record['jobs'].get(rule.removeprefix('group '), low)} | {low} | {high} |"
        for rule, (low, high) in record["sbatch_calls"].items()
    ]
    slurm = record["dry_run_slurm_s"]
    return "\n".join(
        [
            f"The lab-scale plan ({record['plan']} = {record['runs']} runs, "
            f"{record['checkpoints_per_run']} checkpoints each): **{record['total_jobs']} jobs** "
            f"and **{record['fewest_calls']} to {record['most_calls']} sbatch calls** "
            f"(`{record['command']}`; its `snakemake -n` took {record['dry_run_s']} s"
            + (f", {slurm} s with `--profile profiles/slurm`" if slurm is not None else "")
            + " on this 2-core machine).",
            "",
            "| rule or group | jobs | fewest sbatch calls | most |",
            "| --- | --- | --- | --- |",
            *rows,
            "",
        ]
    )


def render_versions(record: dict) -> str:
    changed = ", ".join(
        f"{package} {v['here']} (lock {v['lock']})" for package, v in record["changed"].items()
    )
    return (
        f"`{record['study']}` with {changed or 'the locked versions'}, against "
        f"`{record['against']}` (made with the lock), finished {record['finished']}: "
        f"**{record['verdicts_changed']} of {record['rows']} verdicts** differ; "
        f"{record['cells_changed']} cells differ in {record['rows_changed']} of the "
        f"{record['rows']} rows; the largest change of an effect is "
        f"{record['largest_effect_change']:.3g} (`{record['command']}`).\n"
    )


def render_transforms(record: dict) -> str:
    rows = [
        f"| {r['n']} | {r['batch']} | {r['and_ms']:.3f} ms | {r['or_ms']:.3f} ms | "
        f"{r['dense_ms']:.3g} ms | {r['ratio']:.3g}× | {r['max_diff']:.1e} |"
        for r in record["rows"]
    ]
    return "\n".join(
        [
            "| n | batch | butterfly AND | butterfly OR | dense A·v | dense / butterfly | "
            "max difference |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
            f"Median of 11 calls (3 for dense at n = 14), float64, torch {record['torch']}, "
            f"{record['threads']} threads, finished {record['finished']} "
            f"(`{record['command']}`).",
            "",
        ]
    )


def versions(record: dict) -> str:
    """ " With torch 2.14.1, numpy 2.4.6, …": the package versions a record holds (records
    older than that field hold none: an empty string)."""
    packages = record.get("packages")
    if not packages:
        return ""
    listed = ", ".join(f"{name} {version}" for name, version in sorted(packages.items()))
    return f" With {listed}."


def measured_by(record: dict) -> str:
    """The closing line of a benchmark table (benchmarks/records.write_table's record)."""
    return (
        f"{record['threads']} torch thread(s), finished {record['finished']} "
        f"(`{record['command']}`)." + versions(record)
    )


def render_certified(record: dict) -> str:
    def gap(value) -> str:
        return "—" if value is None else f"{value:.1e}"

    rows = [
        f"| {r['n']} | {r['solver']} | {r['seconds_per_sample']:.3g} | "
        f"{r['excess_median']:+.2g} | {r['excess_worst']:+.2g} | {gap(r['max_gap'])} | "
        f"{r['certified']}/{r['games']} | {r['jaccard_mean']:.3f} / {r['jaccard_min']:.3f} |"
        for r in record["rows"]
    ]
    return "\n".join(
        [
            "| n | solver | s/sample | L1/OPT − 1 (median) | worst | max gap | certified | "
            "Jaccard mean / min |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
            *rows,
            "",
            measured_by(record),
            "",
        ]
    )


def render_face(record: dict) -> str:
    rows = [
        f"| {r['n']} | {r['games']} | {r['exact_s']:.3f} | {r['face_s']:.3f} | "
        f"{r['face_s'] / r['exact_s']:.2f}× | "
        + " / ".join(f"{o:.2f}" for o in r["mean_order"])
        + f" | {r['certified']}/{r['samples']} | {r['max_gap']:.1e} |"
        for r in record["rows"]
    ]
    return "\n".join(
        [
            "| n | games | exact s/sample | face s/sample | ratio | mean order: low / canonical "
            "/ high | certified | max gap (orders) |",
            "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |",
            *rows,
            "",
            measured_by(record),
            "",
        ]
    )


def render_first_order(record: dict) -> str:
    def iterations(r: dict) -> str:
        if r["iterations_median"] is None:
            return f"— (none in {record['iters']:,})"
        return f"{r['iterations_median']:,} / {r['iterations_max']:,}"

    rows = [
        f"| {r['n']} | {r['games']} | {r['exact_s']:.3f} | {r['admm_s']:.3f} | "
        f"{iterations(r)} | {r['certified']}/{r['samples']} | "
        f"{r['jaccard_mean']:.3f} / {r['jaccard_min']:.3f} |"
        for r in record["rows"]
    ]
    return "\n".join(
        [
            "| n | games | exact s/sample | ADMM s/sample | ADMM iterations (median / max) | "
            "certified | Jaccard mean / min |",
            "| --- | --- | ---: | ---: | ---: | ---: | --- |",
            *rows,
            "",
            f"ADMM ρ = {record['rho']:g}, r = {record['ratio']:g}, at most "
            f"{record['iters']:,} iterations; {measured_by(record)}",
            "",
        ]
    )


def render_generation(record: dict) -> str:
    """One line per n and kind of game: generated columns / all columns kept."""
    kinds: dict[tuple, list[dict]] = {}
    for r in record["rows"]:
        kinds.setdefault((r["n"], r["games"]), []).append(r)

    def each(r: dict) -> str:
        return ", ".join(f"{s:.2f}" for s in r["generation_s"])

    rows = [
        f"| {n} | {games} | {' / '.join(r['columns'] for r in runs)} | "
        f"{runs[0]['exact_s']:.3f} | {' / '.join(each(r) for r in runs)} | "
        f"{max(r['best_case_s'] for r in runs):.3f} |"
        for (n, games), runs in kinds.items()
    ]
    every = record["rows"]
    return "\n".join(
        [
            "| n | games | columns | exact s/sample | generation s (each game) | "
            "best case s (worst) |",
            "| --- | --- | --- | ---: | --- | ---: |",
            *rows,
            "",
            f"Over every game and both ways of keeping columns: L1/OPT − 1 at worst "
            f"{max(r['excess_worst'] for r in every):+.1e}, certified gap at most "
            f"{max(r['max_gap'] for r in every):.1e}, Jaccard with `exact` at least "
            f"{min(r['jaccard_min'] for r in every):.3f}; up to {record['add']} rows and columns "
            f"added per round; {measured_by(record)}",
            "",
        ]
    )


def _span(values: list[float], spec: str) -> str:
    """`low–high` of `values` in `spec`, one number where both read the same."""
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low}–{high}"


def render_interior_point(record: dict) -> str:
    """One line per device, n and batch, ranges over the kinds of game."""
    batches: dict[tuple, list[dict]] = {}
    for r in record["rows"]:
        batches.setdefault((r["device"], r["n"], r["samples"], r["workers"]), []).append(r)
    threads = record["threads"]
    tol = format(record["tol"], "g").replace("e-0", "e-")  # 1e-8, not 1e-08

    def device(name: str) -> str:
        return f"{name}, {threads} thread{'s' if threads != 1 else ''}" if name == "CPU" else name

    rows = [
        f"| {device(name)} | {n} | {samples} | {_span([r['ipm_per_s'] for r in runs], '.1f')} | "
        f"{_span([r['exact_s'] for r in runs], '.3f')}"
        + (f" ({workers} worker threads)" if workers != 1 else "")
        + f" | {sum(r['reached'] for r in runs):,}/{sum(r['samples'] for r in runs):,} | "
        f"{min(r['jaccard_min'] for r in runs):.3f} "
        f"({_span([r['jaccard_mean'] for r in runs], '.3f')}) | "
        f"{max(r['change'] for r in runs):.1e} |"
        for (name, n, samples, workers), runs in batches.items()
    ]
    return "\n".join(
        [
            f"| device | n | games per kind (one batch) | ipm samples/s | `exact` s/sample | "
            f"reached {tol} | Jaccard min (mean) | max \\|ΔI\\| / max \\|I\\| |",
            "| --- | --- | --- | ---: | ---: | --- | --- | ---: |",
            *rows,
            "",
            f"Ranges over the kinds of game; at most {record['max_iter']} iterations; torch "
            f"{record['torch']}, {threads} torch thread(s), finished {record['finished']} "
            f"(`{record['command']}`).",
            "",
        ]
    )


def render_extraction(record: dict) -> str:
    target = record["target"]
    rows = [
        f"| {r['model']} | {r['rows']:,} | {r['batch']:,} | {r['masked_per_s']:,.0f} | "
        f"{r['plain_per_s']:,.0f} | {100 * r['ratio']:.0f} % | "
        f"{'met' if r['ratio'] >= target else 'not met'} |"
        for r in record["rows"]
    ]
    return "\n".join(
        [
            f"| model | rows | batch | masked rows/s | plain rows/s | masked / plain | "
            f"≥ {100 * target:.0f} % |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
            *rows,
            "",
            f"n = {record['players']}, {record['samples']} samples × {2 ** record['players']:,} "
            f"masks, median of {record['repeats']} interleaved runs; torch {record['torch']}, "
            + measured_by(record),
            "",
        ]
    )


def render_sgd(record: dict) -> str:
    kinds = list(record["rows"][0]["kinds"])
    default = (record["default_lr_times_4n"], record["default_iters"])

    def is_default(r: dict) -> bool:
        return (r["lr_times_4n"], r["iters"]) == default

    def cells(r: dict) -> list[str]:
        out = [
            str(r["n"]),
            f"{r['lr_times_4n']:g}",
            f"{r['iters']:,}",
            f"{r['seconds_per_sample']:.3g}",
        ]
        for kind in kinds:
            k = r["kinds"][kind]
            out.append(f"{k['above_start']}/{k['games']}")
            out.append(f"{k['final_over_opt_median']:.3f} ({k['final_over_opt_max']:.3f})")
        return [f"**{cell}**" for cell in out] if is_default(r) else out

    games = sum(r["kinds"][kind]["games"] for r in record["rows"] for kind in kinds)
    chosen = [r for r in record["rows"] if is_default(r)]
    above = sum(r["kinds"][kind]["above_start"] for r in chosen for kind in kinds)
    chosen_games = sum(r["kinds"][kind]["games"] for r in chosen for kind in kinds)
    header = ["n", "lr·4^n", "iterations", "s/sample"]
    for kind in kinds:
        header += [f"{kind}: ≥ start", "L1/OPT median (max)"]
    return "\n".join(
        [
            "| " + " | ".join(header) + " |",
            "| " + " | ".join(["---"] * len(header)) + " |",
            *("| " + " | ".join(cells(r)) + " |" for r in record["rows"]),
            "",
            f"In bold the defaults (lr = {default[0]:g}/4^n, {default[1]:,} iterations): "
            f"{above} of the {chosen_games} games end at or above their start under them; "
            f"{games} games × settings in all. " + measured_by(record),
            "",
        ]
    )


def _duration(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"{hours} h {minutes:02d} min {seconds:02d} s"
        if hours
        else f"{minutes} min {seconds:02d} s"
    )


def readme_default_study(record: dict) -> str:
    """The README's line on the default study's size and time."""
    changed = sum(c["cells_changed"] for c in record["compared"].values())
    verdicts = sum(c["verdicts_changed"] for c in record["compared"].values())
    scorecards = (
        "its scorecards equal to the committed ones cell for cell"
        if changed == 0
        else f"its scorecards {verdicts} verdicts and {changed} cells off the committed ones"
    )
    return (
        f"{record['jobs']['total']} jobs, {_duration(record['wall_s'])} on "
        f"{record['cores']} cores, {scorecards} (`{record['command']}`)"
    )


def render_default_study(record: dict) -> str:
    jobs = record["jobs"]
    largest = sorted(
        ((count, rule) for rule, count in jobs.items() if rule != "total"), reverse=True
    )[:4]
    compared = "; ".join(
        f"`{table}` against `{c['against']}`: **{c['verdicts_changed']} of {c['rows']} "
        f"verdicts** and {c['cells_changed']} cells differ"
        for table, c in record["compared"].items()
    )
    load = record["load_average"]
    return (
        f"`python3 -m snakemake --cores {record['cores']}` from scratch in a fresh clone of commit "
        f"{record['commit'][:7]} (study `{record['study']}`): **{jobs['total']} jobs** ("
        + ", ".join(f"{count} `{rule}`" for count, rule in largest)
        + f", …) in **{_duration(record['wall_s'])}** on {record['cores']} of the "
        f"{record['cpus']} cores of this {record['machine']} machine (load average "
        f"{load['start']:.2f} before it started, {load['end']:.2f} at its end, its own jobs "
        f"included), peak memory of one process {record['peak_rss_gib']:.2f} GiB. Its "
        "scorecards against the committed ones, "
        f"cell by cell: {compared}. Finished {record['finished']} (`{record['command']}`)."
        + versions(record)
        + "\n"
    )


def render_gpu_check(record: dict) -> str:
    return "\n".join(
        [
            "```",
            record["table"].rstrip(),
            "```",
            "",
            (
                "every target met"
                if record["targets_failed"] == 0
                else f"**{record['targets_failed']} target(s) failed**"
            )
            + f"; {record['device']}, torch {record['torch']}, {record['threads']} CPU "
            f"thread(s), finished {record['finished']} (`{record['command']}`)." + versions(record),
            "",
        ]
    )


def study_pages() -> list[Path]:
    """The directories under docs/ that scripts/study_docs.py wrote from a study (they hold its
    scorecard tables)."""
    return sorted(path.parent for path in (REPO / "docs").glob("*/scorecard_seeds.tsv"))


def render_study_verdicts(page: Path) -> str:
    """A study's verdicts as docs/numbers/verdicts_<name>.md: the counts per run and pooled over
    seeds, and the pooled verdicts, one row per group of runs, from its copied tables."""
    from harsanyi.analyses.common import read_tsv
    from harsanyi.analyses.scorecard import CLAIMS, verdict_counts, verdict_text
    from harsanyi.plots import run_order

    card, pooled = (read_tsv(page / name) for name in ("scorecard.tsv", "scorecard_seeds.tsv"))
    where = f"docs/{page.name}"
    claims = list(dict.fromkeys(pooled.key))
    rows = []
    for run in run_order(pooled.run.unique()):
        verdicts = pooled[pooled.run == run].set_index("key").verdict
        rows.append(f"| {run} | " + " | ".join(str(verdicts[k]) for k in claims) + " |")
    return "\n".join(
        [
            f"Per run, {card.run.nunique()} runs × {card.key.nunique()} claims: "
            f"{verdict_text(verdict_counts(card))}. Pooled over seeds, {pooled.run.nunique()} "
            f"groups × {len(claims)} claims: {verdict_text(verdict_counts(pooled))} "
            f"(`{where}/scorecard.tsv`, `scorecard_seeds.tsv`; effects, intervals and nulls in "
            f"[{where}/README.md]({page.name}/README.md)).",
            "",
            "| runs pooled over seeds | " + " | ".join(CLAIMS[k] for k in claims) + " |",
            "| --- |" + " --- |" * len(claims),
            *rows,
            "",
        ]
    )


def render_memory(record: dict) -> str:
    def mb(value) -> str:
        return "—" if value is None else f"{value:,.0f}"

    rows = [
        f"| `{r['rule']}` | {r['jobs']} | {mb(r['max_rss_mb'])} | {mb(r['mem_mb'])} | "
        f"{r['median_s']:.1f} / {r['max_s']:.1f} |"
        for r in record["rows"]
    ]
    return "\n".join(
        [
            "| rule | jobs | peak max_rss (MB) | ask `mem_mb` (MB) | wall s, median / max |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"From the Snakemake benchmark files of {', '.join(record['studies'])}, finished "
            f"{record['finished']} (`{record['command']}`)." + versions(record),
            "",
        ]
    )


def render_split(record: dict) -> str:
    names = {"lenet": "LeNet", "vgg11": "VGG-11", "resnet18": "ResNet-18"}

    def name(r: dict) -> str:
        label = names.get(r["arch"], r["arch"])
        return label + (f" (width {r['width']:g})" if r["width"] is not None else "")

    rows = []
    for r in record["rows"]:
        before = r["games_s"] + r["decompose_s"]
        rows.append(
            f"| {name(r)} | {r['games_s']:.3f} | {r['decompose_s']:.3f} | {before:.3f} | "
            f"{r['games_s']:.3f} | {r['games_s'] / before:.1%} |"
        )
    return "\n".join(
        [
            "| architecture | games s/sample | decomposition s/sample | GPU-s asked per sample "
            "before (one job) | now (games only) | now / before |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            f"n = {record['n']}, exact with the face's ends, {record['rows'][0]['samples']} "
            "samples per model; " + measured_by(record),
            "",
        ]
    )


def render_store(record: dict) -> str:
    rows = [
        f"| {r['filter']}{' (the library)' if r['library'] else ''} | {r['kib']:,.0f} KiB | "
        f"{r['write_ms']:.0f} ms | {r['read_ms']:.2f} ms |"
        for r in record["rows"]
    ]
    return "\n".join(
        [
            "| filter | size | write all | read one sample (2 datasets) |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
            f"n = {record['n']}, {record['samples']} samples; finished "
            f"{record['finished']} (`{record['command']}`)." + versions(record),
            "",
        ]
    )


def _same(values) -> dict | None:
    """The one value all of `values` share; ValueError where they differ."""
    distinct = {json.dumps(v, sort_keys=True) for v in values}
    if len(distinct) > 1:
        raise ValueError(f"the rows recorded different package versions: {sorted(distinct)}")
    return json.loads(distinct.pop()) if distinct else None


def render_planted(record: dict) -> str:
    among = (
        "among coalitions of two or more players"
        if record["min_order"] == 2
        else f"among coalitions of {record['min_order']} or more players"
    )
    lines = [
        f"- `{r['dataset']}` ({r['run']}, epoch {r['epoch']}): planted rule recovered in "
        f"**{r['recovered']} of {r['samples']}** samples"
        for r in record["rows"]
    ]
    return "\n".join(
        [
            *lines,
            "",
            f"Ranked {among}, salient at {record['salient_ratio']:g} of the sample's max |I|; "
            f"finished {record['finished']} (`{record['command']}`)."
            + versions({"packages": _same(r.get("packages") for r in record["rows"])}),
            "",
        ]
    )


# Which renderer a docs/numbers/<name>.json takes: by its whole name, else by how it begins.
RENDERERS = {
    "tests": render_tests,
    "install": render_install,
    "lab_scale": render_lab_scale,
    "transforms": render_transforms,
    "face": render_face,
    "first_order": render_first_order,
    "generation": render_generation,
    "interior_point": render_interior_point,
    "extraction": render_extraction,
    "sgd": render_sgd,
    "default_study": render_default_study,
    "memory": render_memory,
    "split": render_split,
    "store": render_store,
}
RENDERERS_BY_PREFIX = {
    "slurm_": render_slurm,
    "versions_": render_versions,
    "certified": render_certified,  # certified (n = 8, 10), certified_n12
    "gpu_check": render_gpu_check,
    "planted": render_planted,  # planted, planted_all_orders
}


def render(path: Path) -> str:
    """The markdown that `path` (a docs/numbers JSON file) renders to."""
    record = json.loads(path.read_text())
    if path.stem in RENDERERS:
        return RENDERERS[path.stem](record)
    for prefix, renderer in RENDERERS_BY_PREFIX.items():
        if path.stem.startswith(prefix):
            return renderer(record)
    known = [*RENDERERS, *(f"{prefix}…" for prefix in RENDERERS_BY_PREFIX)]
    raise ValueError(f"{path}: no renderer for this file (known: {', '.join(known)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count-tests", action="store_true", help="count the tests first")
    args = parser.parse_args()
    if args.count_tests:
        (NUMBERS / "tests.json").write_text(json.dumps(test_counts(), indent=1) + "\n")
    for path in sorted(NUMBERS.glob("*.json")):
        path.with_suffix(".md").write_text(render(path))
        print(f"{path.with_suffix('.md').relative_to(REPO)} from {path.name}")
    for page in study_pages():
        shown = NUMBERS / f"verdicts_{page.name}.md"
        shown.write_text(render_study_verdicts(page))
        print(f"{shown.relative_to(REPO)} from {page.relative_to(REPO)}/scorecard*.tsv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
