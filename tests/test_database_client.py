"""scripts/database-client.sh, which `make backup` and `make restore` run pg_dump and psql
through: in the stack's own postgres container, or for an external database in a client
container with the password in its environment, never on a command line. A fake `docker`
and compose command write down what they were asked."""

import gzip
import os
import shutil
import subprocess

from tests.support import ROOT

# What database-client.sh reads settings through.
SCRIPTS = ("scripts/__init__.py", "scripts/dotenv.py", "scripts/stack.py")


def client(tmp_path, env_lines, *args):
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True, exist_ok=True)
    for name in (".env.example", *SCRIPTS, "scripts/database-client.sh"):
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


DUMP = """--
-- PostgreSQL database dump
--

\\restrict Vf1kx

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET lock_timeout = 0;
CREATE TABLE public.flow_run (id uuid);

--
-- PostgreSQL database dump complete
--

\\unrestrict Vf1kx

"""


def restore(tmp_path, dump: bytes, answer=None):
    """scripts/restore-database.sh against a fake compose command: a server of PostgreSQL
    15 that takes whatever psql is given, and writes down what it was asked."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True, exist_ok=True)
    for name in (
        ".env.example",
        *SCRIPTS,
        "scripts/database-client.sh",
        "scripts/restore-database.sh",
    ):
        shutil.copy(ROOT / name, checkout / name)
    (checkout / ".env").write_text("POSTGRES_PASSWORD=x\n")
    (tmp_path / "fake-compose").write_text(
        f'#!/bin/sh\necho "$*" >> {tmp_path}/asked\n'
        'case "$*" in *server_version_num*) echo 150018;; *single-transaction*) cat > '
        f"{tmp_path}/applied;; esac\n"
    )
    (tmp_path / "fake-compose").chmod(0o755)
    (tmp_path / "backup.sql.gz").write_bytes(dump)
    return subprocess.run(
        [
            "sh",
            "scripts/restore-database.sh",
            str(tmp_path / "backup.sql.gz"),
            str(tmp_path / "fake-compose"),
        ],
        cwd=checkout,
        env={"PATH": os.environ["PATH"], "RESTORE_LOCK_SECONDS": "7", **({} if answer else {"YES": "1"})},
        input=answer,
        capture_output=True,
        text=True,
    )


def test_a_whole_dump_of_a_patched_pg_dump_is_restored_with_its_lock_wait_bounded(tmp_path):
    """pg_dump from August 2025 on (15.14, 16.10, 17.6) ends with `\\unrestrict`, after its
    "dump complete" line."""
    result = restore(tmp_path, gzip.compress(DUMP.encode()))
    assert result.returncode == 0 and result.stdout.startswith("Restored "), result.stderr
    applied = (tmp_path / "applied").read_text()
    assert "SET lock_timeout = '7s';" in applied and "SET lock_timeout = 0;" not in applied
    asked = (tmp_path / "asked").read_text().splitlines()
    assert (
        asked[1] == "stop agent door towel apollo graphql hasura"
        and asked[-1] == "up -d agent door towel apollo graphql hasura"
    )


def test_a_cut_short_or_newer_version_dump_is_refused_before_anything_stops(tmp_path):
    cut = DUMP[: DUMP.index("-- PostgreSQL database dump complete")]
    refused = restore(tmp_path, gzip.compress(cut.encode()))
    assert refused.returncode == 1 and "does not end as a whole pg_dump does (cut short?)" in refused.stderr
    newer = DUMP.replace("database version 15.18", "database version 16.4")
    refused = restore(tmp_path, gzip.compress(newer.encode()))
    assert (
        refused.returncode == 1
        and (
            "was dumped from PostgreSQL 16, newer than the server's 15: a dump restores into the same "
            "major version or a newer one: nothing restored, nothing stopped"
        )
        in refused.stderr
    )
    assert "stop" not in (tmp_path / "asked").read_text()  # only the version was asked


def test_a_dump_of_an_older_major_version_is_restored(tmp_path):
    """A dump of the stack's old PostgreSQL 11 goes into a 15 (docs/operations.md)."""
    older = DUMP.replace("database version 15.18", "database version 11.22")
    result = restore(tmp_path, gzip.compress(older.encode()))
    assert result.returncode == 0 and result.stdout.startswith("Restored "), result.stderr


def test_a_file_that_is_no_dump_is_refused_before_anyone_is_asked(tmp_path):
    """`make restore FILE=README.md`: no question, nothing stopped."""
    refused = restore(tmp_path, b"# Users report\n", answer="y\n")
    assert refused.returncode == 1 and "Replace every flow" not in refused.stdout
    assert "is not an intact gzip file" in refused.stderr
    assert not (tmp_path / "asked").exists()  # not even the server was asked


def test_a_whole_dump_is_restored_only_on_yes(tmp_path):
    kept = restore(tmp_path, gzip.compress(DUMP.encode()), answer="n\n")
    assert kept.returncode == 1 and kept.stdout.endswith("[y/N] Nothing restored.\n")
    assert "stop" not in (tmp_path / "asked").read_text()
    done = restore(tmp_path, gzip.compress(DUMP.encode()), answer="y\n")
    assert done.returncode == 0 and "Restored " in done.stdout, done.stderr
