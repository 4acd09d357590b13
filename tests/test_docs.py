"""The documentation site builds in strict mode: a broken link, a page missing from the
navigation or an API entry that does not resolve fails the build (mkdocs.yml)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_site_builds_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "api" / "index.html").read_text().count("harsanyi.sparsifier.sparsify") > 0
    assert (tmp_path / "config" / "index.html").read_text().count("qthres") > 0  # the snippet


def test_the_readme_links_resolve():
    """The front door's relative links (GitHub renders them; the site does not build it)."""
    text = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)\)", text)
    assert targets
    missing = [t for t in targets if not t.startswith("http") and not (REPO / t).exists()]
    assert not missing, missing


sys.path.insert(0, str(REPO / "scripts"))
import docs_numbers  # noqa: E402

NUMBERS = REPO / "docs" / "numbers"


def test_every_quoted_number_file_is_what_its_measurement_renders():
    measured = sorted(NUMBERS.glob("*.json"))
    assert {p.stem for p in measured} >= {"tests", "install"}
    pages = "\n".join(p.read_text() for p in (REPO / "docs").rglob("*.md"))
    # Includes that snippets expands: at the start of a line (not quoted, not commented out).
    included = set(re.findall(r'^[ \t]*--8<-- "docs/numbers/([^"]+)"', pages, re.MULTILINE))
    for path in measured:
        shown = path.with_suffix(".md")
        assert shown.read_text() == docs_numbers.render(path), (
            f"{shown} differs from what {path.name} renders: python3 scripts/docs_numbers.py"
        )
        if path.stem != "install":  # the README quotes that one (below)
            assert shown.name in included, f"no page includes {shown}"


def test_the_test_counts_the_docs_quote_are_current():
    recorded = json.loads((NUMBERS / "tests.json").read_text())
    assert docs_numbers.test_counts() == recorded, (
        "the tests changed: python3 scripts/docs_numbers.py --count-tests"
    )


def test_the_readme_quotes_the_measured_install_size():
    line = docs_numbers.render(NUMBERS / "install.json").strip()
    assert line in " ".join((REPO / "README.md").read_text().split())


def test_the_readme_quotes_the_measured_default_study():
    record = json.loads((NUMBERS / "default_study.json").read_text())
    line = docs_numbers.readme_default_study(record)
    assert line in " ".join((REPO / "README.md").read_text().split())


def test_every_study_page_has_its_verdicts_rendered_and_included():
    """docs/studies.md quotes each study page's verdicts through verdicts_<name>.md, which
    is what that page's copied scorecard tables render."""
    pages = docs_numbers.study_pages()
    assert {page.name for page in pages} >= {"cross_arch", "fashion_mnist_cpu"}
    studies = (REPO / "docs" / "studies.md").read_text()
    for page in pages:
        shown = NUMBERS / f"verdicts_{page.name}.md"
        assert shown.read_text() == docs_numbers.render_study_verdicts(page), (
            f"{shown} differs from what {page}'s tables render: python3 scripts/docs_numbers.py"
        )
        assert f'\n--8<-- "docs/numbers/{shown.name}"\n' in studies


def test_the_study_verdicts_count_every_row():
    """The rendered counts add up to the runs × claims of each table."""
    from harsanyi.analyses.common import read_tsv

    for page in docs_numbers.study_pages():
        text = docs_numbers.render_study_verdicts(page)
        for name, label in (("scorecard.tsv", "Per run, "), ("scorecard_seeds.tsv", "Pooled")):
            table = read_tsv(page / name)
            counted = text.split(label, 1)[1].split(": ", 1)[1].split(" (")[0].split(".")[0]
            total = sum(int(part.split(" ", 1)[0]) for part in counted.split(", "))
            assert total == len(table), (page, name, counted)


