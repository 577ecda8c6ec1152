"""`.env` through the Makefile (scripts/stack.py, scripts/dotenv.py): written once with
fresh secrets, a bad mode refused before anything is written, and each default the same
wherever it is stated. The rules themselves: tests/unit/scripts/."""

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
    for name in ("Makefile", ".env.example", "scripts", "stack", "flows", "agent/docker-compose.yml",
                 *(path.name for path in ROOT.glob("docker-compose*.yml"))):  # fmt: skip
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, folder / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy(ROOT / name, folder / name)
    return folder


def make(checkout, *args):
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=checkout,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )


def test_make_writes_env_once_private_with_fresh_secrets_and_the_checkouts_paths(checkout):
    made = make(checkout, ".env")
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
    assert make(checkout, ".env").stdout == "make: '.env' is up to date.\n"
    assert (checkout / ".env").read_text() == "UI_PORT=9000\n"


def test_make_up_with_a_bad_mode_names_it_and_records_nothing(checkout):
    """Every mode given is checked before any is recorded; no compose command runs."""
    assert make(checkout, ".env").returncode == 0
    written = (checkout / ".env").read_text()
    refused = make(checkout, "up", "OFFLINE=1", "PUBLIC=maybe", "DASK=2", "COMPOSE=/bin/false")
    assert refused.returncode != 0
    assert refused.stderr.splitlines()[0] == (
        "make up: DASK must be 0 or 1, got '2'; PUBLIC must be 0 or 1, got 'maybe'"
    )
    assert (checkout / ".env").read_text() == written and not (checkout / "reports").exists()


def fake_compose(tmp_path) -> str:
    """A compose command that writes down that it ran."""
    fake = tmp_path / "fake-compose"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/compose-ran\n')
    fake.chmod(0o755)
    return str(fake)


def test_bad_settings_stop_make_up_register_and_agent_before_anything_runs(checkout, tmp_path):
    assert make(checkout, ".env").returncode == 0
    with open(checkout / ".env", "a") as env:
        env.write("LATE_MINUTS=5\nNOTIFY_WEBHOOK_URL=not-a-url\n")
    written = (checkout / ".env").read_text()
    for command in ("check", "up", "register", "agent"):
        refused = make(checkout, command, "OFFLINE=1", f"COMPOSE={fake_compose(tmp_path)}")
        assert refused.returncode == 2, (command, refused.stderr)
        assert refused.stderr.splitlines()[:3] == [
            f"make {command if command != 'register' else 'check'}: 2 settings to mend in .env or the environment; nothing started:",
            "  LATE_MINUTS in .env is not a setting: did you mean LATE_MINUTES?",
            "  NOTIFY_WEBHOOK_URL='not-a-url' is not allowed: use an http:// or https:// address",
        ]
    assert not (tmp_path / "compose-ran").exists() and not (checkout / "reports").exists()
    assert (checkout / ".env").read_text() == written


def test_a_first_make_up_without_internet_says_what_to_do_before_anything_is_built(checkout, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(
        '#!/bin/sh\ncase "$1" in pull) echo "Error response from daemon: lookup registry-1.docker.io: no such host" >&2;; esac\nexit 1\n'
    )
    (bin_dir / "compose").write_text(
        f'#!/bin/sh\nif [ "$1" = config ]; then printf "services:\\n  hasura:\\n    image: hasura/graphql-engine:v1.3.3\\n"; '
        f'else echo "$@" >> {tmp_path}/compose-ran; fi\n'
    )
    for fake in bin_dir.iterdir():
        fake.chmod(0o755)
    refused = subprocess.run(
        ["make", "--no-print-directory", "up", "COMPOSE=compose"],
        cwd=checkout, capture_output=True, text=True, env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert refused.returncode != 0
    first, docker = refused.stderr.splitlines()[:2]
    assert first.startswith(
        "make up: cannot pull hasura/graphql-engine:v1.3.3 (the stack's compose files pin it): "
        "the first make up downloads the server's images"
    )
    assert first.endswith("Docker said:") and docker.endswith("no such host")
    assert not (tmp_path / "compose-ran").exists()  # nothing built or started


def test_a_setting_reads_as_compose_reads_it_through_make(checkout):
    (checkout / ".env").write_text("UI_PORT=9000\n")
    shown = subprocess.run(
        [sys.executable, "-m", "scripts.stack", "setting", "UI_PORT"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    assert shown.stdout == "9000\n"


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
