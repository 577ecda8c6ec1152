"""Shared fixtures: the fake users API on loopback and a runner of the real `make run` entry."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from demo.users_api import DemoUsersAPI
from flows.users_report.pacing import LEDGER_NAME
from tests.support import ROOT, free_port


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}/api/"


def pytest_configure(config):
    # Nothing imported in-process may reach the internet: neither the users API nor,
    # through a Prefect Client left on its defaults, Prefect Cloud.
    os.environ["RANDOMUSER_URL"] = closed_port_url()
    os.environ["PREFECT__BACKEND"] = "server"
    os.environ["PREFECT__SERVER__HOST"] = "http://127.0.0.1"
    os.environ["PREFECT__SERVER__PORT"] = str(free_port())


def report_names(reports_dir: Path) -> list:
    """What a folder of reports holds, but the users API's budget ledger (kept on purpose)."""
    return sorted(path.name for path in reports_dir.iterdir() if path.name != LEDGER_NAME)


@pytest.fixture
def users_api():
    """The fake users API with the real one's limit: 20,000 users per client per 5 min."""
    with DemoUsersAPI(lifetime=120, limit=20_000, window=300) as api:
        yield api


@pytest.fixture
def reports_dir(tmp_path):
    path = tmp_path / "reports"
    path.mkdir()
    return path


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


def start_run(url: str, reports_dir: Path, n_users=None, **settings) -> subprocess.Popen:
    """Starts `python -m flows.users_report`, the command behind `make run`."""
    args = [sys.executable, "-m", "flows.users_report"]
    if n_users is not None:
        args += ["--n-users", str(n_users)]
    return subprocess.Popen(
        args, cwd=ROOT, env=pipeline_env(url, reports_dir, **settings),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture
def run_pipeline(users_api, reports_dir):
    def run(n_users=None, url=None, **settings):
        return finish(start_run(url or users_api.url, reports_dir, n_users, **settings))

    return run