def test_the_job_model_matches_what_slurm_saw():
    """bench_dryrun's model of jobs and sbatch calls holds for every study observed on the test
    cluster (docs/numbers/slurm_<study>.json, written by bench_slurm_calls.py)."""
    observed = sorted(NUMBERS.glob("slurm_*.json"))
    assert observed
    for path in observed:
        done = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / "bench_dryrun.py"), "--observed", str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_default_study_page_quotes_its_committed_scorecards():
    """docs/default-study.md's verdict counts are those of the scorecards readme_results.py
    copied beside it (docs/default_scorecard*.tsv, what `harsanyi compare` checks a fresh run
    against): the page and the tables come from one study."""
    from harsanyi.analyses.scorecard import verdict_counts

    page = (REPO / "docs" / "default-study.md").read_text()
    for name, prefix in (
        ("default_scorecard.tsv", "Scorecard, "),
        ("default_scorecard_seeds.tsv", "Pooled over seeds, "),
    ):
        counts = verdict_counts(REPO / "docs" / name)
        (line,) = [line for line in page.splitlines() if line.startswith(prefix)]
        quoted = line.split(" claims: ")[1]
        expected = ", ".join(f"{count} {verdict}" for verdict, count in counts.items())
        assert quoted.startswith(expected), (name, line)


def test_the_default_study_page_quotes_what_compare_prints(capsys):
    """The reproduction across sessions quoted on docs/default-study.md is what `harsanyi
    compare` prints for the committed scorecards, and every differing cell is a claim that
    compares a run with the study's other runs."""
    from harsanyi.cli import main

    files = ["docs/default_scorecard_one_seed.tsv", "docs/default_scorecard.tsv"]
    page = (REPO / "docs" / "default-study.md").read_text()
    main(["compare", "--common", *(str(REPO / f) for f in files), "--show", "0"])
    (printed,) = capsys.readouterr().out.splitlines()
    assert f"$ harsanyi compare --common {' '.join(files)} --show 0\n{printed}\n" in page
    main(["compare", "--common", *(str(REPO / f) for f in files), "--all"])
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows and all("shared_interactions" in row for row in rows)


def test_the_sgd_table_marks_and_counts_the_defaults():
    """The SGD sweep's rendering puts the current defaults in bold and counts, over their
    rows only, the games that end at or above their start."""

    def row(n, lr, iters, above):
        kind = {"games": 4, "above_start": above, "final_over_start_max": 1.0}
        kind |= {"final_over_opt_median": 1.1, "final_over_opt_max": 1.2}
        return {"n": n, "lr_times_4n": lr, "iters": iters, "seconds_per_sample": 0.5,
                "kinds": {"planted": dict(kind), "trained net": dict(kind)}}  # fmt: skip

    record = {
        "command": "python3 benchmarks/bench_sgd.py",
        "finished": "2026-12-05T00:00:00Z",
        "threads": 1,
        "default_lr_times_4n": 0.5,
        "default_iters": 20000,
        "rows": [row(8, 0.5, 20000, 1), row(8, 2.0, 20000, 3), row(10, 0.5, 20000, 0)],
        "packages": {"torch": "2.14.1", "numpy": "2.4.6"},
    }
    text = docs_numbers.render_sgd(record)
    assert text.rstrip().endswith("With numpy 2.4.6, torch 2.14.1.")
    assert docs_numbers.versions({}) == ""
    bold = [line for line in text.splitlines() if line.startswith("| **")]
    assert len(bold) == 2 and all("**0.5**" in line for line in bold)
    assert "2 of the 16 games end at or above their start" in text
    assert "24 games × settings in all" in text


def test_the_default_study_benchmark_reads_snakemakes_job_stats():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_default_study import job_counts

    log = "Building DAG of jobs...\nJob stats:\njob      count\n-----  -------\n"
    log += "train         12\nextract      252\ntotal        264\n\nSelect jobs\n"
    log += "Job stats:\njob  count\ntotal  3\n"
    assert job_counts(log) == {"train": 12, "extract": 252, "total": 264}
