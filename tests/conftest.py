"""Shared fixtures and helpers: the fake users API on loopback, a runner of the real `make
run` entry, and the compose file resolved by Compose v2 and v1."""

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from demo.users_api import DemoUsersAPI
from flows.users_report.pacing import LEDGER_NAME
from tests.prefect_api_standin import PrefectAPIStandIn
from tests.support import ROOT, free_port
from tests.support.compose_versions import COMPOSE_VERSIONS, V2_BINARY, compose_v1


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


@pytest.fixture
def standin():
    api = PrefectAPIStandIn().serve(lifetime=300)
    yield api
    api.stop()


@pytest.fixture
def stack_env(standin, users_api, tmp_path):
    """What compose gives the agent and the register step, pointed at the stand-in."""
    (tmp_path / "host-reports").mkdir()
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "PREFECT__BACKEND": "server",
        "PREFECT__SERVER__HOST": "http://127.0.0.1",
        "PREFECT__SERVER__PORT": standin.url.rsplit(":", 1)[1],
        "HOST_REPORTS_DIR": str(tmp_path / "host-reports"),
        "RANDOMUSER_URL": users_api.url,
        "HTTP_RETRIES": "1",
        "HTTP_RETRY_DELAY": "0.05",
    }


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


@pytest.fixture
def run_pipeline(users_api, reports_dir):
    def run(n_users=None, url=None, **settings):
        return finish(start_run(url or users_api.url, reports_dir, n_users, **settings))

    return run


@pytest.fixture(scope="module", params=COMPOSE_VERSIONS)
def compose_version(request):
    return request.param


@pytest.fixture(scope="module")
def config(compose_version):
    return compose_config(compose_version)


# ---- `compose config` for the tests, under either version --------------------------------

SECRETS = {"POSTGRES_PASSWORD": "pg-secret"}
HOST_REPORTS = "/srv/office/reports"
# Compose reads .env of the project directory unless told another file: an empty one here.
NO_ENV_FILE = Path(tempfile.mkdtemp(prefix="compose-env-")) / "empty.env"
NO_ENV_FILE.write_text("")


def compose_command(version: str) -> str:
    if version == "v2":
        return str(V2_BINARY)
    v1 = compose_v1()
    if v1 is None:
        message = "docker-compose 1.29 is not installed (Debian: apt-get install docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return v1


def docker_compose(version, *args, env=None, cwd=ROOT) -> subprocess.CompletedProcess:
    # Only what is given: no .env or shell setting of the developer's leaks in.
    clean = {"PATH": os.environ["PATH"], **(env or {})}
    return subprocess.run(
        [compose_command(version), "--project-directory", str(cwd), *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
    )


def compose_config(version="v2", public=False, **env) -> dict:
    """The resolved compose files as `make up` uses them: docker-compose.yml with the
    loopback ports of docker-compose.override.yml, or (`public`, PUBLIC=1) with the HTTPS
    port of docker-compose.public.yml; every profile's services included (v2 leaves out
    those of profiles not asked for)."""
    overlay = "docker-compose.public.yml" if public else "docker-compose.override.yml"
    files = ["-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / overlay)]
    result = docker_compose(
        version,
        *files,
        "--env-file",
        str(NO_ENV_FILE),
        "--profile",
        "offline",
        "--profile",
        "dask",
        "config",
        env={**SECRETS, "HOST_REPORTS_DIR": HOST_REPORTS, **env},
    )
    assert result.returncode == 0, result.stderr
    return short_syntax(yaml.safe_load(result.stdout))


def short_syntax(config: dict) -> dict:
    """Compose v2 writes ports, volumes and commands in long syntax and adds defaults
    (`required`, volume names); v1 keeps the short one. One form for both, to compare."""
    for service in config["services"].values():
        if isinstance(service.get("command"), str):
            service["command"] = shlex.split(service["command"])
        service["ports"] = [
            port
            if isinstance(port, str)
            else f"{port['host_ip']}:{port['published']}:{port['target']}/{port['protocol']}"
            for port in service.get("ports", [])
        ]
        service["volumes"] = [
            volume
            if isinstance(volume, str)
            else f"{volume['source']}:{volume['target']}:{'ro' if volume.get('read_only') else 'rw'}"
            for volume in service.get("volumes", [])
        ]
        for dependency in service.get("depends_on", {}).values():
            dependency.pop("required", None)
    config["volumes"] = {name: {} for name in config.get("volumes", {})}
    return config
