"""scripts/database-client.sh, which `make backup` and `make restore` run pg_dump and psql
through: in the stack's own postgres container, or for an external database in a client
container with the password in its environment, never on a command line. A fake `docker`
and compose command write down what they were asked."""

import os
import shutil
import subprocess

from tests.support import ROOT


def client(tmp_path, env_lines, *args):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True, exist_ok=True)
    for name in (".env.example", "scripts/dotenv.py", "scripts/database-client.sh"):
        shutil.copy(ROOT / name, checkout / name)
    (checkout / ".env").write_text("".join(f"{line}\n" for line in env_lines))
    fakes = tmp_path / "bin"
    fakes.mkdir(exist_ok=True)
    for fake in ("docker", "fake-compose"):
        (fakes / fake).write_text(
            f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" > {tmp_path}/argv\necho "PGPASSWORD=${{PGPASSWORD:-}}" > {tmp_path}/env\n'
        )
        (fakes / fake).chmod(0o755)
    result = subprocess.run(
        ["sh", "scripts/database-client.sh", *args],
        cwd=checkout,
        env={"PATH": f"{fakes}:{os.environ['PATH']}", "COMPOSE": "fake-compose"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    return [os.path.basename(argv[0]), *argv[1:]], (tmp_path / "env").read_text().strip()


def test_the_stacks_own_database_is_reached_in_its_postgres_container(tmp_path):
    argv, env = client(tmp_path, ["POSTGRES_PASSWORD=own-secret"], "psql", "-c", "SELECT 'a b'")
    own = "fake-compose exec -T postgres psql -U prefect -d prefect_server".split()
    assert argv == [*own, "-c", "SELECT 'a b'"]
    assert env == "PGPASSWORD="


def test_an_external_database_is_reached_by_a_client_container_with_the_password_in_its_environment(tmp_path):
    settings = [
        "POSTGRES_PASSWORD=external-secret",
        "POSTGRES_HOST=db.office.internal",
        "POSTGRES_PORT=6432",
        "POSTGRES_USER=office",
        "POSTGRES_DB=prefect_office",
        "POSTGRES_SSLMODE=require",
        "POSTGRES_CLIENT_IMAGE=postgres:15",
    ]
    argv, env = client(tmp_path, settings, "pg_dump", "--clean", "--if-exists")
    assert argv == [
        "docker", "run", "--rm", "-i", "--network", "host", "-e", "PGPASSWORD", "-e", "PGSSLMODE", "postgres:15",
        "pg_dump", "-h", "db.office.internal", "-p", "6432", "-U", "office", "-d", "prefect_office",
        "--clean", "--if-exists",
    ]  # fmt: skip
    assert env == "PGPASSWORD=external-secret" and "external-secret" not in argv
    # Only the host set: the documented defaults.
    argv, _ = client(tmp_path, ["POSTGRES_PASSWORD=x", "POSTGRES_HOST=db"], "psql")
    assert argv[11:] == ["psql", "-h", "db", "-p", "5432", "-U", "prefect", "-d", "prefect_server"]
    assert argv[10] == "postgres:16"
