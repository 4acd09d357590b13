"""A finished study's scorecard, tables and figures as a page under docs/, never typed by hand.

    python3 scripts/study_docs.py <results>/studies/<study>-<hash>/a-<hash> docs/<name> \
        --command "<the command that ran the study>" --wall "<its wall time>"

Copies the scorecard tables and every figure (PNG) of the study directory into the output
directory and writes its README.md: the command, the wall time given, the devices and hosts
recorded in the runs' provenance (run.json of each run in the scorecard), the scorecard as
one row per run and one column per claim (`harsanyi.analyses.scorecard.readme_markdown`), and,
where the study has their tables, the Shapley/attribution and joint-extraction sentences that
rule readme writes for the default study.
"""

import argparse
import json
import shutil
from pathlib import Path

from harsanyi.analyses import attributions, joint
from harsanyi.analyses.common import read_tsv
from harsanyi.analyses.scorecard import readme_markdown
from harsanyi.io import write_text

TABLES = (
    "scorecard.tsv",
    "scorecard_seeds.tsv",
    "sensitivity_trend.tsv",
    "joint_shared.tsv",
    "joint_summary.tsv",
    "shapley.tsv",
    "attributions.tsv",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--command", required=True, help="the command that ran the study")
    parser.add_argument("--wall", required=True, help="its wall time, as measured")
    parser.add_argument("--note", default="", help="a paragraph on what the study is")
    args = parser.parse_args()

    study_dir = args.study_dir
    results = study_dir.parents[2]
    card = read_tsv(study_dir / "scorecard.tsv")
    pooled = read_tsv(study_dir / "scorecard_seeds.tsv")
    devices, hosts = set(), set()
    for run in card.run.unique():
        record = next(results.glob(f"*/runs/{run}/run.json"), None)
        if record is None:
            raise SystemExit(f"{results}: no run.json of run {run}")
        provenance = json.loads(record.read_text()).get("provenance") or {}
        devices.add(str(provenance.get("device")))
        hosts.add(str(provenance.get("host")))

    args.out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        if (study_dir / name).exists():
            shutil.copyfile(study_dir / name, args.out / name)
    figures = sorted(study_dir.glob("*.png"))
    for figure in figures:
        shutil.copyfile(figure, args.out / figure.name)
    section = readme_markdown(
        card, pooled, study=study_dir.parent.name, figure="two_phase.png", command=args.command
    )
    section = "\n".join(line for line in section.splitlines() if not line.startswith("<!--"))
    # the parts rule readme adds to the default study's page, where the study has their tables
    shapley, attributed = study_dir / "shapley.tsv", study_dir / "attributions.tsv"
    if shapley.exists() and attributed.exists():
        section += "\n\n" + attributions.readme_part(read_tsv(shapley), read_tsv(attributed))
    if (study_dir / "joint_summary.tsv").exists():
        section += "\n\n" + joint.readme_part(read_tsv(study_dir / "joint_summary.tsv"))
    lines = [
        f"# Study {study_dir.parent.name}",
        "",
        args.note,
        "",
        f"- Command: `{args.command}`",
        f"- Wall time: {args.wall}",
        f"- Devices (the runs' provenance): {', '.join(sorted(devices))}",
        f"- Hosts: {', '.join(sorted(hosts))}",
        f"- Tables: {', '.join(n for n in TABLES if (args.out / n).exists())}",
        f"- Figures: {', '.join(f'[{f.stem}]({f.name})' for f in figures)}",
        "",
        section,
    ]
    write_text("\n".join(lines), args.out / "README.md")
    print(f"{args.out}: {len(figures)} figures, scorecard of {card.run.nunique()} runs")


if __name__ == "__main__":
    main()
