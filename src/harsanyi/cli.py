"""The `harsanyi` command line: inspect results files and the run store.

Structure: `build_parser()` builds the argparse tree; each subcommand has an `add_<name>`
function that registers its parser and sets `func` to a `cmd_<name>(args) -> int` handler.
Adding a subcommand is adding these two functions and one line in `build_parser()`.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from harsanyi.maintenance import DEFAULT_ABANDONED_DAYS, DEFAULT_GRACE_HOURS
from harsanyi.masks import orders
from harsanyi.stats import DEFAULT_RATIO, salient_count
from harsanyi.store import (
    LAYOUT_VERSION,
    RUN_MANIFEST,
    SPLITS,
    ResultsFileError,
    catalog,
    read_manifest,
    read_results,
    run_dirs,
    verify_store,
)


class CliError(Exception):
    """A problem to report in one line on stderr, with exit code 1."""


# --------------------------------------------------------------------------- show


def mean_abs_per_order(interactions: np.ndarray, n: int) -> np.ndarray:
    """(n,) mean |I(S)| over samples and coalitions of each order 1..n (∅ left out)."""
    order = orders(n)
    magnitude = np.abs(interactions)
    return np.array([magnitude[:, order == k].mean() for k in range(1, n + 1)])


def _json_line(value: object) -> str:
    return json.dumps(value, sort_keys=True)


FORMATS = ("text", "json", "tsv")
WIDTH = 100  # columns of a terminal the text output fits


def _number(value: float) -> str:
    return f"{value:.4g}"


def summarise(value: object, *, max_items: int = 6) -> object:
    """A value for a person: lists of more than `max_items` numbers become 'N values,
    min … max, mean', floats 4 significant digits; dicts and short lists recursively."""
    if isinstance(value, dict):
        return {k: summarise(v, max_items=max_items) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(value) > max_items and len(numbers) == len(value):
            array = np.asarray(numbers, dtype=float)
            return (
                f"{array.size} values, {_number(array.min())} … {_number(array.max())}, "
                f"mean {_number(array.mean())}"
            )
        if len(value) > max_items:
            return [summarise(v) for v in value[:max_items]] + [f"… {len(value)} in all"]
        return [summarise(v, max_items=max_items) for v in value]
    if isinstance(value, float):
        return float(_number(value))
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"  # a sha256: its first 12 digits identify it
    return value


def _text_line(key: str, value: object, prefix: str = "") -> str:
    """`key` and a summary of `value`, wrapped to WIDTH columns."""
    text = json.dumps(summarise(value), sort_keys=True, ensure_ascii=False)
    return textwrap.fill(
        f"{prefix}{text}",
        WIDTH,
        initial_indent=f"{key:<12} ",
        subsequent_indent=" " * 13,
        break_long_words=True,
        break_on_hyphens=False,
    )


def _certificate_summary(results) -> dict:
    """Per-file summary of the decomposition's certificate (L1, lower bound, relative gap)."""
    if results.gap is None:
        return {"stored": False}
    gap = np.asarray(results.gap, dtype=float)
    known = gap[~np.isnan(gap)]
    return {
        "stored": True,
        "certified": int(np.sum(results.certified)),
        "samples": len(gap),
        "max_gap": float(known.max()) if known.size else None,
        "median_gap": float(np.median(known)) if known.size else None,
        "l1_median": float(np.median(results.l1)) if len(gap) else None,
        "lower_bound_median": float(np.nanmedian(results.lower_bound)) if known.size else None,
    }


def _face_summary(results) -> dict:
    """The optimal face's two ends: their mean orders (W / L1 without ∅) and certificates."""
    if results.face is None:
        return {"stored": False}
    orders = {}
    certified = np.ones(results.n_samples, bool)
    for end, data in results.face.items():
        empty = np.abs(data["I_and"][:, 0]) + np.abs(data["I_or"][:, 0])
        rest = data["l1"] - empty
        safe = np.where(rest > 0, rest, 1.0)
        orders[end] = np.where(rest > 0, data["weighted_order"] / safe, 0.0)
        tol = (results.meta.get("solver") or {}).get("face", {}).get("order_gap_tol", 1e-3)
        certified &= np.nan_to_num(data["gap"], nan=np.inf) <= tol
    width = orders["high"] - orders["low"]
    return {
        "stored": True,
        "mean_order_low_median": float(np.median(orders["low"])) if width.size else None,
        "mean_order_high_median": float(np.median(orders["high"])) if width.size else None,
        "width_max": float(width.max()) if width.size else None,
        "certified": int(certified.sum()),
    }


def _show_data(args: argparse.Namespace):
    """(fields, per-order table, salient counts) of a results file."""
    results = read_results(args.file)
    meta = results.meta
    present = [s for s in SPLITS if (results.split == s).any()]
    fields = {
        "file": str(args.file),
        "layout_version": LAYOUT_VERSION,
        "library_version": meta["library_version"],
        "created": meta["created"],
        "samples": {s: int((results.split == s).sum()) for s in present},
        "n": results.n,
        "players": meta["players"],
        "player_positions": results.player_positions is not None,
        **{key: meta[key] for key in ("model", "baseline", "output", "solver", "extra")},
        "certificate": _certificate_summary(results),
        "face": _face_summary(results),
    }
    table, salient = {}, {}
    if present and results.n:
        for split in present:
            part = results.subset(split)
            table[f"{split} AND"] = mean_abs_per_order(part.I_and, results.n)
            table[f"{split} OR"] = mean_abs_per_order(part.I_or, results.n)
            salient[split] = float(salient_count(part.I_and, part.I_or, ratio=args.ratio).mean())
    frame = pd.DataFrame(table, index=pd.Index(range(1, results.n + 1), name="order"))
    return fields, frame, salient


def cmd_show(args: argparse.Namespace) -> int:
    fields, frame, salient = _show_data(args)
    if args.format == "json":
        print(
            json.dumps(
                {
                    **fields,
                    "ratio": args.ratio,
                    "mean_abs_per_order": frame.reset_index().to_dict(orient="records"),
                    "salient_per_sample": salient,
                },
                indent=1,
                sort_keys=True,
                default=str,
            )
        )
        return 0
    if args.format == "tsv":
        print(frame.to_csv(sep="\t"), end="")
        return 0
    counts = ", ".join(f"{s} {c}" for s, c in fields["samples"].items())
    print(f"file         {fields['file']}")
    print(f"layout       version {LAYOUT_VERSION}, harsanyi {fields['library_version']}")
    print(f"created      {fields['created']}")
    print(f"samples      {sum(fields['samples'].values())} ({counts or 'none'})")
    print(_text_line("players", fields["players"], prefix=f"n = {fields['n']}: "))
    if fields["player_positions"]:
        print("             player positions stored per sample")
    certificate = dict(fields["certificate"])
    if certificate.get("stored"):  # for a person: "40 of 40 samples"
        total = certificate.pop("samples")
        certificate["certified"] = f"{certificate['certified']} of {total} samples"
    for key in ("model", "baseline", "output", "solver", "certificate", "extra"):
        print(_text_line(key, certificate if key == "certificate" else fields[key]))
    face = fields["face"]
    if face["stored"] and face["mean_order_low_median"] is not None:
        print(
            f"optimal face mean order (median) {face['mean_order_low_median']:.2f} to "
            f"{face['mean_order_high_median']:.2f}, widest {face['width_max']:.2f}; "
            f"{face['certified']} of {sum(fields['samples'].values())} certified"
        )
    if frame.empty:
        return 0
    print("\nmean |I| per order (empty set left out):")
    print(frame.to_string(float_format=lambda x: f"{x:.4g}", line_width=WIDTH))
    line = ", ".join(f"{split} {count:.1f}" for split, count in salient.items())
    print(f"\nsalient interactions per sample (|I| >= {args.ratio:g}·max|I|, AND+OR): {line}")
    return 0


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text for a terminal (default; fits 100 columns, long arrays summarised), json "
        "(everything, full precision) or tsv (the table only) for programs",
    )


