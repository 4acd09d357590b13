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
  against plain batched inference).

    python3 scripts/docs_numbers.py                 # render every .json into its .md
    python3 scripts/docs_numbers.py --count-tests   # count the tests first, then render

tests/test_docs.py fails where a .md is not what its .json renders or no page includes it (an
include commented out, `<!-- --8<-- ... -->`, does not count), where the test counts moved, or
where the README's install line differs from install.json.
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


def measured_by(record: dict) -> str:
    """The closing line of a benchmark table (benchmarks/records.write_table's record)."""
    return (
        f"{record['threads']} torch thread(s), finished {record['finished']} "
        f"(`{record['command']}`)."
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


def render(path: Path) -> str:
    """The markdown that `path` (a docs/numbers JSON file) renders to."""
    record = json.loads(path.read_text())
    if path.stem == "tests":
        return render_tests(record)
    if path.stem == "install":
        return render_install(record)
    if path.stem.startswith("slurm_"):
        return render_slurm(record)
    if path.stem == "lab_scale":
        return render_lab_scale(record)
    if path.stem.startswith("versions_"):
        return render_versions(record)
    if path.stem == "transforms":
        return render_transforms(record)
    if path.stem.startswith("certified"):  # certified (n = 8, 10), certified_n12
        return render_certified(record)
    if path.stem == "face":
        return render_face(record)
    if path.stem == "first_order":
        return render_first_order(record)
    if path.stem == "generation":
        return render_generation(record)
    if path.stem == "interior_point":
        return render_interior_point(record)
    if path.stem == "extraction":
        return render_extraction(record)
    raise ValueError(
        f"{path}: no renderer for this file (tests, install, lab_scale, slurm_<study>, "
        "versions_<name>, transforms, certified[_<name>], face, first_order, generation, "
        "interior_point, extraction)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count-tests", action="store_true", help="count the tests first")
    args = parser.parse_args()
    if args.count_tests:
        (NUMBERS / "tests.json").write_text(json.dumps(test_counts(), indent=1) + "\n")
    for path in sorted(NUMBERS.glob("*.json")):
        path.with_suffix(".md").write_text(render(path))
        print(f"{path.with_suffix('.md').relative_to(REPO)} from {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
