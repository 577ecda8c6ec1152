"""`make check`: every setting in .env and the environment read by the readers the code itself
uses (the stack's, each flow package's), before any image is built or container started.
An unknown name in .env gets the closest known one; a bad value the reader's own line; all
the problems at once. Standard library only, as scripts/dotenv.py.
"""

import difflib
import importlib
import os
import re
from pathlib import Path
from typing import Callable, Dict, List

from flows.shared.settings import SettingsError, choice, names_in_file, number, url
from scripts import dotenv

COMPOSE_FILES = (
    "docker-compose.yml",
    "docker-compose.database.yml",
    "docker-compose.external-database.yml",
    "docker-compose.override.yml",
    "docker-compose.public.yml",
    "agent/docker-compose.yml",
)
# Names Compose itself reads from .env.
COMPOSE_OWN = {"COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PROJECT_NAME"}


def port(name: str) -> None:
    number(name, 1, int, 1, 65535)


# What monitoring/alertmanager.sh writes into Alertmanager's YAML as it is: no quotes,
# backslashes or blanks inside a value.
ADDRESS = r"[^\s@\",\\]+@[^\s@\",\\]+"


def matching(pattern: str, allowed: str) -> Callable[[str], None]:
    def read(name: str) -> None:
        value = os.environ.get(name, "").strip()
        if value and not re.fullmatch(pattern, value):
            raise SettingsError(f"{name}={value!r} is not allowed: use {allowed}")

    return read


def email_to(name: str) -> None:
    matching(rf"{ADDRESS}(\s*,\s*{ADDRESS})*", "e-mail addresses separated by commas")(name)
    if os.environ.get(name, "").strip() and not os.environ.get("SMTP_SMARTHOST", "").strip():
        raise SettingsError(f"{name}={os.environ[name]!r} is not allowed without SMTP_SMARTHOST (host:port)")


# What only Compose and make read (docker-compose*.yml, the Makefile), checked by the same
# readers the Python code uses; the defaults are .env.example's. (UI_PORT and UI_PUBLIC_URL
# are stack/settings.py's own.)
COMPOSE_READ: Dict[str, Callable[[str], None]] = {
    **{name: port for name in ("APOLLO_PORT", "PUBLIC_PORT", "POSTGRES_PORT")},
    **{name: lambda name: url(name, "") for name in ("APOLLO_PUBLIC_URL", "PREFECT_API_URL")},
    "DASK_WORKERS": lambda name: number(name, 2, int, 1, 64),
    "ALERT_EMAIL_TO": email_to,
    "SMTP_SMARTHOST": matching(
        r"[A-Za-z0-9.-]+:[0-9]{1,5}", "the mail server as host:port, say mail.example.org:587"
    ),
    "SMTP_FROM": matching(ADDRESS, "one e-mail address"),
    "SMTP_USER": matching(r"[^\s\"\\]+", "a user name without blanks, quotes or backslashes"),
    "SMTP_REQUIRE_TLS": lambda name: choice(name, "true", ("true", "false")),
    "METRICS_KEEP_DAYS": lambda name: number(name, 30, int, 1, 36_500),
    "START_SECONDS": lambda name: number(name, 900, int, 1, 86_400),
    "START_RESTARTS": lambda name: number(name, 3, int, 1, 100),
    "RESTORE_LOCK_SECONDS": lambda name: number(name, 60, int, 1, 3600),
    "POSTGRES_VOLUME": lambda name: choice(name, "postgres-data", ("postgres-data", "postgres-data-2")),
    "APP_UID": lambda name: number(name, 1000, int, 1, 2**31 - 1),
    "DEMO_API_LATENCY": lambda name: number(name, 0.0, float, 0, 60),
    "DEMO_API_FAIL_RATE": lambda name: number(name, 0.0, float, 0, 1),
    "DEMO_API_LIMIT": lambda name: number(name, 0, int, 0, 10_000_000),
    "DEMO_API_WINDOW": lambda name: number(name, 300.0, float, 1, 3600),
}


