"""Rough edges a newcomer meets: a closed pipe, report captions, a misspelt architecture,
`show --format json` for programs, and where a finished study's results are."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import docutils.core
import docutils.utils
import pandas as pd
import pytest
from test_cli import planted_results
from test_config import base, write

from harsanyi.analyses.scorecard import VERDICTS, verdict_counts, where_to_look
from harsanyi.cli import SIGPIPE_STATUS, main
from harsanyi.config import ConfigError, load_study
from harsanyi.store import write_results

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- closed pipe

FLOOD = textwrap.dedent(
    """
    import sys
    from harsanyi import cli

    def flood(args):
        for i in range(200_000):
            print(f"run {i} " + "x" * 70)
        return 0

    cli.cmd_store_ls = flood  # what `harsanyi store ls BIG_ROOT` prints, only more
    sys.exit(cli.main(["store", "ls", "."]))
    """
)


def test_a_closed_pipe_ends_the_command_quietly():
    """`harsanyi store ls ROOT | head -1`: no BrokenPipeError traceback, SIGPIPE's status."""
    process = subprocess.Popen(
        [sys.executable, "-c", FLOOD], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    first = process.stdout.readline()  # the reader takes one line and goes away, as head does
    process.stdout.close()
    status = process.wait(timeout=300)
    error = process.stderr.read().decode()
    process.stderr.close()
    assert first.startswith(b"run 0 ")
    assert error == "", error
    assert status == SIGPIPE_STATUS == 141


# --------------------------------------------------------------------------- report captions


@pytest.mark.parametrize(
    "caption", sorted((REPO / "workflow/report").glob("*.rst")), ids=lambda p: p.name
)
def test_report_caption_is_clean_restructuredtext(caption):
    """Snakemake renders each caption with docutils: no message, such as the `Undefined
    substitution referenced: "I"` that an unescaped |I| makes."""
    stream = []

    class Collect:
        def write(self, text):
            stream.append(text)

    docutils.core.publish_doctree(
        caption.read_text(),
        settings_overrides={"warning_stream": Collect(), "report_level": 1, "halt_level": 5},
    )
    assert not "".join(stream).strip(), "".join(stream)


def test_the_caption_check_sees_an_undefined_substitution():
    stream = []

    class Collect:
        def write(self, text):
            stream.append(text)

    docutils.core.publish_doctree(
        "A salient coalition (|I| ≥ τ·max|I|, τ = analysis.salient_ratio) is shared",
        settings_overrides={"warning_stream": Collect(), "report_level": 1, "halt_level": 5},
    )
    assert "Undefined substitution" in "".join(stream)


# --------------------------------------------------------------------------- config


def test_a_misspelt_architecture_is_unknown_with_the_known_names(tmp_path):
    config = base()
    config["datasets"]["digits"]["architectures"] = ["mlpp"]
    with pytest.raises(ConfigError) as error:
        load_study(write(tmp_path, config))
    message = str(error.value)
    assert "'mlpp' is an unknown architecture" in message
    assert "'mlp'" in message and "'lenet'" in message
    assert "does not take" not in message


def test_a_known_architecture_for_other_inputs_still_says_so(tmp_path):
    config = base()
    config["datasets"]["digits"]["architectures"] = ["bert_small"]
    with pytest.raises(ConfigError, match="'bert_small' does not take image inputs"):
        load_study(write(tmp_path, config))


# --------------------------------------------------------------------------- show


def test_show_json_gives_the_certificate_as_numbers(tmp_path, capsys):
    results = planted_results()
    samples = results.n_samples
    results = dataclasses.replace(
        results,
        l1=[3.0] * samples,
        lower_bound=[2.9999] * samples,
        gap=[1e-5, 2e-5, 0.5],
        certified=[True, True, False],
    )
    path = write_results(tmp_path / "epoch_0007.h5", results)
    assert main(["show", str(path), "--format", "json"]) == 0
    certificate = json.loads(capsys.readouterr().out)["certificate"]
    assert certificate["certified"] == 2 and certificate["samples"] == 3
    assert main(["show", str(path)]) == 0
    assert '"certified": "2 of 3 samples"' in capsys.readouterr().out


# --------------------------------------------------------------------------- finished studies


def _study(root: Path, verdicts: list[str] | None, name: str = "tiny-0123456789ab") -> Path:
    directory = root / "studies" / name / "a-abcdef012345"
    directory.mkdir(parents=True)
    record = {
        "study_id": name,
        "analysis_id": "a-abcdef012345",
        "study": "tiny",
        "runs": [{"run": "digits-lenet-s0-aaaaaaaaaaaa", "dataset": "digits", "extraction": "x"}],
        "provenance": {"user": "someone", "start": "2026-01-01T00:00:00"},
    }
    (directory / "study.json").write_text(json.dumps(record))
    if verdicts is not None:
        table = pd.DataFrame(
            {"run": "r", "claim": "c", "key": "k", "verdict": verdicts, "effect": 0.0}
        )
        table.to_csv(directory / "scorecard.tsv", sep="\t", index=False)
    return directory


VERDICT_LIST = ["yes", "no", "no", "n/a", "n/a", "n/a", "depends on the decomposition"]


def test_verdict_counts_keep_n_a_as_a_verdict(tmp_path):
    directory = _study(tmp_path, VERDICT_LIST)
    counts = verdict_counts(directory / "scorecard.tsv")
    assert list(counts) == list(VERDICTS)
    assert counts == {
        "yes": 1,
        "no": 2,
        "depends on the decomposition": 1,
        "inconclusive": 0,
        "n/a": 3,
    }


def test_store_studies_shows_each_studys_verdict_counts(tmp_path, capsys):
    done = _study(tmp_path, VERDICT_LIST)
    _study(tmp_path, None, name="tiny-ba9876543210")  # started, no scorecard yet
    assert main(["store", "studies", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "verdicts: 1 yes, 2 no, 1 depends on the decomposition, 0 inconclusive, 3 n/a" in out
    assert str(done / "scorecard.tsv") in out
    assert "no scorecard yet" in out
    assert main(["store", "studies", str(tmp_path), "--format", "json"]) == 0
    records = {r["study_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["tiny-0123456789ab"]["verdicts"]["n/a"] == 3
    assert records["tiny-ba9876543210"]["verdicts"] is None
    assert main(["store", "studies", str(tmp_path), "--format", "tsv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out), sep="\t", keep_default_na=False)
    row = table[table.study_id == "tiny-0123456789ab"].iloc[0]
    assert [str(row[v]) for v in ("yes", "no", "n/a", "inconclusive")] == ["1", "2", "3", "0"]
    waiting = table[table.study_id == "tiny-ba9876543210"].iloc[0]
    assert str(waiting["yes"]) == ""  # no scorecard yet: no count


def test_the_end_of_a_study_says_where_to_look(tmp_path):
    directory = _study(tmp_path, VERDICT_LIST)
    for name in ("scorecard", "two_phase", "ood"):
        (directory / f"{name}.png").write_bytes(b"")
    text = where_to_look(directory, [Path("/tmp/my study.yaml")])
    lines = text.splitlines()
    assert lines[0] == f"Study finished: {directory}"
    assert (
        f"scorecard  {directory / 'scorecard.png'} (table: {directory / 'scorecard.tsv'})" in text
    )
    assert "1 yes, 2 no, 1 depends on the decomposition, 0 inconclusive, 3 n/a" in text
    assert f"figures    {directory}/ (ood.png, scorecard.png, two_phase.png" in text
    assert lines[-1].endswith("--configfile '/tmp/my study.yaml' --report report.zip")


def test_the_snakefile_ends_a_successful_run_with_where_to_look(tmp_path):
    """The handler (shared with deployed working directories, whose module handlers do not
    run) looks in the study's own directory."""
    from harsanyi.config import resolve
    from harsanyi.deploy import study_dir

    snakefile = (REPO / "Snakefile").read_text()
    handler = snakefile.split("onsuccess:", 1)[1].split("onerror:", 1)[0]
    assert "study_finished(config, workflow.overwrite_configfiles)" in handler
    config = {
        "results": str(tmp_path),
        "datasets": {"digits": {"architectures": ["mlp"], "players": {"grid": [4, 4]}}},
    }
    study = resolve(config)
    expected = tmp_path / "studies" / study.study_id / study.analysis_id
    assert study_dir(config) == expected
