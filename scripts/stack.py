"""The Makefile's stack commands, in one language. Standard library only: it runs before any
virtual environment. Run from the checkout, with the compose command after `--`:

  python3 -m scripts.stack create                  # .env from .env.example, once
  python3 -m scripts.stack check                   # every setting, before anything starts
  python3 -m scripts.stack setting NAME [DEFAULT]  # as Compose reads it (scripts/dotenv.py)
  python3 -m scripts.stack up -- docker compose    # make up (OFFLINE, DASK, PUBLIC from make)
  python3 -m scripts.stack agent -- docker compose # make agent: an agent alone
  python3 -m scripts.stack agent-down -- docker compose

`up` starts the long-running services and waits until every one is healthy: a service that
restarts START_RESTARTS times, turns unhealthy, stops, or is still not healthy after
START_SECONDS ends it with one line naming the service and its restart count, then its last
log lines. Compose alone would wait for ever on a crash loop: Docker resets a restarting
container's health to "starting", never "unhealthy".
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from scripts import dotenv

# The modes `make up` takes (make's own NAME=value), each recorded in .env.
MODES = ("OFFLINE", "DASK", "PUBLIC")


class StackError(Exception):
    """What stops a command, as one line for the person at the terminal; `code` its exit
    status (2: what was asked is not allowed)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Container:
    id: str
    service: str
    restarts: int
    status: str  # Docker's: created, running, restarting, exited, ...
    health: str  # starting, healthy, unhealthy; "none" without a healthcheck


def requested_modes(environ) -> list:
    """(mode, on) for each mode given, all checked before any is recorded."""
    given = [(name, environ[name]) for name in MODES if environ.get(name, "") != ""]
    bad = [f"{name} must be 0 or 1, got {value!r}" for name, value in given if value not in ("0", "1")]
    if bad:
        raise StackError("; ".join(bad), code=2)
    return [(name.lower(), value == "1") for name, value in given]


def from_inspect(inspected: list) -> List[Container]:
    """The stack's containers in `docker inspect`'s JSON."""
    found = []
    for item in inspected:
        service = item["Config"]["Labels"].get("com.docker.compose.service", "")
        state = item["State"]
        health = (state.get("Health") or {}).get("Status", "none")
        found.append(Container(item["Id"], service, item["RestartCount"], state["Status"], health))
    return found


def broken(containers: List[Container], restarts_allowed: int, strict: bool) -> Optional[tuple]:
    """(container, what is wrong) of the first broken one, the most restarted first: restarted
    too often, unhealthy, or (`strict`: compose has given up) restarted at all or stopped.
    Containers compose only created (their dependency never became healthy) are not to blame."""
    for container in sorted(containers, key=lambda c: -c.restarts):
        if container.status == "created":
            continue
        said = f"(restarted {container.restarts} times)"
        if container.restarts >= restarts_allowed or (strict and container.restarts > 0):
            return container, f"{container.service} restarted {container.restarts} times ({container.status})"
        if container.health == "unhealthy" and container.status == "running":  # not one being replaced
            return container, f"{container.service} is unhealthy {said}"
        if strict and container.status != "running":
            return container, f"{container.service} is {container.status} {said}"
    return None


def waiting_for(containers: List[Container]) -> List[str]:
    """The services not healthy yet (services without a healthcheck are not waited for)."""
    return sorted({c.service for c in containers if c.health not in ("healthy", "none")})


class Start:
    """`compose up -d` of the long-running services, watched until all are healthy."""

    def __init__(self, compose: list, seconds: float, restarts_allowed: int):
        self.compose, self.seconds, self.restarts_allowed = compose, seconds, restarts_allowed
        self.deadline = time.monotonic() + seconds
        self.up = None

    def containers(self) -> List[Container]:
        ids = subprocess.run([*self.compose, "ps", "-a", "-q"], capture_output=True, text=True).stdout.split()
        if not ids:
            return []
        # One compose is replacing may be gone: inspect prints the others and fails.
        inspected = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True).stdout
        return from_inspect(json.loads(inspected or "[]"))

    def check(self, strict: bool) -> List[Container]:
        containers = self.containers()
        found = broken(containers, self.restarts_allowed, strict)
        if found:
            container, problem = found
            logs = subprocess.run(
                ["docker", "logs", "--tail", "15", container.id],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ).stdout
            lines = "".join(f"  {line}\n" for line in logs.splitlines())
            self.stop(f"{problem}; its last log lines:\n{lines}make up: stopped (see make ps, make logs)")
        if time.monotonic() >= self.deadline:
            waiting = " ".join(waiting_for(containers)) or "none created yet"
            self.stop(
                f"not healthy after {self.seconds:g} s: {waiting} "
                f"(START_SECONDS allows longer; see make ps, make logs)"
            )
        return containers

    def stop(self, message: str) -> None:
        if self.up and self.up.poll() is None:
            self.up.terminate()
        raise StackError(message)

    def run(self) -> None:
        self.up = subprocess.Popen([*self.compose, "up", "-d"])
        while self.up.poll() is None:
            self.check(strict=False)
            time.sleep(1)
        if self.up.returncode != 0:
            self.check(strict=True)
            raise StackError("compose up failed (its own error is above)")
        # Up, but not all healthy yet: compose waits only for the services others depend on.
        while waiting_for(self.check(strict=False)):
            time.sleep(2)


