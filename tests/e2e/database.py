"""Hops of the server's database: housekeeping keeps it bounded, `make down` and `up` keep it,
backups restore it, `make clean` removes it, an external PostgreSQL replaces it.
"""

import base64
import gzip
import json
import os
import subprocess
import time
from pathlib import Path

import pendulum

from flows.server_housekeeping.tasks import TABLES
from tests.e2e.helpers import docker_bridge
from tests.e2e.runs import smoke
from tests.programs.e2e_api import FINISHED
from tests.programs.e2e_base import run
from tests.programs.e2e_stack import Stack, output
from tests.support import free_port

HOUSEKEEPING_WAVES = 2


WAVE_RUNS = 4


KEEP_SECONDS = 15  # keep_days of the hop's housekeeping runs, in seconds


def rows(stack: Stack, where: dict | None = None) -> dict:
    """Each table's row count; with `where`, each table's own filter (its rows of some runs)."""
    where = where or {}
    fields = " ".join(
        f"{table}: {table}_aggregate(where: ${table}) {{ aggregate {{ count }} }}" for table in TABLES
    )
    declared = ", ".join(f"${table}: {table}_bool_exp" for table in TABLES)
    data = stack.graphql(
        f"query({declared}) {{ {fields} }}", {table: where.get(table, {}) for table in TABLES}
    )
    return {table: data[table]["aggregate"]["count"] for table in TABLES}


def rows_of_runs(stack: Stack, run_ids: list) -> dict:
    """The filters selecting, in each table, the rows that belong to the runs `run_ids`."""
    task_run_ids = [
        task_run["id"]
        for task_run in stack.graphql(
            "query($ids: [uuid!]) { task_run(where: {flow_run_id: {_in: $ids}}) { id } }", {"ids": run_ids}
        )["task_run"]
    ]
    by_run = {"flow_run_id": {"_in": run_ids}}
    return {
        "flow_run": {"id": {"_in": run_ids}},
        "task_run": by_run,
        "flow_run_state": by_run,
        "task_run_state": {"task_run_id": {"_in": task_run_ids}},
        "log": by_run,
    }


def ended_runs_containers(stack: Stack) -> list:
    """The flow containers whose run has ended, or is gone (deleted once ended): what ended
    runs leave behind. A scheduled run's container may be running meanwhile."""
    run_ids = output(
        "docker", "ps", "-a", "--filter", "label=io.prefect.flow-run-id", "--format", '{{.Label "io.prefect.flow-run-id"}}'
    ).split()  # fmt: skip
    going = {
        run_id for run_id, run in stack.runs({"id": {"_in": run_ids}}).items() if run["state"] not in FINISHED
    }
    return [run_id for run_id in run_ids if run_id not in going]


def housekeeping(stack: Stack) -> str:
    """Runs keep coming, and Server housekeeping, keeping KEEP_SECONDS of ended runs, keeps the
    database bounded: after each wave of runs and its housekeeping, no run that ended before
    is left, nor any row of it in any table, the last housekeeping run's included. The runs
    leave no container, volume or network behind."""
    keep_days = KEEP_SECONDS / 86400
    volumes, networks = output("docker", "volume", "ls", "-q"), output("docker", "network", "ls", "-q")
    summaries = []
    for _ in range(HOUSEKEEPING_WAVES):
        stack.successful_runs(5, count=WAVE_RUNS)
        time.sleep(KEEP_SECONDS + 5)  # this wave's runs, and the last housekeeping, are older
        started = pendulum.now("UTC").subtract(seconds=KEEP_SECONDS)
        old = list(stack.runs({"end_time": {"_lt": started.isoformat()}}))
        old_rows = rows_of_runs(stack, old)
        before, of_old = rows(stack), rows(stack, old_rows)
        run_id = stack.create_run({"keep_days": keep_days}, flow_name="Server housekeeping")
        assert stack.wait_for_runs([run_id])[run_id]["state"] == "Success", stack.explain(run_id)
        left = stack.runs({"end_time": {"_lt": started.isoformat()}})
        assert not left, f"{len(left)} runs that ended over {KEEP_SECONDS} s before are left"
        left_rows = rows(stack, old_rows)
        assert not any(left_rows.values()), f"rows of deleted runs are left: {left_rows}"
        after = rows(stack)
        summaries.append(
            ", ".join(
                f"{table} {before[table]:,} ({of_old[table]:,} old) -> {after[table]:,}" for table in TABLES
            )
        )
    deadline = time.monotonic() + 30  # a container goes a moment after its run's last state
    while ended_runs_containers(stack) and time.monotonic() < deadline:
        time.sleep(1)
    assert not ended_runs_containers(stack), "containers of ended runs are left"
    assert output("docker", "volume", "ls", "-q") == volumes
    assert output("docker", "network", "ls", "-q") == networks
    return "rows before (of runs ended before the cutoff) -> after each: " + "; ".join(summaries)