def known_names(root: Path) -> set:
    """Every setting something here reads: a reader in stack/ or flows/, Compose, make."""
    read = set(names_in_file(root / "stack" / "settings.py"))
    read.update(name for path in (root / "flows").rglob("*.py") for name in names_in_file(path))
    compose = "".join((root / name).read_text() for name in COMPOSE_FILES)
    read.update(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", compose))
    read.update(dotenv.parse(root / ".env.example"), dotenv.parse(root / ".env.example", commented=True))
    return read | COMPOSE_OWN | set(COMPOSE_READ)


# Settings of earlier versions that nothing reads now, with what to do instead.
RETIRED = {
    name: f"{name} in .env is no longer read: people log in as themselves now; delete that "
    "line, make up, then make user NAME=<you> ROLE=admin (docs/security.md#people-and-roles)"
    for name in ("UI_USER", "UI_PASSWORD_HASH")
}


def unknown(names, known: set) -> List[str]:
    lines = []
    for name in sorted(set(names) - known):
        if name in RETIRED:
            lines.append(RETIRED[name])
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]}?" if close else "docs/settings.md lists every setting"
        lines.append(f"{name} in .env is not a setting: {hint}")
    return lines


def readers(root: Path) -> List[Callable[[], object]]:
    """The stack's settings loader and each flow package's that imports with the standard
    library (a flow's own may need its packages: register checks it at `make up`)."""
    from stack.settings import load_stack_settings

    found = [load_stack_settings]
    for path in sorted((root / "flows").glob("*/settings.py")):
        try:
            module = importlib.import_module(f"flows.{path.parent.name}.settings")
        except ImportError:
            continue
        except SettingsError as exc:  # read when imported: its line, once
            found.append(lambda exc=exc: (_ for _ in ()).throw(exc))
            continue
        found.append(getattr(module, "load_settings", lambda: None))
    found += [lambda name=name, read=read: read(name) for name, read in COMPOSE_READ.items()]
    return found


def bad_values(loaders, environ: dict) -> List[str]:
    """Each reader's own line for every bad value: a loader stops at its first, so the name it
    named is set aside and the loader asked again."""
    lines, saved = [], dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environ)
        for load in loaders:
            while True:
                try:
                    load()
                    break
                except SettingsError as exc:
                    if str(exc) in lines:  # said already, and setting it aside did not help
                        break
                    lines.append(str(exc))
                    os.environ.pop(str(exc).split("=", 1)[0], None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return sorted(set(lines))


def writable_by(path: Path, uid: int) -> bool:
    """Whether `uid` may write to `path` (and, a folder, create in it), by its owner and mode."""
    info, need = path.stat(), 0o3 if path.is_dir() else 0o2
    if info.st_uid == uid:
        return info.st_mode & (need << 6) == need << 6
    return info.st_mode & need == need  # for others (its group is not known here)


def reports_problems(environ: dict) -> List[str]:
    """The reports folder and the files the stack keeps in it (the users API's ledger) must be
    writable by the flow runs' user; run as root, `make up` hands them to it instead."""
    from flows.users_report.pacing import LEDGER_NAME

    folder = Path(environ.get("HOST_REPORTS_DIR") or "reports")
    uid = int(environ.get("APP_UID") or 1000)
    if os.getuid() == 0 or not folder.exists():
        return []  # dotenv.prepare makes it, or gives it and the ledger to APP_UID
    lines = []
    for path in (folder, folder / LEDGER_NAME):
        if path.exists() and not writable_by(path, uid):
            lines.append(
                f"HOST_REPORTS_DIR: {path} cannot be written by the flow runs' user (uid {uid}, "
                f"APP_UID), its owner is uid {path.stat().st_uid}: sudo chown {uid} {path}"
            )
    return lines


def problems(root: Path = Path(".")) -> List[str]:
    """Every problem of .env and the environment, one line each; none: all is well."""
    recorded = dotenv.parse(root / ".env")
    # As Compose interpolates: the shell's non-empty value, else .env's.
    environ = {**{k: v for k, v in recorded.items() if v}, **{k: v for k, v in os.environ.items() if v}}
    return (
        unknown(recorded, known_names(root)) + bad_values(readers(root), environ) + reports_problems(environ)
    )