def run(command: list, echo: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Runs a command as make runs a recipe line (printed first, unless not `echo`); its
    failure stops us with its exit status."""
    if echo:
        print(" ".join(command), flush=True)
    result = subprocess.run(command, **kwargs)
    if result.returncode != 0:
        raise SystemExit(result.returncode)
    return result


def checked() -> None:
    """`make check`: every problem of .env and the environment at once, or nothing."""
    from scripts import check  # here: `setting` (backups, restores) needs no flow code

    found = check.problems()
    if found:
        lines = "".join(f"  {line}\n" for line in found)
        raise StackError(
            f"{len(found)} settings to mend in .env or the environment; nothing started:\n{lines}".rstrip(),
            code=2,
        )


# The settings that choose an image, for the line that says a pull cannot happen.
IMAGE_SETTINGS = ("BASE_IMAGE", "PROXY_IMAGE", "POSTGRES_IMAGE")


def images_named(config: str) -> List[tuple]:
    """(image, platform or None) of each service of `compose config`'s YAML, and the base
    image its builds start from; the server's images ask for linux/amd64 (docs/troubleshooting.md)."""
    images, platforms, service = {}, {}, None
    for line in config.splitlines():
        if re.match(r"^  \S[^:]*:\s*$", line):
            service = line.strip()[:-1]
        elif re.match(r"^    (image|platform): ", line):
            key, value = line.strip().split(": ", 1)
            (images if key == "image" else platforms)[service] = value.strip("'\"")
        elif re.match(r"^\s+BASE_IMAGE: ", line):
            images[f"{service} build"] = line.split(": ", 1)[1].strip().strip("'\"")
    return sorted({(image, platforms.get(service)) for service, image in images.items()}, key=str)


def images_to_pull(compose: list) -> List[tuple]:
    """The images the stack runs or builds on that this Docker engine does not have (the
    project image is built here, never pulled), each with its platform."""
    config = subprocess.run([*compose, "config"], capture_output=True, text=True).stdout
    project = dotenv.get("PROJECT_IMAGE")
    return [
        (image, platform)
        for image, platform in images_named(config)
        if image != project
        and subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0
    ]


def pull_missing(compose: list) -> None:
    """Pulls what is missing before anything is built, so that a pull that cannot happen is
    one line saying what to do, with Docker's own words after it."""
    for image, platform in images_to_pull(compose):
        pulled = subprocess.run(
            ["docker", "pull", *(["--platform", platform] if platform else []), image],
            capture_output=True,
            text=True,
        )
        if pulled.returncode != 0:
            chosen = next((name for name in IMAGE_SETTINGS if dotenv.get(name) == image), None)
            which = f"{chosen} chooses it" if chosen else "the stack's compose files pin it"
            raise StackError(
                f"cannot pull {image} ({which}): the first make up downloads the server's images "
                f"and the Python base image, so it needs the internet, or a mirror in Docker's "
                f"own registry-mirrors, or images you have (BASE_IMAGE, PROXY_IMAGE): "
                f"docs/troubleshooting.md#no-pull. Docker said:\n{pulled.stderr.strip()}"
            )


# Where the postgres service keeps its data (docker-compose.database.yml), and what a
# container of its image says of it and of itself.
POSTGRES_DATA = "/var/lib/postgresql/data"
POSTGRES_PROBE = f"cat {POSTGRES_DATA}/PG_VERSION 2>/dev/null; echo; postgres --version 2>/dev/null"


def postgres_majors(said: str) -> tuple:
    """(the major version of the data in the volume, or None on a new one; the image's
    server's, or None where it could not tell) from what POSTGRES_PROBE printed."""
    first = said.split("\n", 1)[0].strip()
    server = re.search(r"\(PostgreSQL\) (\d+)", said)
    return (int(first) if first.isdigit() else None), (int(server[1]) if server else None)


def major_refusal(data: Optional[int], server: Optional[int], image: str) -> Optional[str]:
    """PostgreSQL starts only on data of its own major version; another crash-loops."""
    if data is None or server is None or data == server:
        return None
    if data > server:
        return (
            f"the database volume holds PostgreSQL {data} data and POSTGRES_IMAGE ({image}) is "
            f"the older PostgreSQL {server}, which cannot start on it; nothing started. Set "
            f"POSTGRES_IMAGE to a PostgreSQL {data} image in .env"
        )
    return (
        f"the database volume holds PostgreSQL {data} data and POSTGRES_IMAGE ({image}) is "
        f"PostgreSQL {server}, which cannot start on it; nothing started. Move the data to "
        f"{server} with: make upgrade-db (a backup first; docs/operations.md#another-postgresql-version)"
    )


def check_database_version(compose: list) -> None:
    """Refuses, before anything starts, the stack's own PostgreSQL on another major
    version's data: one container of its image reads the volume's PG_VERSION."""
    if dotenv.get("POSTGRES_HOST"):
        return  # no postgres service: the external database is its own
    probe = subprocess.run(
        [*compose, "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "postgres", "-c", POSTGRES_PROBE],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:  # otherwise compose up, next, says what is wrong
        problem = major_refusal(*postgres_majors(probe.stdout), dotenv.get("POSTGRES_IMAGE"))
        if problem:
            raise StackError(problem, code=2)


def up(compose: list) -> None:
    modes = requested_modes(os.environ)
    checked()
    for mode, on in modes:
        dotenv.record_mode(mode, on)
    dotenv.prepare()
    pull_missing(compose)
    check_database_version(compose)
    run([*compose, "build"])
    Start(compose, float(dotenv.get("START_SECONDS")), int(dotenv.get("START_RESTARTS"))).run()
    # Compose's `up` leaves the services of a mode taken out running (make up DASK=0).
    off = dotenv.services_off()
    if off:
        removed = subprocess.run([*compose, "rm", "--stop", "--force", *off], capture_output=True, text=True)
        if removed.returncode != 0:
            raise StackError(f"could not remove {', '.join(off)}: {removed.stderr.strip()}")
    run([*compose, "exec", "-T", "agent", "python", "register.py"])
    ui = dotenv.get("UI_PUBLIC_URL", f"http://localhost:{dotenv.get('UI_PORT')}")
    print(f'\nPrefect UI:  {ui}  (flow "Users report", project "{dotenv.get("PREFECT_PROJECT")}")')
    print(f"Reports:     {dotenv.get('HOST_REPORTS_DIR')}")
    print(f"Metrics:     {ui}/prometheus/  (alerts: {ui}/alertmanager/)")
    print("Next:        make smoke (one checked run), or start runs from the UI (docs/pipeline.md)")
    if dotenv.is_public():
        print("People:      make user NAME=<name> ROLE=<viewer|operator|maintainer|admin> (docs/security.md)")


def agent_compose(compose: list) -> list:
    """Compose on `make agent`'s own project and network, beside any stack on this host."""
    return [
        *compose,
        "--project-directory",
        ".",
        "-f",
        "agent/docker-compose.yml",
        "-p",
        dotenv.get("AGENT_PROJECT"),
    ]


def agent(compose: list) -> None:
    """An agent alone. With certs/ca.crt (the CA of the server's proxy: `make ca` there), the
    agent and its flow runs trust it besides the public CAs: certs/ca-bundle.pem, from the
    image's own bundle."""
    checked()
    dotenv.prepare()
    compose = agent_compose(compose)
    run([*compose, "build"])
    bundle = ""
    if Path("certs/ca.crt").is_file():
        image_bundle = run(
            [*compose, "run", "--rm", "--no-deps", "-T", "agent", "python", "-c",
             "import certifi, sys; sys.stdout.write(open(certifi.where()).read())"],
            echo=False, capture_output=True, text=True,
        ).stdout  # fmt: skip
        bundle = str(Path.cwd() / "certs" / "ca-bundle.pem")
        Path(bundle).write_text(image_bundle + Path("certs/ca.crt").read_text())
    run([*compose, "up", "-d"], env={**os.environ, "HOST_CA_BUNDLE": bundle})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create")
    commands.add_parser("check")
    reading = commands.add_parser("setting")
    reading.add_argument("name")
    reading.add_argument("default", nargs="?")
    for name in ("up", "agent", "agent-down"):
        commands.add_parser(name).add_argument("compose", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "setting":
        print(dotenv.get(args.name, args.default))
        return 0
    if args.command == "create":
        dotenv.create()
        return 0
    compose = [word for word in getattr(args, "compose", []) if word != "--"]
    commands = {
        "check": checked,
        "up": lambda: up(compose),
        "agent": lambda: agent(compose),
        "agent-down": lambda: run([*agent_compose(compose), "down"]),
    }
    return as_make_says(args.command, commands[args.command])


def as_make_says(command: str, action) -> int:
    """Runs `action`; what stops it is one line, `make <command>: ...`, and its exit status."""
    try:
        action()
    except StackError as exc:
        print(f"make {command}: {exc}", file=sys.stderr)
        return exc.code
    except dotenv.DotenvError as exc:
        print(f"make {command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