def down_and_up(stack: Stack) -> str:
    """`make down` keeps the database; `make up` again reuses .env and the registration,
    and the offline demo recorded there."""
    env_before, flows_before = (stack.dir / ".env").read_bytes(), stack.flows()
    stack.make("down")
    assert not output("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.name}")
    output("docker", "volume", "inspect", f"{stack.name}_postgres-data")  # kept
    begun = time.monotonic()
    stack.make("up")  # the demo API stays: OFFLINE=1 is in .env
    took = time.monotonic() - begun
    assert (stack.dir / ".env").read_bytes() == env_before, ".env changed"
    flows_after = stack.flows()
    assert [flow["id"] for flow in flows_after] == [flow["id"] for flow in flows_before], (
        "make up registered a new version"
    )
    smoke(stack, 7)
    return f"{took:.0f} s to the URL line (warm); same .env, no new version, runs claimed again"


def stack_psql(stack: Stack, sql: str) -> str:
    """`sql`'s rows, `|` between columns, from the stack's own PostgreSQL."""
    return stack.compose(
        "exec", "-T", "postgres", "psql", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
        "-U", "prefect", "-d", "prefect_server", "-c", sql, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def backup_and_restore(stack: Stack) -> str:
    """`make backup` while the stack runs; a table dropped; `make restore` refuses without
    an answer, then with YES=1 stops the writers, brings the rows back and starts them."""

    def psql(sql: str) -> str:
        return stack_psql(stack, sql)

    psql("CREATE TABLE e2e_rows AS SELECT n AS id, 'run ' || n AS name FROM generate_series(1, 500) n")
    printed = stack.make("backup").stdout.strip()
    backup = stack.dir / printed.split(" (")[0]
    assert backup.parent.name == "backups" and backup.stat().st_mode & 0o777 == 0o600, printed
    assert gzip.decompress(backup.read_bytes()).count(b"e2e_rows") >= 2  # created and filled
    psql("DROP TABLE e2e_rows")
    refused = stack.make("restore", f"FILE={backup}", check=False)
    assert refused.returncode != 0 and "Nothing restored." in refused.stdout, refused.stdout
    assert psql("SELECT to_regclass('e2e_rows') IS NULL") == "t"
    restored = stack.make("restore", f"FILE={backup}", "YES=1")
    assert f"Restored {backup}." in restored.stdout, restored.stdout[-2000:]
    assert psql("SELECT count(*), max(name) FROM e2e_rows") == "500|run 99"
    for service in ("agent", "apollo", "towel"):
        stack.wait_healthy(service)
    smoke(stack, 6)
    half_done = restores_that_fail(stack, backup, psql)
    return f"{printed}; 500 rows back after DROP TABLE; writers restarted, a run claimed; {half_done}"


def restores_that_fail(stack: Stack, backup: Path, psql) -> str:
    """A restore cannot half-happen: a cut-short file is refused before anything stops; a
    dump that stops part-way (an object depending on a table it drops) and one that meets a
    lock held past RESTORE_LOCK_SECONDS leave the database as it was, and say why."""
    psql("DELETE FROM e2e_rows WHERE id > 400")  # the live database now differs from the dump
    started = output("docker", "inspect", "-f", "{{.State.StartedAt}}", stack.container("agent"))
    cut = backup.with_name("cut-short.sql.gz")
    cut.write_bytes(backup.read_bytes()[: len(backup.read_bytes()) // 2])
    refused = stack.make("restore", f"FILE={cut}", "YES=1", check=False)
    assert refused.returncode != 0 and "is not an intact gzip file" in refused.stderr, refused.stderr
    assert output("docker", "inspect", "-f", "{{.State.StartedAt}}", stack.container("agent")) == started

    psql("CREATE VIEW e2e_view AS SELECT * FROM e2e_rows")  # the dump's DROP TABLE fails on it
    failed = stack.make("restore", f"FILE={backup}", "YES=1", check=False)
    assert failed.returncode != 0 and "the database is as it was" in failed.stderr, failed.stderr
    assert (
        "cannot drop table" in failed.stderr
        and "e2e_rows because other objects depend on it" in failed.stderr
    )
    assert psql("SELECT count(*) FROM e2e_rows") == "400" and psql("SELECT count(*) FROM e2e_view") == "400"
    psql("DROP VIEW e2e_view")

    holder = subprocess.Popen(
        [
            *stack.compose_command,
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "prefect",
            "-d",
            "prefect_server",
            "-c",
            "BEGIN; LOCK TABLE e2e_rows IN ACCESS SHARE MODE; SELECT pg_sleep(60);",
        ],
        cwd=stack.dir,
        env={**stack.env, "COMPOSE_PROFILES": "offline,dask,public"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        begun = time.monotonic()
        blocked = stack.make("restore", f"FILE={backup}", "YES=1", check=False, RESTORE_LOCK_SECONDS="3")
        waited = time.monotonic() - begun
    finally:  # the session inside the container outlives its client: end it there
        psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
        )
        holder.kill()
        holder.wait()
    assert blocked.returncode != 0 and "lock timeout" in blocked.stderr, blocked.stderr
    assert psql("SELECT count(*) FROM e2e_rows") == "400"
    for service in ("agent", "apollo", "towel"):
        stack.wait_healthy(service)
    return (
        f"cut-short file refused, failed and lock-bound restores left 400 rows as they were ({waited:.0f} s)"
    )


# The tables of the server's schema, each with its rows: what a move must bring over whole.
TABLE_ROWS = """SELECT string_agg(table_name || '=' || (xpath('/row/c/text()', query_to_xml(
  format('SELECT count(*) AS c FROM public.%I', table_name), false, true, '')))[1]::text, ','
  ORDER BY table_name) FROM information_schema.tables
  WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"""


def another_major(stack: Stack) -> str:
    """POSTGRES_IMAGE of a later major version: `make up` refuses it on the old version's
    data in one line, before anything starts or changes; then the move docs/operations.md
    gives (make backup, make down, the volume removed, make up on the new version, make
    restore of the old version's dump) brings every table over, row for row, and runs go on.
    The stack stays on the new version for the hops after this one."""
    newer = stack.env.get("E2E_POSTGRES_NEXT_IMAGE", "postgres:15")
    old_major = int(stack_psql(stack, "SHOW server_version_num")) // 10000
    tables = stack_psql(stack, TABLE_ROWS)
    assert "e2e_rows=400" in tables, tables  # backup_and_restore's
    printed = stack.make("backup").stdout.strip()
    backup = stack.dir / printed.split(" (")[0]
    postgres = stack.container("postgres")
    started = output("docker", "inspect", "-f", "{{.State.StartedAt}}", postgres)

    refused = stack.make("up", check=False, POSTGRES_IMAGE=newer)
    said = [line for line in refused.stderr.splitlines() if line.startswith("make up: ")]
    assert refused.returncode != 0 and len(said) == 1, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert said[0].startswith(
        f"make up: the database volume holds PostgreSQL {old_major} data and POSTGRES_IMAGE ({newer}) is "
    ) and said[0].endswith("docs/operations.md#another-postgresql-version"), said[0]
    assert stack.container("postgres") == postgres  # not recreated, not restarted
    assert output("docker", "inspect", "-f", "{{.State.StartedAt}}", postgres) == started

    stack.make("down")
    run("docker", "volume", "rm", f"{stack.name}_postgres-data", stdout=subprocess.DEVNULL)
    stack.env["POSTGRES_IMAGE"] = newer
    stack.make("up")
    new_major = int(stack_psql(stack, "SHOW server_version_num")) // 10000
    assert new_major > old_major, (old_major, new_major)
    restored = stack.make("restore", f"FILE={backup}", "YES=1")
    assert f"Restored {backup}." in restored.stdout, restored.stdout[-2000:]
    assert stack_psql(stack, TABLE_ROWS) == tables
    for service in ("agent", "apollo", "towel"):
        stack.wait_healthy(service)
    smoke(stack, 8)
    return f"PostgreSQL {old_major} -> {new_major}: refused in one line first; every table moved whole ({tables})"


def clean(stack: Stack) -> str:
    result = stack.make("clean")
    assert "Removed the Postgres volume" in result.stdout, result.stdout[-1000:]
    gone = run("docker", "volume", "inspect", f"{stack.name}_postgres-data", check=False, capture_output=True)
    assert gone.returncode != 0, "make clean left the database volume"
    assert not output("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.name}")
    return "volume removed, no container left"


def external_database(stack: Stack) -> str:
    """POSTGRES_HOST: a PostgreSQL outside the compose project (Debian's, in the local image
    the stack's own runs here, started with `docker run`): `make up` starts no postgres
    service and gives Hasura and graphql its URL; `make backup` and `make restore` work
    against it through a client container; `make clean` leaves it alone and says so."""
    image = stack.env.get("E2E_POSTGRES_IMAGE", "postgres:11")  # the stack's own image
    host, port, password = docker_bridge(), free_port(), base64.b16encode(os.urandom(12)).decode().lower()
    name = f"{stack.name}-external-database"
    secret = {**os.environ, "POSTGRES_PASSWORD": password}  # through the environment, not argv
    run("docker", "run", "-d", "--rm", "--name", name, "-e", "POSTGRES_PASSWORD", "-e", "POSTGRES_USER=office",
        "-e", "POSTGRES_DB=prefect_office", "-p", f"{host}:{port}:5432", image, env=secret, stdout=subprocess.DEVNULL)  # fmt: skip

    def psql(sql: str) -> str:
        return output(
            "docker", "exec", name, "psql", "-tA", "-U", "office", "-d", "prefect_office", "-c", sql
        )

    try:
        deadline = time.monotonic() + 60
        while run(
            "docker", "exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "office", check=False
        ).returncode:
            assert time.monotonic() < deadline, "the external database did not start"
            time.sleep(1)
        stack.make("down")
        stack.env.update(
            POSTGRES_HOST=host,
            POSTGRES_PORT=str(port),
            POSTGRES_USER="office",
            POSTGRES_DB="prefect_office",
            POSTGRES_PASSWORD=password,
            POSTGRES_CLIENT_IMAGE=image,
            COMPOSE_FILE=stack.env["COMPOSE_FILE"]
            .replace("docker-compose.database.yml", "docker-compose.external-database.yml")
            .replace(":tests/programs/docker-compose.placeholders-postgres.yml", ""),
        )
        stack.make("up")
        project, service = (
            f"label=com.docker.compose.project={stack.name}",
            "label=com.docker.compose.service=postgres",
        )
        assert not output("docker", "ps", "-aq", "--filter", project, "--filter", service), "postgres started"
        url = f"postgresql://office:{password}@{host}:{port}/prefect_office?sslmode=prefer"
        for service, variable in (("hasura", "HASURA_GRAPHQL_DATABASE_URL"), ("graphql", "PREFECT_SERVER__DATABASE__CONNECTION_URL")):  # fmt: skip
            environment = output("docker", "inspect", "-f", "{{json .Config.Env}}", stack.container(service))
            assert f"{variable}={url}" in json.loads(environment), service
        smoke(stack, 4)

        psql("CREATE TABLE e2e_rows AS SELECT n AS id FROM generate_series(1, 300) n")
        printed = stack.make("backup").stdout.strip()
        backup = stack.dir / printed.split(" (")[0]
        assert gzip.decompress(backup.read_bytes()).count(b"e2e_rows") >= 2, printed
        psql("DROP TABLE e2e_rows")
        restored = stack.make("restore", f"FILE={backup}", "YES=1")
        assert f"Restored {backup}." in restored.stdout, restored.stdout[-2000:]
        assert psql("SELECT count(*) FROM e2e_rows") == "300"
        cleaned = stack.make("clean").stdout
        assert f"Left the external database at {host} alone" in cleaned, cleaned[-1000:]
        assert psql("SELECT count(*) FROM e2e_rows") == "300"  # untouched
    finally:
        run(
            "docker", "rm", "--force", name, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    return f"no postgres service; Hasura and graphql on {host}:{port}; 300 rows backed up and restored; kept by make clean"
