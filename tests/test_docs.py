"""What the docs claim, where a claim can be checked: every Compose command written for both
Compose versions, every file and `make` command they name there, each default of the
settings page the code's own, the Python versions the tests need, make's exit codes."""

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT
from tests.test_env_file import code_defaults

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])


def lines_of(page):
    return page.read_text().splitlines()


def test_every_compose_command_is_written_for_both_versions():
    for page in PAGES:
        lines = lines_of(page)
        for number, line in enumerate(lines):
            if "docker compose " in line:
                near = " ".join(lines[number : number + 6])
                assert "docker-compose" in near, f"{page.name}:{number + 1}: only Compose v2's: {line}"


def test_every_file_the_docs_name_exists():
    named = set()
    for page in PAGES:
        named.update(
            re.findall(
                r"`((?:agent|stack|flows|scripts|tests|docs|proxy|demo)/[\w./-]+\.\w+)", page.read_text()
            )
        )
    assert {"agent/admission.py", "scripts/stack.py"} <= named
    missing = sorted(name for name in named if "<" not in name and not (ROOT / name).exists())
    assert missing == []


def test_every_make_command_the_docs_name_exists():
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = {target for page in PAGES for target in re.findall(r"`make ([a-z][a-z0-9-]*)", page.read_text())}
    assert {"up", "check", "run"} <= named and named - targets == set()


def test_each_default_on_the_settings_page_is_the_codes():
    table = dict(
        re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", (ROOT / "docs" / "settings.md").read_text(), re.M)
    )
    checked = 0
    for name, default in code_defaults().items():
        shown = table[name].strip().split(" ")[0].strip("`")
        if re.fullmatch(r"[0-9.]+", shown) and isinstance(default, (int, float)):
            assert float(shown) == default, f"{name}: docs/settings.md says {shown}, the code {default}"
            checked += 1
        elif isinstance(default, str) and default and not shown.startswith(("(", "<", "generated")):
            assert shown == default.split(" ")[0], (
                f"{name}: docs/settings.md says {shown}, the code {default!r}"
            )
            checked += 1
    assert checked >= 20


def test_the_python_versions_the_docs_give_are_the_ones_make_test_takes(tmp_path):
    versions = re.search(r"^PYTHON_VERSIONS := (.+)$", (ROOT / "Makefile").read_text(), re.M)[1]
    assert versions == "3.9 to 3.11"
    for page in ("README.md", "docs/development.md"):
        assert f"Python {versions}" in (ROOT / page).read_text(), page
    newer = tmp_path / "python3.12"  # answers as a Python 3.12 would to make's two questions
    newer.write_text('#!/bin/sh\n[ "$1" = -V ] && echo "Python 3.12.1"; exit 1\n')
    newer.chmod(0o755)
    venv = tmp_path / "venv"
    refused = subprocess.run(
        ["make", "--no-print-directory", f"{venv}/.installed", f"VENV={venv}", f"PYTHON={newer}"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and not venv.exists()
    assert refused.stderr.startswith(
        "error: the tests need Python 3.9 to 3.11 (numpy 1.24, pinned for prefect 0.15.9, has no "
        "wheel for Python 3.12.1): make test PYTHON=python3.11"
    )


def test_make_run_exits_as_the_pipeline_page_says(tmp_path):
    """docs/pipeline.md: `make run` fails with the reason, exiting 2 (make's own status)."""
    assert "exits 2 (make's own status) with the reason" in (ROOT / "docs" / "pipeline.md").read_text()
    venv = Path(sys.executable).parent.parent
    failed = subprocess.run(
        ["make", "--no-print-directory", "-o", f"{venv}/.installed", "run", "N_USERS=0", f"VENV={venv}"],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "REPORTS_DIR": str(tmp_path)},
    )  # fmt: skip
    assert failed.returncode == 2
    assert "error: n_users must be a whole number from 1 to 1,000,000" in failed.stderr
    assert list(tmp_path.iterdir()) == []
