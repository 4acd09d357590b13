"""The default study's results in the documentation, never typed by hand.

As the script of rule `readme` (snakemake --cores 2 readme): the study's scorecard tables
→ a markdown section (readme_results.md) and a copy of its two-phase figure.
As a command: python3 scripts/readme_results.py <results>/studies/<study>-<hash>/a-<hash>/readme
[PAGE] splices that section into PAGE (default docs/default-study.md) between its
study-results markers and copies the figure beside it (docs/default_two_phase.png, which the
README shows too) and the study's scorecards (docs/default_scorecard.tsv and
docs/default_scorecard_seeds.tsv: what `harsanyi compare` checks a fresh run against).
"""

import shutil
import sys
from pathlib import Path

from harsanyi.analyses import attributions, joint, variants
from harsanyi.analyses.common import read_tsv
from harsanyi.analyses.scorecard import README_END, readme_markdown, splice_readme
from harsanyi.io import write_text

COMMAND = (
    "python3 -m snakemake --cores 2 readme{config} && "
    "python3 scripts/readme_results.py results/studies/<study>-<hash>/a-<hash>/readme"
)
README_FIGURE = "default_two_phase.png"  # beside the page
# the study's scorecards, copied beside the page under these names
SCORECARDS = {
    "scorecard.tsv": "default_scorecard.tsv",
    "scorecard_seeds.tsv": "default_scorecard_seeds.tsv",
}

if "snakemake" in globals():
    from harsanyi.jobs import setup_job

    setup_job(snakemake.log, snakemake.threads)  # noqa: F821
    files = snakemake.params.configfiles  # noqa: F821
    config = f" --configfile {' '.join(files)}" if files else ""
    section = readme_markdown(
        read_tsv(snakemake.input.scorecard),  # noqa: F821
        read_tsv(snakemake.input.pooled),  # noqa: F821
        study=snakemake.params.study,  # noqa: F821
        figure=README_FIGURE,
        command=COMMAND.format(config=config),
    )
    part = attributions.readme_part(
        read_tsv(snakemake.input.shapley),  # noqa: F821
        read_tsv(snakemake.input.attributions),  # noqa: F821
    )
    section = variants.with_readme_part(section, part, README_END)
    for table in snakemake.input.joint:  # noqa: F821 (the joint extraction, if any)
        section = variants.with_readme_part(section, joint.readme_part(read_tsv(table)), README_END)
    for table in snakemake.input.variants:  # noqa: F821 (the decomposition variants, if any)
        part = variants.readme_markdown(read_tsv(table), snakemake.params.variant_settings)  # noqa: F821
        section = variants.with_readme_part(section, part, README_END)
    write_text(section, snakemake.output.section)  # noqa: F821
    shutil.copyfile(snakemake.input.figure, snakemake.output.figure)  # noqa: F821
elif __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    section_path = Path(sys.argv[1]) / "readme_results.md"
    figure = Path(sys.argv[1]) / "two_phase.png"
    readme = Path(sys.argv[2] if len(sys.argv) == 3 else "docs/default-study.md")
    write_text(splice_readme(readme.read_text(), section_path.read_text()), readme)
    shutil.copyfile(figure, readme.parent / README_FIGURE)
    print(f"{readme}: study results from {section_path}; {README_FIGURE} from {figure}")
    for name, copy in SCORECARDS.items():
        shutil.copyfile(Path(sys.argv[1]).parent / name, readme.parent / copy)
        print(f"{readme.parent / copy} from {Path(sys.argv[1]).parent / name}")
