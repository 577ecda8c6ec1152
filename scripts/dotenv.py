"""The project's `.env`: written once, read as Compose reads it, modes recorded in it, for
the Makefile's commands (scripts/stack.py). Standard library only: it runs before any
virtual environment. A setting's default is the one `.env.example` documents
(`# NAME=value`): declared once.
"""

import os
import re
import secrets
import shutil
from pathlib import Path

ENV, EXAMPLE = Path(".env"), Path(".env.example")
LINE = re.compile(r"^(#\s?)?([A-Z][A-Z0-9_]*)=(.*)$")
# Flow runs never run as root: a root user's reports and runs belong to uid 1000.
ROOT_APP_UID = "1000"
# The compose files beside docker-compose.yml: the database (the stack's own, or the one
# POSTGRES_HOST names) and the published ports (loopback, or PUBLIC=1's one HTTPS port).
DATABASE_FILES = {False: "docker-compose.database.yml", True: "docker-compose.external-database.yml"}
PORTS_FILES = {False: "docker-compose.override.yml", True: "docker-compose.public.yml"}
# The services of each mode's compose profile (`profiles:` in docker-compose.yml). Compose's
# `up` leaves them running once their profile is off (make up DASK=0): make up removes them.
PROFILE_SERVICES = {"offline": ("users-api",), "dask": ("dask-scheduler", "dask-worker")}


class DotenvError(Exception):
    """What stops a command that writes .env, as one line."""


def parse(path: Path, commented: bool = False) -> dict:
    """NAME -> value of a file's settings, the last one winning; `commented`: its
    documented defaults (`# NAME=value`) instead of its settings."""
    values = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        match = LINE.match(line)
        if match and bool(match[1]) == commented:
            values[match[2]] = match[3]
    return values


def get(name: str, default=None) -> str:
    """As Compose interpolates `${NAME:-default}`: the shell's non-empty value, else .env's,
    else `default`, else the one .env.example documents."""
    if os.environ.get(name):
        return os.environ[name]
    recorded = parse(ENV).get(name)
    if recorded:
        return recorded
    if default is not None:
        return default
    return parse(EXAMPLE, commented=True).get(name, "")


def write_private(path: Path, lines) -> None:
    """Replaces `path` with `lines`, readable by its owner only, never half-written."""
    partial = path.with_name(path.name + ".new")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write("".join(f"{line}\n" for line in lines))
    os.chmod(partial, 0o600)
    partial.replace(path)


def create() -> None:
    """.env from .env.example, once: the empty secrets get 24 random bytes in hex each, the
    reports folder and the flows' secrets file their absolute paths (the agent binds them
    from the host), APP_UID this user's uid."""
    if ENV.exists():
        return
    here, uid = Path.cwd(), os.getuid()
    filled = {
        "POSTGRES_PASSWORD": secrets.token_hex(24),
        "HOST_REPORTS_DIR": str(here / "reports"),
        "APP_UID": str(uid) if uid else ROOT_APP_UID,
        "FLOW_SECRETS_FILE": str(here / "flow-secrets.env"),
        "API_TOKEN": secrets.token_hex(24),
    }
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        match = LINE.match(line)
        if match and not match[1] and not match[3] and match[2] in filled:
            line += filled[match[2]]
        lines.append(line)
    write_private(ENV, lines)
    print("Wrote .env with fresh secrets (private to you, ignored by git).")


def mode_settings(name: str) -> tuple:
    """A mode's compose profile (or None) and the settings it records."""
    if name == "offline":  # the demo users API, with no limit to pace to
        return "offline", {"RANDOMUSER_URL": "http://users-api:8999/api/", "USERS_API_LIMIT": "0"}
    if name == "dask":  # a Dask scheduler and DASK_WORKERS workers for flow runs
        return "dask", {"DASK_ADDRESS": "tcp://dask-scheduler:8786", "DASK_WORKERS": get("DASK_WORKERS")}
    # public: the proxy published as one HTTPS port (PORTS_FILES); the UI and alert links
    # use its address.
    host, port = get("PUBLIC_HOST"), get("PUBLIC_PORT")
    return None, {
        "PUBLIC_HOST": host,
        "PUBLIC_PORT": port,
        "PUBLIC_BIND": get("PUBLIC_BIND"),
        "APOLLO_PUBLIC_URL": f"https://{host}:{port}/graphql",
        "UI_PUBLIC_URL": f"https://{host}:{port}",
    }


def record_mode(name: str, on: bool) -> None:
    """Records a mode in .env (on) or takes it out (off), so that every later command (make
    register, make down, docker compose up -d agent) keeps it; COMPOSE_PROFILES, the last
    line, lists the modes' profiles."""
    public = on if name == "public" else is_public()
    profile, settings = mode_settings(name)
    lines, profiles = [], []
    for line in ENV.read_text().splitlines():
        match = LINE.match(line)
        if match and not match[1] and match[2] == "COMPOSE_PROFILES":
            profiles = [p for p in match[3].split(",") if p and p != profile]
        elif not (match and not match[1] and match[2] in settings):
            lines.append(line)
    if on:
        lines += [f"{key}={value}" for key, value in settings.items()]
        profiles += [profile] if profile else []
    if profiles:
        lines.append(f"COMPOSE_PROFILES={','.join(profiles)}")
    write_private(ENV, lines)
    set_value("COMPOSE_FILE", compose_file(public))


def is_public() -> bool:
    return PORTS_FILES[True] in get("COMPOSE_FILE")


def compose_file(public: bool) -> str:
    database = DATABASE_FILES[bool(get("POSTGRES_HOST"))]
    return ":".join(["docker-compose.yml", database, PORTS_FILES[public]])


def set_value(name: str, value: str) -> None:
    """NAME=value in .env: in the place of its line, or last."""
    lines = ENV.read_text().splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith(f"{name}=")), len(lines))
    rest = [line for line in lines[at + 1 :] if not line.startswith(f"{name}=")]
    write_private(ENV, [*lines[:at], f"{name}={value}", *rest])


def prepare() -> None:
    """What `make up` needs before Compose runs: COMPOSE_FILE naming the database in use (an
    .env from before it had none gets one); the reports folder and the flows' secrets file
    (mode 600, empty at first), which Docker would make root-owned folders of; API_TOKEN,
    which an .env from before every stack had one lacks."""
    if parse(ENV).get("COMPOSE_FILE", "") != compose_file(is_public()):
        set_value("COMPOSE_FILE", compose_file(is_public()))
    if not parse(ENV).get("API_TOKEN"):
        set_value("API_TOKEN", secrets.token_hex(24))
    reports = Path(get("HOST_REPORTS_DIR", default="reports"))
    reports.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:  # the folder, and the ledger a root `make run` may have made, to the flow runs' user
        from flows.users_report.pacing import LEDGER_NAME  # here: `setting` needs no flow code

        for path in (reports, reports / LEDGER_NAME):
            if path.exists():
                shutil.chown(path, user=int(get("APP_UID", default=ROOT_APP_UID)))
    secrets_file = get("FLOW_SECRETS_FILE")
    if secrets_file and not Path(secrets_file).exists():
        write_private(Path(secrets_file), ["# The flows' secrets: NAME=value lines (docs/flows.md)"])


def services_off() -> list:
    """The services of the profiles COMPOSE_PROFILES leaves out."""
    on = get("COMPOSE_PROFILES").split(",")
    return [
        service for profile, services in PROFILE_SERVICES.items() if profile not in on for service in services
    ]
