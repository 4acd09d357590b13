"""The documentation site builds in strict mode: a broken link, a page missing from the
navigation or an API entry that does not resolve fails the build (mkdocs.yml)."""

from __future__ import annotations

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
