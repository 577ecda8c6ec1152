"""Hops of a stack's start: `make up` refusing a blanked secret and stopping on a crash loop,
then up with every service healthy and both flow packages deployed.
"""

import re
import time

import yaml

from tests.programs.e2e_base import run
from tests.programs.e2e_stack import Stack, output

LONG_RUNNING = (
    "postgres",
    "hasura",
    "graphql",
    "towel",
    "apollo",
    "door",
    "ui",
    "proxy",
    "agent",
    "users-api",
    "exporter",
    "prometheus",
    "alertmanager",
)


def missing_secret(stack: Stack) -> str:
    """`make up` with a secret blanked in .env stops at compose, naming it; nothing starts."""
    stack.make(".env")
    env_file = stack.dir / ".env"
    written = env_file.read_text()
    env_file.write_text(re.sub(r"^POSTGRES_PASSWORD=.*$", "POSTGRES_PASSWORD=", written, flags=re.M))
    result = stack.make("up", "OFFLINE=1", check=False)
    env_file.write_text(written)
    assert result.returncode != 0, "make up started without POSTGRES_PASSWORD"
    assert "POSTGRES_PASSWORD is not set - run `make up`" in result.stderr, result.stderr[-2000:]
    assert not output("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.name}")
    assert env_file.stat().st_mode & 0o777 == 0o600 and re.search(
        r"^POSTGRES_PASSWORD=\w{48}$", written, re.M
    )
    return ".env written with mode 600; blanked POSTGRES_PASSWORD refused"


def crash_loop(stack: Stack) -> str:
    """`make up` with hasura exiting at once: it stops in seconds, naming hasura, its
    restart count and its last log lines, instead of waiting for ever; graphql, waiting for
    a healthy hasura, is never started."""
    begun = time.monotonic()
    result = stack.make(
        "up",
        "OFFLINE=1",
        check=False,
        COMPOSE_FILE=stack.env["COMPOSE_FILE"] + ":tests/programs/docker-compose.crashloop.yml",
    )
    took = time.monotonic() - begun
    assert result.returncode != 0, result.stdout[-2000:]
    line = re.search(r"^make up: hasura .*restarted (\d+) times.*$", result.stderr, re.M)
    assert line and "hasura: cannot start (e2e crash loop)" in result.stderr, result.stderr[-2000:]
    assert not stack.containers("graphql") or "running" not in output(
        "docker", "inspect", "-f", "{{.State.Status}}", stack.container("graphql")
    )
    stack.compose("rm", "--stop", "--force", "hasura", capture_output=True)
    return f"stopped after {took:.0f} s (images built included): {line[0].split('; ')[0]}"


def make_up(stack: Stack) -> str:
    begun = time.monotonic()
    result = stack.make("up", "OFFLINE=1")
    took = time.monotonic() - begun
    url = f"Prefect UI:  http://localhost:{stack.ui_port}"
    assert url in result.stdout, result.stdout[-2000:]
    if stack.version == "v2":  # the Makefile found `docker compose` by itself
        assert "\ndocker compose build" in "\n" + result.stdout, result.stdout[:500]
    assert stack.reports.is_dir() and stack.reports.stat().st_uid == stack.app_uid
    # Recorded, so that make register, make down and a plain make up keep the demo API.
    assert (
        "\nRANDOMUSER_URL=http://users-api:8999/api/\nUSERS_API_LIMIT=0\nCOMPOSE_PROFILES=offline\n"
        in (stack.dir / ".env").read_text()
    )
    return f"{took:.0f} s to the URL line"


def all_healthy(stack: Stack) -> str:
    listing = stack.make("ps").stdout
    unhealthy = [
        service
        for service in LONG_RUNNING
        if not any(
            re.search(rf"[-_]{service}[-_]1\b", line) and "(healthy)" in line for line in listing.splitlines()
        )
    ]
    assert not unhealthy, f"not healthy in make ps: {unhealthy}\n{listing}"
    assert not re.search(r"[-_]register[-_]", listing), f"register left running:\n{listing}"
    return f"{len(LONG_RUNNING)} services healthy"


def flow_packages(stack: Stack) -> str:
    """`make up` deployed both packages of the copy (flows/memory_check added); a run of
    the second within its memory limit succeeds, one over it is killed and says so."""
    other = stack.active_flow("Memory check")
    assert other["storage"]["image_tag"] != stack.active_flow()["storage"]["image_tag"]
    fits = stack.create_run({"mebibytes": 10}, flow_name="Memory check")
    too_big = stack.create_run({"mebibytes": 1000}, flow_name="Memory check")
    ended = stack.wait_for_runs([fits, too_big])
    assert ended[fits]["state"] == "Success", stack.explain(fits)
    killed = ended[too_big]
    said = "Killed: the run's container went over its memory limit of 400m (MEMORY_LIMIT in"
    assert killed["state"] == "Failed" and killed["state_message"].startswith(said), stack.explain(too_big)
    assert killed["state_message"] in stack.logs(too_big), stack.explain(too_big)  # its log says so too
    return killed["state_message"]


def hasura_probe(stack: Stack) -> None:
    """Hasura's image may lack wget and curl, and so does ours: its health probe must
    still tell a listening server from none."""
    config = yaml.safe_load(stack.compose("config", capture_output=True, text=True).stdout)
    probe = config["services"]["hasura"]["healthcheck"]["test"][1]
    script = f"({probe}) && exit 9; python -m http.server 3000 >/dev/null 2>&1 & sleep 2; {probe}"
    code = run(
        "docker", "run", "--rm", stack.env["PROJECT_IMAGE"], "sh", "-c", script, check=False
    ).returncode
    assert code == 0, f"the probe answered {code} (9: healthy with nothing listening)"