def add_show(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "show",
        help="summarise one interaction results file (.h5)",
        description="Summarise a results file: samples per split, model and checkpoint "
        "identity, players, baseline, output, solver, mean |I| per order and the number of "
        "salient interactions per sample.",
        epilog="example:\n  harsanyi show results/digits/runs/digits-lenet-s0-1a2b3c4d5e6f/"
        "interactions/x-0a1b2c3d4e5f/epoch_0008.h5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", type=Path, help="results file written by harsanyi")
    parser.add_argument(
        "--ratio",
        type=float,
        default=DEFAULT_RATIO,
        help="salient threshold as a fraction of max|I| per sample (default %(default)s)",
    )
    _add_format(parser)
    parser.set_defaults(func=cmd_show)


# --------------------------------------------------------------------------- extract


def _cells(text: str) -> list[list[int]]:
    try:
        return [[int(part) for part in cell.split(",")] for cell in text.split(";") if cell]
    except ValueError:
        raise argparse.ArgumentTypeError(f"cells must look like '0,1;2,3', got {text!r}") from None


def cmd_extract(args: argparse.Namespace) -> int:
    from harsanyi.extraction import extract_checkpoint
    from harsanyi.jobs import setup_job

    setup_job(threads=args.threads)
    players = {"n": args.n, "seed": args.player_seed}
    if args.grid:
        players["grid"] = args.grid
    if args.cells:
        players["cells"] = args.cells
    if args.features:
        players["features"] = args.features
    baseline = {"type": args.baseline} if args.baseline else None
    if args.layer:
        if not (args.arch and baseline):
            raise CliError("--layer needs --arch and --baseline feature_map")
        baseline["layers"] = {args.arch: args.layer}
    written = extract_checkpoint(
        args.checkpoint,
        args.dataset,
        args.out,
        root=args.root,
        arch=args.arch,
        players=players,
        baseline=baseline,
        samples={
            "train_per_class": args.train_per_class,
            "test_per_class": args.test_per_class,
            "flipped": args.flipped,
            "seed": args.sample_seed,
        },
        extraction={
            "solver": args.solver,
            "qthres": args.qthres,
            "iters": args.iters,
            "lr": args.lr,
            "output": args.output,
        },
        label_noise=args.label_noise,
        noise_seed=args.noise_seed,
        data_options={"max_train": args.max_train, "max_test": args.max_test},
        device=args.device,
    )
    print(written)
    return 0


