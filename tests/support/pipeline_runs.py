"""Runs of the real `make run` entry (`python -m flows.users_report`) against a users API,
and what the tests read of their reports."""

import csv
import os
import subprocess
import sys
from pathlib import Path

from demo.users_api import users_csv
from flows.users_report.pacing import LEDGER_NAME
from tests.support import ROOT, free_port


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/api/"


def report_names(reports_dir: Path) -> list:
    """What a folder of reports holds, but the users API's budget ledger (kept on purpose)."""
    return sorted(path.name for path in reports_dir.iterdir() if path.name != LEDGER_NAME)


def pipeline_env(url: str, reports_dir: Path, **settings) -> dict:
    env = {
        **os.environ,
        "RANDOMUSER_URL": url,
        "REPORTS_DIR": str(reports_dir),
        "HTTP_RETRY_DELAY": "0.01",
        "HTTP_TIMEOUT": "5",
        "PYTHONPATH": str(ROOT),
    }
    env.update({key: str(value) for key, value in settings.items()})
    return env


def start_run(url: str, reports_dir: Path, n_users=None, extra_args=(), **settings) -> subprocess.Popen:
    """Starts `python -m flows.users_report`, the command behind `make run`."""
    args = [sys.executable, "-m", "flows.users_report", *extra_args]
    if n_users is not None:
        args += ["--n-users", str(n_users)]
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=pipeline_env(url, reports_dir, **settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def read_csv(path: Path):
    with open(path, newline="", encoding="utf-8") as handle:
        header, *rows = csv.reader(handle)
    return header, rows


def expected_rows(requests, n_users):
    """What the API served for the run's requests, cut to `n_users`."""
    rows = []
    for query in sorted(requests, key=lambda q: int(q["page"])):
        rows += read_csv_text(users_csv(query["seed"], int(query["page"]), int(query["results"])))
    return rows[:n_users]


def read_csv_text(text):
    return list(csv.reader(text.splitlines()))[1:]
