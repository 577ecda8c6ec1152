"""`.env` as scripts/dotenv.py handles it for the Makefile's commands: written once with
fresh secrets, read as Compose reads it, modes recorded and taken out. In-process, in a
checkout of its own."""

import os
import re
import shutil
import stat

import pytest

from scripts import dotenv
from tests.support import ROOT

OWN_DATABASE = "docker-compose.yml:docker-compose.database.yml:docker-compose.override.yml"


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    folder = tmp_path / "checkout"
    folder.mkdir()
    shutil.copy(ROOT / ".env.example", folder / ".env.example")
    monkeypatch.chdir(folder)
    for name in (
        "UI_PORT",
        "DASK_WORKERS",
        "PUBLIC_HOST",
        "POSTGRES_HOST",
        "COMPOSE_PROFILES",
        "COMPOSE_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    return folder


def settings(checkout) -> list:
    return [
        line for line in (checkout / ".env").read_text().splitlines() if line and not line.startswith("#")
    ]


def test_env_is_written_once_private_with_fresh_secrets_and_the_checkouts_paths(checkout, capsys):
    dotenv.create()
    assert capsys.readouterr().out == "Wrote .env with fresh secrets (private to you, ignored by git).\n"
    env = (checkout / ".env").read_text()
    assert len(re.search(r"^POSTGRES_PASSWORD=(\w+)$", env, re.M)[1]) == 48
    assert len(re.search(r"^API_TOKEN=(\w+)$", env, re.M)[1]) == 48
    assert stat.S_IMODE((checkout / ".env").stat().st_mode) == 0o600
    assert f"\nHOST_REPORTS_DIR={checkout / 'reports'}\n" in env
    assert f"\nFLOW_SECRETS_FILE={checkout / 'flow-secrets.env'}\n" in env
    assert f"\nAPP_UID={os.getuid() or 1000}\n" in env
    assert len(env.splitlines()) == len((checkout / ".env.example").read_text().splitlines())
    (checkout / ".env").write_text("UI_PORT=9000\n")
    dotenv.create()
    assert capsys.readouterr().out == "" and (checkout / ".env").read_text() == "UI_PORT=9000\n"


def test_a_setting_is_the_shells_else_envs_else_the_documented_default(checkout, monkeypatch):
    (checkout / ".env").write_text("UI_PORT=9000\nAPOLLO_PORT=\n# PUBLIC_PORT=1\n")
    assert dotenv.get("UI_PORT") == "9000"
    monkeypatch.setenv("UI_PORT", "9100")
    assert dotenv.get("UI_PORT") == "9100"
    monkeypatch.setenv("UI_PORT", "")  # empty: unset, as ${X:-}
    assert dotenv.get("UI_PORT") == "9000"
    assert dotenv.get("APOLLO_PORT") == "4200"  # .env.example's `# APOLLO_PORT=4200`
    assert dotenv.get("PUBLIC_PORT") == "8443"  # a comment in .env is no setting
    assert dotenv.get("HOST_REPORTS_DIR", "reports") == "reports"


def test_modes_are_recorded_and_taken_out_leaving_every_other_line(checkout, monkeypatch):
    (checkout / ".env").write_text("# mine\nUI_PORT=9000\nUSERS_API_LIMIT=100\n")
    dotenv.record_mode("offline", True)
    monkeypatch.setenv("DASK_WORKERS", "3")
    dotenv.record_mode("dask", True)
    assert settings(checkout) == [
        "UI_PORT=9000", "RANDOMUSER_URL=http://users-api:8999/api/", "USERS_API_LIMIT=0",
        f"COMPOSE_FILE={OWN_DATABASE}", "DASK_ADDRESS=tcp://dask-scheduler:8786", "DASK_WORKERS=3",
        "COMPOSE_PROFILES=offline,dask",
    ]  # fmt: skip
    dotenv.record_mode("offline", False)
    assert settings(checkout) == [
        "UI_PORT=9000", f"COMPOSE_FILE={OWN_DATABASE}", "DASK_ADDRESS=tcp://dask-scheduler:8786",
        "DASK_WORKERS=3", "COMPOSE_PROFILES=dask",
    ]  # fmt: skip
    assert (checkout / ".env").read_text().startswith("# mine\n")
    assert stat.S_IMODE((checkout / ".env").stat().st_mode) == 0o600


def test_the_services_of_modes_taken_out_are_listed_for_make_up_to_remove(checkout):
    (checkout / ".env").write_text("UI_PORT=9000\n")
    assert dotenv.services_off() == ["users-api", "dask-scheduler", "dask-worker"]
    dotenv.record_mode("dask", True)
    assert dotenv.services_off() == ["users-api"]
    dotenv.record_mode("offline", True)
    assert dotenv.services_off() == []
    dotenv.record_mode("dask", False)
    assert dotenv.services_off() == ["dask-scheduler", "dask-worker"]


def test_public_mode_records_its_address_and_takes_it_out_again(checkout, monkeypatch):
    (checkout / ".env").write_text("UI_PORT=9000\nAPI_TOKEN=kept\n")
    monkeypatch.setenv("PUBLIC_HOST", "data.example.org")
    dotenv.record_mode("public", True)
    assert settings(checkout) == [
        "UI_PORT=9000", "API_TOKEN=kept", "PUBLIC_HOST=data.example.org", "PUBLIC_PORT=8443", "PUBLIC_BIND=0.0.0.0",
        "APOLLO_PUBLIC_URL=https://data.example.org:8443/graphql", "UI_PUBLIC_URL=https://data.example.org:8443",
        "COMPOSE_FILE=docker-compose.yml:docker-compose.database.yml:docker-compose.public.yml",
    ]  # fmt: skip
    dotenv.record_mode("public", False)
    assert settings(checkout) == ["UI_PORT=9000", "API_TOKEN=kept", f"COMPOSE_FILE={OWN_DATABASE}"]


def test_an_env_from_before_gets_an_api_token_once(checkout, tmp_path):
    (checkout / ".env").write_text(f"HOST_REPORTS_DIR={tmp_path / 'reports'}\nAPI_TOKEN=\n")
    dotenv.prepare()
    token = dotenv.parse(checkout / ".env")["API_TOKEN"]
    assert re.fullmatch(r"\w{48}", token)
    dotenv.prepare()
    assert dotenv.parse(checkout / ".env")["API_TOKEN"] == token


def test_prepare_names_the_database_in_use_and_keeps_public_mode(checkout, tmp_path):
    """An .env from before the database had a file of its own gets one; POSTGRES_HOST
    swaps the stack's own for the external one's, PUBLIC=1's port file staying."""
    (checkout / ".env").write_text(f"API_TOKEN=t\nHOST_REPORTS_DIR={tmp_path / 'reports'}\n")
    dotenv.prepare()
    assert settings(checkout)[-1] == f"COMPOSE_FILE={OWN_DATABASE}"
    with open(checkout / ".env", "a") as env:
        env.write("POSTGRES_HOST=db.office.internal\n")
    dotenv.prepare()
    external = "docker-compose.yml:docker-compose.external-database.yml:docker-compose.override.yml"
    assert settings(checkout)[2:] == [f"COMPOSE_FILE={external}", "POSTGRES_HOST=db.office.internal"]
    dotenv.record_mode("public", True)
    dotenv.prepare()
    assert settings(checkout)[2] == f"COMPOSE_FILE={external.replace('override', 'public')}"


def test_prepare_makes_the_reports_folder_and_a_private_secrets_file_once(checkout, tmp_path):
    reports, secrets_file = tmp_path / "reports", tmp_path / "flow-secrets.env"
    (checkout / ".env").write_text(
        f"HOST_REPORTS_DIR={reports}\nFLOW_SECRETS_FILE={secrets_file}\nAPP_UID=1000\n"
    )
    dotenv.prepare()
    assert reports.is_dir() and stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    if os.getuid() == 0:
        assert reports.stat().st_uid == 1000  # flow runs write there as the app user
        ledger = reports / ".users-api-budget.json"  # as a root `make run` leaves it
        ledger.write_text("{}")
        os.chown(ledger, 0, 0)
        dotenv.prepare()
        assert ledger.stat().st_uid == 1000
    secrets_file.write_text("TOKEN=kept\n")
    dotenv.prepare()
    assert secrets_file.read_text() == "TOKEN=kept\n"