def add_extract(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="AND-OR interactions of one checkpoint on chosen samples → HDF5",
        description="Explain a trained checkpoint: choose samples (stratified per class, "
        "seeded) and players, compute v on all 2^n masked inputs, decompose it into sparse "
        "AND and OR interactions and write a results file (see docs/hdf5-layout.md). The "
        "sample manifest is written beside the output as OUT.samples.json.",
        epilog="examples:\n"
        "  harsanyi extract run/checkpoints/epoch_0010.pt --dataset digits --grid 8 8 "
        "--n 10 --out e10.h5\n"
        "  harsanyi extract model.pt --arch mlp --dataset breast_cancer --features 0 3 7 "
        "--n 3 --solver lp --out bc.h5",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint written by training (.pt)")
    parser.add_argument("--dataset", required=True, help="dataset name, e.g. digits, mnist")
    parser.add_argument("--out", required=True, type=Path, help="results file to write (.h5)")
    parser.add_argument("--root", help="data root of a real dataset")
    parser.add_argument("--arch", help="architecture (default: read from the checkpoint)")
    parser.add_argument("--max-train", type=int, help="seeded subset size, as in training")
    parser.add_argument("--max-test", type=int, help="seeded subset size, as in training")
    group = parser.add_argument_group("players")
    group.add_argument("--n", type=int, default=10, help="number of players (default 10)")
    group.add_argument(
        "--grid",
        type=int,
        nargs=2,
        metavar=("ROWS", "COLS"),
        help="patch grid over the image (images)",
    )
    group.add_argument("--cells", type=_cells, help="explicit grid cells 'r,c;r,c;...'")
    group.add_argument("--features", type=int, nargs="+", help="feature columns (tabular)")
    group.add_argument("--player-seed", type=int, default=0, help="seed of the player choice")
    group.add_argument(
        "--baseline", default=None, help="zero | mean | feature_map | mask_token | pad_token"
    )
    group.add_argument("--layer", help="module masked with --baseline feature_map")
    group = parser.add_argument_group("samples")
    group.add_argument("--train-per-class", type=int, default=2)
    group.add_argument("--test-per-class", type=int, default=2)
    group.add_argument("--flipped", type=int, default=10, help="flipped samples (with noise)")
    group.add_argument("--sample-seed", type=int, default=0)
    group.add_argument(
        "--label-noise",
        type=float,
        default=0.0,
        help="the noise the model was trained with (adds flipped samples)",
    )
    group.add_argument("--noise-seed", type=int, default=0)
    group = parser.add_argument_group("decomposition")
    group.add_argument(
        "--solver",
        default="exact",
        choices=["exact", "lp", "sgd", "adam"],
        help="exact (canonical optimum, certified; default) | lp (an optimum, certified) | "
        "sgd (the published reference, uncertified) | adam (uncertified)",
    )
    group.add_argument("--qthres", type=float, default=0.02)
    group.add_argument("--iters", type=int)
    group.add_argument("--lr", type=float)
    group.add_argument("--output", default="log_odds", help="log_odds | logit | log_softmax")
    parser.add_argument("--device", default="auto", help="auto (GPU if visible) | cpu | cuda:0")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.set_defaults(func=cmd_extract)


# --------------------------------------------------------------------------- store


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_store_ls(args: argparse.Namespace) -> int:
    table = catalog(args.root)
    if not args.settings:
        table = table.drop(columns="settings")
    if args.format == "json":
        records = table.to_dict(orient="records")
        for record in records:
            if "settings" in record:
                record["settings"] = json.loads(record["settings"])
        print(json.dumps(records, indent=1, default=str))
        return 0
    if args.format == "tsv":
        print(table.to_csv(sep="\t", index=False), end="")
        return 0
    if table.empty:
        print(f"no runs under {args.root}")
        return 0
    # The run directory name already holds dataset, architecture, seed, noise and hash.
    name = min(max(len("run"), int(table.run.str.len().max())), WIDTH - 30)
    print(f"{'run':<{name}}  {'checkpoints':>11}  {'interaction files':>17}")
    for row in table.itertuples():
        print(
            f"{_cut(row.run, name):<{name}}  {row.n_checkpoints:>11}  {row.n_interaction_files:>17}"
        )
        if args.settings:
            for line in textwrap.wrap(row.settings, WIDTH - 4):
                print(f"    {line}")
    print(f"{len(table)} run(s) under {args.root}")
    return 0


def _find_run(root: Path, run: str) -> Path:
    """The run directory named `run`, or the only one whose name contains it; run
    directories lie directly under `root` or under `<root>/<dataset>/runs/`."""
    if not root.is_dir():
        raise CliError(f"results root {root} is not a directory")
    runs = run_dirs(root)
    if (root / run).is_dir() and (root / run).resolve() in {p.resolve() for p in runs}:
        return root / run  # a run directory directly under root, named whole
    if not run or "/" in run or run in (".", ".."):
        raise CliError(f"run {run!r} is not a run directory name in {root}")
    exact = [p for p in runs if p.name == run]
    matches = exact or [p for p in runs if run in p.name]
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise CliError(
            f"run {run!r} must match exactly one run directory in {root}; matches: {found}"
        )
    return matches[0]


def cmd_store_show(args: argparse.Namespace) -> int:
    run_dir = _find_run(args.root, args.run)
    print(f"run {run_dir}")
    if (run_dir / RUN_MANIFEST).exists():
        print(json.dumps(read_manifest(run_dir), indent=2, sort_keys=True))
    else:
        print(f"(no {RUN_MANIFEST})")
    print("files:")
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(run_dir)}  {path.stat().st_size:,} bytes")
    return 0


