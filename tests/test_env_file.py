"""`.env`, as the Makefile handles it through scripts/dotenv.py: written once with fresh
secrets, read as Compose reads it, modes recorded and taken out. No Docker needed: the one
image it runs (the proxy's, to hash the UI password) is a fake `docker` on PATH here."""

import ast
import importlib
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest

from tests.support import ROOT


@pytest.fixture
def checkout(tmp_path):
    folder = tmp_path / "checkout"
    (folder / "scripts").mkdir(parents=True)
    for name in ("Makefile", ".env.example", "scripts/dotenv.py"):
        shutil.copy(ROOT / name, folder / name)
    return folder


def dotenv(checkout, *args, **env):
    return subprocess.run(
        [sys.executable, "scripts/dotenv.py", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
    )


OWN_DATABASE = "docker-compose.yml:docker-compose.database.yml:docker-compose.override.yml"


def settings(checkout) -> list:
    return [
        line for line in (checkout / ".env").read_text().splitlines() if line and not line.startswith("#")
    ]


def test_make_writes_env_once_private_with_fresh_secrets_and_the_checkouts_paths(checkout):
    made = subprocess.run(
        ["make", "--no-print-directory", ".env"], cwd=checkout, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout == "Wrote .env with fresh secrets (private to you, ignored by git).\n"
    env = (checkout / ".env").read_text()
    secret = re.search(r"^POSTGRES_PASSWORD=(\w+)$", env, re.M)[1]
    assert len(secret) == 48 and stat.S_IMODE((checkout / ".env").stat().st_mode) == 0o600
    assert f"\nHOST_REPORTS_DIR={checkout / 'reports'}\n" in env
    assert f"\nFLOW_SECRETS_FILE={checkout / 'flow-secrets.env'}\n" in env
    assert f"\nAPP_UID={os.getuid() or 1000}\n" in env
    # Everything else as .env.example has it; and never written again.
    example = (checkout / ".env.example").read_text().splitlines()
    assert len(env.splitlines()) == len(example)
    (checkout / ".env").write_text("UI_PORT=9000\n")
    assert dotenv(checkout, "create").stdout == "" and (checkout / ".env").read_text() == "UI_PORT=9000\n"


def test_a_setting_is_the_shells_else_envs_else_the_documented_default(checkout):
    (checkout / ".env").write_text("UI_PORT=9000\nAPOLLO_PORT=\n# PUBLIC_PORT=1\n")
    assert dotenv(checkout, "get", "UI_PORT").stdout == "9000\n"
    assert dotenv(checkout, "get", "UI_PORT", UI_PORT="9100").stdout == "9100\n"
    assert dotenv(checkout, "get", "UI_PORT", UI_PORT="").stdout == "9000\n"  # empty: unset, as ${X:-}
    assert dotenv(checkout, "get", "APOLLO_PORT").stdout == "4200\n"  # .env.example's `# APOLLO_PORT=4200`
    assert dotenv(checkout, "get", "PUBLIC_PORT").stdout == "8443\n"  # a comment in .env is no setting
    assert dotenv(checkout, "get", "HOST_REPORTS_DIR", "--default", "reports").stdout == "reports\n"


def test_modes_are_recorded_and_taken_out_leaving_every_other_line(checkout):
    (checkout / ".env").write_text("# mine\nUI_PORT=9000\nUSERS_API_LIMIT=100\n")
    assert dotenv(checkout, "mode", "offline", "1").returncode == 0
    assert dotenv(checkout, "mode", "dask", "1", DASK_WORKERS="3").returncode == 0
    assert settings(checkout) == [
        "UI_PORT=9000",
        "RANDOMUSER_URL=http://users-api:8999/api/",
        "USERS_API_LIMIT=0",
        f"COMPOSE_FILE={OWN_DATABASE}",
        "DASK_ADDRESS=tcp://dask-scheduler:8786",
        "DASK_WORKERS=3",
        "COMPOSE_PROFILES=offline,dask",
    ]
    assert dotenv(checkout, "mode", "offline", "0").returncode == 0
    assert settings(checkout) == [
        "UI_PORT=9000",
        f"COMPOSE_FILE={OWN_DATABASE}",
        "DASK_ADDRESS=tcp://dask-scheduler:8786",
        "DASK_WORKERS=3",
        "COMPOSE_PROFILES=dask",
    ]
    assert (checkout / ".env").read_text().startswith("# mine\n")
    assert stat.S_IMODE((checkout / ".env").stat().st_mode) == 0o600
    refused = dotenv(checkout, "mode", "cloud", "1")
    assert refused.returncode == 2 and "invalid choice: 'cloud'" in refused.stderr


def test_the_services_of_modes_taken_out_are_listed_for_make_up_to_remove(checkout):
    (checkout / ".env").write_text("UI_PORT=9000\n")
    assert dotenv(checkout, "services-off").stdout.split() == ["users-api", "dask-scheduler", "dask-worker"]
    assert dotenv(checkout, "mode", "dask", "1").returncode == 0
    assert dotenv(checkout, "services-off").stdout.split() == ["users-api"]
    assert dotenv(checkout, "mode", "offline", "1").returncode == 0
    assert dotenv(checkout, "services-off").stdout == "\n"
    assert dotenv(checkout, "mode", "dask", "0").returncode == 0
    assert dotenv(checkout, "services-off").stdout.split() == ["dask-scheduler", "dask-worker"]


def fake_docker(tmp_path, answer: str):
    """A `docker` that answers `docker run ... caddy hash-password` with `answer` and writes
    down its arguments."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    (folder / "docker").write_text(
        f"#!/bin/sh\necho \"$@\" >> {tmp_path}/docker-argv\ncat >/dev/null\necho '{answer}'\n"
    )
    (folder / "docker").chmod(0o755)
    return f"{folder}:{os.environ['PATH']}"


def test_public_mode_records_its_address_and_makes_its_secrets_once(checkout, tmp_path):
    (checkout / ".env").write_text("UI_PORT=9000\n")
    path = fake_docker(tmp_path, "$2a$14$abcdefghijklmnopqrstuv")
    made = dotenv(checkout, "mode", "public", "1", PATH=path, PUBLIC_HOST="data.example.org")
    assert made.returncode == 0, made.stderr
    password = re.search(r"user prefect, password (\w+)\n", made.stdout)[1]
    lines = settings(checkout)
    assert lines[:7] == [
        "UI_PORT=9000",
        "PUBLIC_HOST=data.example.org",
        "PUBLIC_PORT=8443",
        "PUBLIC_BIND=0.0.0.0",
        "APOLLO_PUBLIC_URL=https://data.example.org:8443/graphql",
        "UI_PUBLIC_URL=https://data.example.org:8443",
        "COMPOSE_FILE=docker-compose.yml:docker-compose.database.yml:docker-compose.public.yml",
    ]
    assert re.fullmatch(r"API_TOKEN=\w{48}", lines[7])
    assert lines[8] == "UI_PASSWORD_HASH=JDJhJDE0JGFiY2RlZmdoaWprbG1ub3BxcnN0dXY="  # base64 of the hash
    assert (tmp_path / "docker-argv").read_text() == "run --rm -i caddy:2 caddy hash-password\n"
    assert password not in (tmp_path / "docker-argv").read_text()  # on stdin, not in argv

    # Again: the same secrets; off: the address goes, the secrets stay for next time.
    again = dotenv(checkout, "mode", "public", "1", PATH=path)
    assert again.stdout == "" and sorted(settings(checkout)) == sorted(lines)
    dotenv(checkout, "mode", "public", "0", PATH=path)
    assert settings(checkout) == ["UI_PORT=9000", f"COMPOSE_FILE={OWN_DATABASE}", *lines[7:]]


def test_a_proxy_image_that_cannot_hash_stops_public_mode_in_one_line(checkout, tmp_path):
    (checkout / ".env").write_text("")
    failed = dotenv(checkout, "mode", "public", "1", PATH=fake_docker(tmp_path, "exec format error"))
    assert failed.returncode == 1 and failed.stderr == "make up: caddy:2 could not hash the UI password\n"
    assert not [line for line in settings(checkout) if line.startswith("UI_PASSWORD_HASH")]


def test_prepare_names_the_database_in_use_and_keeps_public_mode(checkout, tmp_path):
    """An .env from before the database had a file of its own gets one; POSTGRES_HOST
    swaps the stack's own for the external one's, PUBLIC=1's port file staying."""
    (checkout / ".env").write_text(f"HOST_REPORTS_DIR={tmp_path / 'reports'}\n")
    dotenv(checkout, "prepare")
    assert settings(checkout)[-1] == f"COMPOSE_FILE={OWN_DATABASE}"
    with open(checkout / ".env", "a") as env:
        env.write("POSTGRES_HOST=db.office.internal\n")
    dotenv(checkout, "prepare")
    external = "docker-compose.yml:docker-compose.external-database.yml:docker-compose.override.yml"
    assert settings(checkout)[1:] == [f"COMPOSE_FILE={external}", "POSTGRES_HOST=db.office.internal"]
    dotenv(checkout, "mode", "public", "1", PATH=fake_docker(tmp_path, "$2a$14$abcdefghijklmnopqrstuv"))
    dotenv(checkout, "prepare")
    assert settings(checkout)[1] == f"COMPOSE_FILE={external.replace('override', 'public')}"


def test_prepare_makes_the_reports_folder_and_a_private_secrets_file_once(checkout, tmp_path):
    reports, secrets_file = tmp_path / "reports", tmp_path / "flow-secrets.env"
    (checkout / ".env").write_text(
        f"HOST_REPORTS_DIR={reports}\nFLOW_SECRETS_FILE={secrets_file}\nAPP_UID=1000\n"
    )
    assert dotenv(checkout, "prepare").returncode == 0
    assert reports.is_dir() and stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    if os.getuid() == 0:
        assert reports.stat().st_uid == 1000  # flow runs write there as the app user
    secrets_file.write_text("TOKEN=kept\n")
    dotenv(checkout, "prepare")
    assert secrets_file.read_text() == "TOKEN=kept\n"


def documented_defaults() -> dict:
    """NAME -> value of .env.example's `# NAME=value` lines: the defaults make reads."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(
        re.match(r"^# ([A-Z][A-Z0-9_]*)=(.*)$", line).groups()
        for line in lines
        if re.match(r"^# [A-Z_]+=", line)
    )


def code_defaults() -> dict:
    """NAME -> default of every text(), number() and choice() read in the settings modules,
    the default's expression evaluated in its module."""
    found = {}
    flows = ROOT / "flows"
    for path in [
        ROOT / "stack" / "settings.py",
        *sorted([*flows.glob("*/settings.py"), *flows.glob("*/schedules.py")]),
    ]:
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") in {"text", "number", "choice"}
                and isinstance(node.args[0], ast.Constant)
            ):
                name = node.args[0].value
                found[name] = eval(compile(ast.Expression(node.args[1]), str(path), "eval"), vars(module))
    return found


def test_each_default_is_the_same_where_the_code_compose_and_env_example_state_it():
    documented, code = documented_defaults(), code_defaults()
    assert {"PREFECT_PROJECT", "HTTP_TIMEOUT", "SERVER_KEEP_DAYS", "SCHEDULE_CRON"} <= set(code)
    for name, default in code.items():
        if name in documented:
            same = documented[name] == str(default) or (
                isinstance(default, (int, float)) and float(documented[name]) == default
            )
            assert same, f"{name}: .env.example says {documented[name]!r}, the code {default!r}"
    compose = "".join(
        path.read_text()
        for path in [*ROOT.glob("docker-compose*.yml"), ROOT / "agent" / "docker-compose.yml"]
    )
    for name, default in re.findall(r"\$\{([A-Z_]+):-([^}]+)\}", compose):
        if documented.get(name):  # an empty one is "none": compose may bind /dev/null for it
            assert documented[name] == default, (
                f"{name}: .env.example says {documented[name]!r}, compose {default!r}"
            )
