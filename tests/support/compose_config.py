"""The compose files resolved by the real Compose, v2 or v1, as the tests read them."""

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT
from tests.support.compose_versions import V2_BINARY, compose_v1

SECRETS = {"POSTGRES_PASSWORD": "pg-secret"}
HOST_REPORTS = "/srv/office/reports"
# Compose reads .env of the project directory unless told another file: this empty one
# (Compose v1 refuses /dev/null: "is not a file").
NO_ENV_FILE = Path(__file__).with_name("empty.env")


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


def compose_config(version="v2", public=False, external=False, **env) -> dict:
    """The resolved compose files as `make up` uses them (scripts/dotenv.py): docker-compose.yml,
    the stack's own database (docker-compose.database.yml) or (`external`, POSTGRES_HOST) an
    external one, the loopback ports of docker-compose.override.yml or (`public`, PUBLIC=1)
    the HTTPS port of docker-compose.public.yml; every profile's services included (v2 leaves
    out those of profiles not asked for)."""
    database = "docker-compose.external-database.yml" if external else "docker-compose.database.yml"
    overlay = "docker-compose.public.yml" if public else "docker-compose.override.yml"
    files = [
        argument
        for name in ("docker-compose.yml", database, overlay)
        for argument in ("-f", str(ROOT / name))
    ]
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
        env={**SECRETS, "HOST_REPORTS_DIR": HOST_REPORTS, "STACK_ENV_FILE": str(NO_ENV_FILE), **env},
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


def agent_compose_config(version: str, env: dict) -> subprocess.CompletedProcess:
    """`compose config` of `make agent`'s compose file with only `env` (and no .env)."""
    agent_file = str(ROOT / "agent" / "docker-compose.yml")
    return docker_compose(
        version,
        "-f",
        agent_file,
        "--env-file",
        str(NO_ENV_FILE),
        "config",
        env={"STACK_ENV_FILE": str(NO_ENV_FILE), **env},
    )