def cmd_store_verify(args: argparse.Namespace) -> int:
    from harsanyi.sharing import sharing_problems

    problems = verify_store(args.root)
    if args.shared and args.root.is_dir():
        problems += sharing_problems(args.root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) under {args.root}", file=sys.stderr)
        return 1
    print(f"no problems found under {args.root}")
    return 0


def cmd_store_share(args: argparse.Namespace) -> int:
    from harsanyi.sharing import share_store

    report = share_store(args.root, args.group)
    print(
        f"{args.root}: {report.directories} directories and {report.files} files shared with "
        f"the group ({report.changed} changes; {report.links_skipped} links left alone)"
    )
    return 0


def _size_text(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _print_rows(rows: list[dict], columns: list[str], fmt: str) -> bool:
    """Print `rows` as json or tsv; False for the text format (the caller prints)."""
    if fmt == "json":
        print(json.dumps(rows, indent=1, default=str))
        return True
    if fmt == "tsv":
        print(pd.DataFrame(rows, columns=columns).to_csv(sep="\t", index=False), end="")
        return True
    return False


def cmd_store_du(args: argparse.Namespace) -> int:
    from harsanyi.maintenance import DU_COLUMNS, disk_usage

    if not args.root.is_dir():
        raise CliError(f"results root {args.root} is not a directory")
    rows = disk_usage(args.root)
    if _print_rows(rows, DU_COLUMNS, args.format):
        return 0
    by_kind: dict[str, list[int]] = {}
    for row in rows:
        total = by_kind.setdefault(row["kind"], [0, 0])
        total[0] += row["bytes"]
        total[1] += row["files"]
    print(f"{'kind':<20}  {'size':>10}  {'files':>8}")
    for kind, (size, files) in sorted(by_kind.items(), key=lambda item: -item[1][0]):
        print(f"{kind:<20}  {_size_text(size):>10}  {files:>8}")
    print(f"{'total':<20}  {_size_text(sum(r['bytes'] for r in rows)):>10}")
    runs: dict[str, int] = {}
    for row in rows:
        if row["kind"] in ("checkpoints", "interactions", "analysis", "run files"):
            run = row["path"] if row["kind"] == "run files" else str(Path(row["path"]).parent)
            runs[run] = runs.get(run, 0) + row["bytes"]
    if runs:
        print(f"largest runs (of {len(runs)}):")
        for run, size in sorted(runs.items(), key=lambda item: -item[1])[: args.top]:
            print(f"  {_size_text(size):>10}  {_cut(Path(run).name, WIDTH - 14)}")
    return 0


def study_verdicts(record: dict) -> dict[str, int] | None:
    """{verdict: count} of a study's scorecard.tsv (beside its study.json), None before the
    study has one."""
    from harsanyi.analyses.scorecard import verdict_counts

    path = Path(record["path"]).parent / "scorecard.tsv"
    return verdict_counts(path) if path.is_file() else None


def cmd_store_studies(args: argparse.Namespace) -> int:
    from harsanyi.analyses.scorecard import VERDICTS, verdict_text
    from harsanyi.maintenance import read_study_records

    records = [
        {**record, "verdicts": study_verdicts(record)} for record in read_study_records(args.root)
    ]
    rows = [
        {
            "study_id": record.get("study_id"),
            "analysis_id": record.get("analysis_id"),
            "study": record.get("study"),
            "runs": len(record["runs"]),
            "user": (record.get("provenance") or {}).get("user"),
            "started": (record.get("provenance") or {}).get("start"),
            # empty before the study has a scorecard
            **{verdict: (record["verdicts"] or {}).get(verdict, "") for verdict in VERDICTS},
            "record": record["path"],
        }
        for record in records
    ]
    if args.format == "json":
        print(json.dumps(records, indent=1, default=str))
        return 0
    if args.runs:
        rows = [
            {**row, "run": run["run"], "extraction": run["extraction"]}
            for row, record in zip(rows, records, strict=True)
            for run in record["runs"]
        ]
    columns = ["study_id", "analysis_id", "study", "runs", "user", "started", *VERDICTS]
    columns += ["record"]
    if args.runs:
        columns += ["run", "extraction"]
    if _print_rows(rows, columns, args.format):
        return 0
    if not records:
        print(f"no study records under {args.root}/studies")
        return 0
    for record in records:
        who = (record.get("provenance") or {}).get("user")
        print(
            f"{record.get('study_id')}/{record.get('analysis_id')}  "
            f"{len(record['runs'])} runs  (started by {who})"
        )
        counts = record["verdicts"]
        scorecard = Path(record["path"]).parent / "scorecard.tsv"
        if counts is None:
            print("    no scorecard yet (the study has not finished)")
        else:
            print(f"    verdicts: {verdict_text(counts)}")
            print(f"    {scorecard}")  # whole: a path to copy
        if args.runs:
            for run in record["runs"]:
                print(f"    {_cut(run['run'], WIDTH - 22)}  {run['extraction']}")
    print(f"{len(records)} study record(s) under {args.root}")
    return 0


def cmd_store_gc(args: argparse.Namespace) -> int:
    from harsanyi.maintenance import find_garbage, remove

    if not args.root.is_dir():
        raise CliError(f"results root {args.root} is not a directory")
    garbage = find_garbage(
        args.root, grace_hours=args.grace_hours, abandoned_days=args.abandoned_days
    )
    for item in garbage:
        print(f"{_size_text(item.bytes):>10}  {item.path}  ({item.reason})")
    total = _size_text(sum(item.bytes for item in garbage))
    if not garbage:
        print(f"nothing to collect under {args.root}")
    elif args.apply:
        remove(garbage)
        print(f"removed {len(garbage)} path(s), {total}")
    else:
        print(f"{len(garbage)} path(s), {total}: dry run, nothing removed (--apply removes)")
    return 0


def add_store(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store",
        help="list, show, verify, measure and clean the runs in a results root",
        description="Work with a results root: one directory per training run, named "
        "<label>-<settings hash>, holding run.json, checkpoints/ and interactions/.",
        epilog="examples:\n"
        "  harsanyi store ls /shared/harsanyi-results\n"
        "  harsanyi store show /shared/harsanyi-results digits-lenet-s0\n"
        "  harsanyi store verify /shared/harsanyi-results || echo 'store has problems'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="store_command", required=True, metavar="ACTION")

    ls = actions.add_parser("ls", help="table of the runs (one row per run)")
    ls.add_argument("root", type=Path, help="results root directory")
    ls.add_argument("--settings", action="store_true", help="also print each run's settings")
    _add_format(ls)
    ls.set_defaults(func=cmd_store_ls)

    show = actions.add_parser("show", help="run.json and the files of one run")
    show.add_argument("root", type=Path, help="results root directory")
    show.add_argument("run", help="run directory name, or a unique part of it (label or hash)")
    show.set_defaults(func=cmd_store_show)

    verify = actions.add_parser(
        "verify",
        help="check every run.json, results file and checkpoint; exit 1 on problems",
        description="Check run manifests, read every .h5 results file fully and load every "
        ".pt checkpoint; report leftover temporary files.  Prints one line per problem "
        "and exits with status 1 if there is any.",
    )
    verify.add_argument("root", type=Path, help="results root directory")
    verify.add_argument(
        "--shared",
        action="store_true",
        help="also report what another member of the store's group could not read or extend",
    )
    verify.set_defaults(func=cmd_store_verify)

    share = actions.add_parser(
        "share",
        help="make the store readable and extendable by every member of a Unix group",
        description="Give the group (default: the root directory's) every directory "
        "(group-owned, setgid, g+rwx) and file (group-owned, g+rw) of the store; links are "
        "not followed. Set `group_writable: true` in the study config to keep new files so.",
    )
    share.add_argument("root", type=Path, help="results root directory")
    share.add_argument("--group", help="Unix group of the lab (default: the root's group)")
    share.set_defaults(func=cmd_store_share)

    du = actions.add_parser(
        "du", help="disk usage by kind (checkpoints, interactions, studies, ...) and by run"
    )
    du.add_argument("root", type=Path, help="results root directory")
    du.add_argument("--top", type=int, default=10, help="largest runs shown (text format)")
    _add_format(du)
    du.set_defaults(func=cmd_store_du)

    studies = actions.add_parser(
        "studies",
        help="the studies recorded in the store, their verdict counts and the runs each uses",
        description="One line per study record (studies/<study>/<a-id>/study.json, written "
        "when a study's workflow starts): its runs, who started it and when, and the "
        "verdicts of its scorecard (scorecard.tsv beside the record) counted: yes, no, "
        "depends on the decomposition, inconclusive, n/a.",
    )
    studies.add_argument("root", type=Path, help="results root directory")
    studies.add_argument("--runs", action="store_true", help="list the runs of every study")
    _add_format(studies)
    studies.set_defaults(func=cmd_store_studies)

    gc = actions.add_parser(
        "gc",
        help="list (or --apply: remove) what no recorded study uses",
        description="Stale parts of the store: run directories no recorded study uses, "
        "x-/a- directories of other extraction or analysis settings, unused sample "
        "manifests, resume states of finished or unused runs. A study is recorded when it "
        "starts: its runs are kept while it runs and after it finished; a study that never "
        "finished and of which nothing changed in --abandoned-days releases them. A dry run "
        "unless --apply. To release a finished study's runs, remove its directory under "
        "studies/ first.",
    )
    gc.add_argument("root", type=Path, help="results root directory")
    gc.add_argument("--apply", action="store_true", help="remove what is listed")
    gc.add_argument(
        "--grace-hours",
        type=float,
        default=DEFAULT_GRACE_HOURS,
        help="never collect what changed in the last this many hours (default "
        f"{DEFAULT_GRACE_HOURS:g}: a study running now is safe)",
    )
    gc.add_argument(
        "--abandoned-days",
        type=float,
        default=DEFAULT_ABANDONED_DAYS,
        help="a study that never finished and of which nothing changed in this many days "
        f"releases its runs (default {DEFAULT_ABANDONED_DAYS:g})",
    )
    gc.set_defaults(func=cmd_store_gc)


# --------------------------------------------------------------------------- failed


def cmd_failed(args: argparse.Namespace) -> int:
    from harsanyi.jobs import failed_jobs

    since = None if args.hours is None else time.time() - 3600 * args.hours
    jobs = failed_jobs(args.results, since=since, lines=args.lines)
    for job in jobs:
        print(job.one_line())
        for line in job.tail:
            print(f"    {line}")
    if not jobs:
        print(f"no failed job recorded in the rule logs under {args.results / 'logs'}")
    return 1 if jobs else 0


def add_failed(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "failed",
        help="the jobs whose rule log records a failure, with the last lines of their logs",
        description="Every job of a study writes its rule's log under <results>/logs/ "
        "(local or SLURM, single, array task or group member); a job that died writes its "
        "reason there. Lists those jobs newest first: rule, run, reason, log file and its "
        "last lines. Exit status 1 when there is any.",
    )
    parser.add_argument("results", type=Path, help="results root (the config's `results`)")
    parser.add_argument("--lines", type=int, default=5, help="last lines of each log shown")
    parser.add_argument("--hours", type=float, help="only logs written in the last HOURS")
    parser.set_defaults(func=cmd_failed)


# --------------------------------------------------------------------------- check-config


def cmd_check_config(args: argparse.Namespace) -> int:
    from harsanyi.config import check_extraction_memory, load_study

    study = load_study(args.config)
    estimates = check_extraction_memory(study, args.mem_mb)
    if args.data:
        from harsanyi.extraction import check_before_training

        try:
            notes = check_before_training(study)
        except ValueError as error:
            raise CliError(f"{args.config}: {error}") from None
        for note in notes:
            print(f"harsanyi: note: {note}", file=sys.stderr)
    print(f"{args.config}: study {study.name!r}, {len(study.runs)} runs")
    for run in study.runs:
        print(f"  {run.name}  ({len(run.epochs)} checkpoints)")
    for estimate in estimates:
        print(f"extraction estimate: {estimate.describe()}")
    return 0


def add_check_config(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a study config and estimate its extraction before any work",
        description="Read a study config as the workflow does (YAML, schema, settings), "
        "naming the file, line or key of the first problem; list its runs and what "
        "extracting one checkpoint costs. Snakemake reports malformed YAML without a line: "
        "this command gives it.",
    )
    parser.add_argument("config", type=Path, help="study config (YAML)")
    parser.add_argument(
        "--mem-mb", type=float, help="memory of an extract job: fail if an estimate exceeds it"
    )
    parser.add_argument(
        "--no-data",
        dest="data",
        action="store_false",
        help="skip what needs the data (the sample selections), as the workflow does for a "
        "dataset whose sample manifest exists",
    )
    parser.set_defaults(func=cmd_check_config)


# --------------------------------------------------------------------------- draw


def cmd_draw(args: argparse.Namespace) -> int:
    from harsanyi.pictures import checkpoint_series, sample_input
    from harsanyi.plots import interaction_picture

    if args.top < 1:
        raise CliError(f"--top must be at least 1, got {args.top}")
    by_epoch, paths = checkpoint_series(args.files, args.sample)
    first = by_epoch[min(by_epoch)]
    data = sample_input(first, args.sample, path=paths[0], data_root=args.data_root)
    if data.note:
        print(f"harsanyi: note: {data.note}; drawing the players only", file=sys.stderr)
    drawn = interaction_picture(by_epoch, args.sample, args.out, top=args.top, data=data)
    print(args.out)
    for item in drawn:
        players = ",".join(str(j) for j in item.coalition)
        print(f"epoch {item.epoch}\t{item.op}\t{{{players}}}\t{item.value:+.6g}")
    return 0


def add_draw(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "draw",
        help="one sample's salient AND/OR interactions drawn on its input, per checkpoint",
        description="Draw row K of results files of one run at different checkpoints (one "
        "column each, by the epoch the files record): the strongest salient interactions "
        "(|I| >= 0.05 max|I|, empty set excluded) on the input: image patches outlined "
        "red (positive) or blue (negative), solid AND, dashed OR; features or tokens named "
        "for tables and text. Writes a PNG and its PDF twin, and prints what was drawn "
        "(epoch, op, players, value). Without the data (a dataset that needs --data-root) "
        "the players alone are drawn, and the figure says so.",
    )
    parser.add_argument("files", type=Path, nargs="+", metavar="FILE", help="results files")
    parser.add_argument(
        "--sample", type=int, required=True, metavar="K", help="row of the files (0-based)"
    )
    parser.add_argument(
        "--top", type=int, default=6, metavar="N", help="interactions per checkpoint (default 6)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("picture.png"), help="PNG to write (and its .pdf)"
    )
    parser.add_argument(
        "--data-root", metavar="DIR", help="root of the dataset's files, where it needs one"
    )
    parser.set_defaults(func=cmd_draw)


# --------------------------------------------------------------------------- deploy


def cmd_deploy(args: argparse.Namespace) -> int:
    from harsanyi.deploy import deploy

    dest = deploy(args.dest, results=args.results, config=args.config, workflow=args.workflow)
    print(
        f"{dest}: a working directory of the workflow, results in {Path(args.results).absolute()}"
    )
    print(f"  cd {dest} && python3 -m snakemake --cores 2          # here")
    print(f"  cd {dest} && python3 -m snakemake --profile profiles/slurm   # on the cluster")
    return 0


def add_deploy(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="a working directory of your own, using the shared results store",
        description="Write a working directory for the workflow, as snakedeploy does for the "
        "Snakemake catalog's workflows: a Snakefile using this workflow as a module, the "
        "study config in config/config.yaml with `results` set to the store, and the "
        "profiles. Each lab member deploys one; only the results store is shared.",
    )
    parser.add_argument("dest", type=Path, help="new (or empty) directory")
    parser.add_argument("--results", type=Path, required=True, help="the results store")
    parser.add_argument(
        "--config", type=Path, help="study config to start from (default: the embedded study)"
    )
    parser.add_argument(
        "--workflow",
        type=Path,
        help="the workflow's clone (default: the one harsanyi is installed from)",
    )
    parser.set_defaults(func=cmd_deploy)


# --------------------------------------------------------------------------- compare


def cmd_compare(args: argparse.Namespace) -> int:
    from harsanyi.analyses.scorecard import compare_scorecards

    difference = compare_scorecards(args.first, args.second, rtol=args.rtol, common=args.common)
    print(difference.summary())
    if not difference.same and (args.all or args.show > 0):
        cells = difference.cells if args.all else difference.cells.head(args.show)
        print(cells.to_string(index=False, max_colwidth=40))
        if len(cells) < len(difference.cells):
            print(f"... {len(difference.cells) - len(cells)} more cells (--all shows them)")
    return 0 if difference.same else 1


def add_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="two scorecards of one study, cell by cell: did a rerun reproduce it?",
        description="Match two scorecard.tsv files of one study by run and claim and print "
        "the verdicts and cells that differ (texts exactly, numbers to --rtol), with the "
        "largest change of an effect. Exit status 0 when they are the same, 1 when not, as "
        "diff does: e.g. a fresh install's default study against the committed "
        "docs/default_scorecard.tsv, or a run under other package versions.",
    )
    parser.add_argument("first", type=Path, help="scorecard.tsv (e.g. the committed one)")
    parser.add_argument("second", type=Path, help="scorecard.tsv of the same study")
    parser.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (1e-6)")
    parser.add_argument("--show", type=int, default=20, help="differing cells shown (20)")
    parser.add_argument("--all", action="store_true", help="show every differing cell")
    parser.add_argument(
        "--common",
        action="store_true",
        help="compare only the runs and claims both score (e.g. one seed against three)",
    )
    parser.set_defaults(func=cmd_compare)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harsanyi",
        description="Exact AND-OR (Harsanyi) interactions of neural networks: inspect "
        "results files and the store of training runs, extract checkpoints.",
        epilog="examples:\n"
        "  harsanyi show results/digits/runs/RUN/interactions/x-HASH/epoch_0008.h5\n"
        "  harsanyi store ls results/\n"
        "  harsanyi store verify results/\n"
        "  harsanyi check-config config/fashion_mnist.yaml\n"
        "  harsanyi failed results/            # jobs that failed, with their logs' last lines\n"
        "  harsanyi draw x-HASH/epoch_0000.h5 x-HASH/epoch_0040.h5 --sample 0 --out picture.png\n"
        "  harsanyi deploy ~/my-study --results /shared/harsanyi/results\n"
        "  harsanyi compare docs/default_scorecard.tsv results/studies/S/a-HASH/scorecard.tsv\n"
        "Run 'harsanyi COMMAND --help' for the options of a command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_show(subparsers)
    add_store(subparsers)
    add_extract(subparsers)
    add_check_config(subparsers)
    add_draw(subparsers)
    add_failed(subparsers)
    add_deploy(subparsers)
    add_compare(subparsers)
    return parser


SIGPIPE_STATUS = 128 + 13  # the status of a Unix tool that SIGPIPE ended


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit, where it cannot be caught
        return status
    except BrokenPipeError:
        # The reader went away (`harsanyi store ls ROOT | head`): stop quietly as Unix tools
        # do, and point stdout at /dev/null so that the flush at exit raises nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return SIGPIPE_STATUS
    except (CliError, ResultsFileError, FileNotFoundError, ValueError) as exc:
        print(f"harsanyi: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a quota, a permission: one line, no traceback
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise
        print(f"harsanyi: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
