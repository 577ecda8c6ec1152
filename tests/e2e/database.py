"""Hops of the server's database: housekeeping keeps it bounded, `make down` and `up` keep it,
backups restore it, `make clean` removes it, an external PostgreSQL replaces it.
"""

import base64
import gzip
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pendulum
import pytest

from flows.server_housekeeping.tasks import TABLES
from scripts import dotenv
from scripts.upgrade_database import TABLE_ROWS, counted
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


def volume(stack: Stack, key: str) -> str:
    """The Docker name of one of the database's volumes (compose's <project>_<key>)."""
    return f"{stack.name}_{key}"


def volume_exists(stack: Stack, key: str) -> bool:
    return (
        run("docker", "volume", "inspect", volume(stack, key), check=False, capture_output=True).returncode
        == 0
    )


def upgrade_snapshot(stack: Stack) -> dict:
    """What a move must keep: each ended run's state, logs and artifacts; the flows; the
    schedule's switch (make upgrade-db counts every table's rows itself)."""
    ended = stack.graphql(
        "query($states: [String!]) { flow_run(where: {state: {_in: $states}}) { id state "
        "logs { id } task_runs { id } } }",
        {"states": sorted(FINISHED)},
    )["flow_run"]
    task_run_ids = [task_run["id"] for flow_run in ended for task_run in flow_run["task_runs"]]
    artifacts = stack.graphql(
        "query($ids: [uuid!]) { task_run_artifact(where: {task_run_id: {_in: $ids}}) { id } }",
        {"ids": task_run_ids},
    )["task_run_artifact"]
    return {
        "runs": {run["id"]: (run["state"], sorted(log["id"] for log in run["logs"])) for run in ended},
        "artifacts": sorted(artifact["id"] for artifact in artifacts),
        "flows": sorted(flow["id"] for flow in stack.flows()),
        "scheduled": stack.graphql(
            '{ flow(where: {name: {_eq: "Users report"}, archived: {_eq: false}}) { is_schedule_active } }'
        )["flow"],
    }


def kept(before: dict, after: dict) -> None:
    """Every ended run of `before` in `after`, as it was; the flows, artifacts, schedule too
    (runs made meanwhile by the schedule may be added)."""
    assert {run: after["runs"].get(run) for run in before["runs"]} == before["runs"]
    assert set(before["artifacts"]) <= set(after["artifacts"])
    assert after["flows"] == before["flows"] and after["scheduled"] == before["scheduled"] == [
        {"is_schedule_active": True}
    ]


def quiet_moment(stack: Stack) -> None:
    """Returns when no flow container runs and the minute is not near its end, when the
    e2e's every-minute schedule starts one: make upgrade-db refuses to move the database
    under a running flow (the hop checks that once, on purpose)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        running = output(
            "docker", "ps", "-q", "--filter", "label=io.prefect.flow-run-id", "--filter", f"network={stack.name}"
        )  # fmt: skip
        if not running and 10 <= time.time() % 60 <= 40:
            return
        time.sleep(1)
    raise AssertionError("a flow container kept running for 5 minutes")


def upgrade(stack: Stack, *args, check=True, **settings) -> tuple:
    """`make upgrade-db args` at a quiet moment; its result and seconds."""
    quiet_moment(stack)
    begun = time.monotonic()
    result = stack.make("upgrade-db", *args, check=check, **settings)
    return result, time.monotonic() - begun


def server_major(stack: Stack) -> int:
    return int(stack_psql(stack, "SHOW server_version_num")) // 10000


def upgrade_db(stack: Stack) -> str:
    """The stack on an older major version's data (the v1 stack starts on one, with every
    earlier hop's runs in it): `make up` with the default's version stops with one line
    naming `make upgrade-db`; make upgrade-db refuses while a flow container runs; a restore
    whose new server is killed half-way leaves the stack on its old volume, unchanged; then it
    moves every flow, run, log and artifact, the schedule still on, and a new run succeeds;
    UNDO=1 goes back; moved again, FINISH=1 removes the old volume."""
    old_image = dotenv.parse(stack.dir / ".env").get("POSTGRES_IMAGE", stack.postgres_image)
    old_major = server_major(stack)
    if old_image == stack.postgres_image:
        pytest.skip(f"this stack starts on the default's PostgreSQL {old_major}: the v1 stack starts older")
    new = {"POSTGRES_IMAGE": stack.postgres_image}
    env_before = (stack.dir / ".env").read_text()
    postgres = stack.container("postgres")
    started = output("docker", "inspect", "-f", "{{.State.StartedAt}}", postgres)

    refused = stack.make("up", check=False, **new)
    said = [line for line in refused.stderr.splitlines() if line.startswith("make up: ")]
    assert refused.returncode != 0 and len(said) == 1, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert said[0].startswith(
        f"make up: the database volume holds PostgreSQL {old_major} data and POSTGRES_IMAGE "
    )
    assert said[0].endswith(
        "with: make upgrade-db (a backup first; docs/operations.md#another-postgresql-version)"
    )
    assert output("docker", "inspect", "-f", "{{.State.StartedAt}}", postgres) == started

    # A flow run's container (as the DockerAgent labels them) running: refused, nothing changed.
    quiet_moment(stack)  # no other flow container meanwhile
    busy = output("docker", "run", "-d", "--rm", "--label", "io.prefect.flow-run-id=e2e-busy",
                  "--network", stack.name, stack.base_image, "sleep", "120")  # fmt: skip
    try:
        refused = stack.make("upgrade-db", check=False, **new)
    finally:
        run("docker", "rm", "--force", busy, stdout=subprocess.DEVNULL)
    assert (
        refused.returncode != 0
        and "make upgrade-db: flow runs are running (their containers: 1)" in refused.stderr
    ), refused.stderr
    assert stack.container("postgres") == postgres and (stack.dir / ".env").read_text() == env_before

    failed = killed_upgrade(stack, new, env_before)
    before = upgrade_snapshot(stack)
    moved, took = upgrade(stack, **new)
    assert "Every table's rows match" in moved.stdout, moved.stdout[-3000:]
    assert server_major(stack) > old_major
    assert dotenv.parse(stack.dir / ".env")["POSTGRES_VOLUME"] == "postgres-data-2"
    assert volume_exists(stack, "postgres-data")  # kept until FINISH=1
    kept(before, upgrade_snapshot(stack))
    smoke(stack, 4)

    undone, undo_took = upgrade(stack, "UNDO=1")
    assert server_major(stack) == old_major, undone.stdout[-2000:]
    assert not pg_version_in(stack, "postgres-data-2")
    recorded = dotenv.parse(stack.dir / ".env")
    assert (recorded["POSTGRES_VOLUME"], recorded["POSTGRES_IMAGE"]) == ("postgres-data", old_image)
    kept(before, upgrade_snapshot(stack))

    upgrade(stack, **new)
    finished = stack.make("upgrade-db", "FINISH=1")
    assert f"removed the old volume {volume(stack, 'postgres-data')}" in finished.stdout, finished.stdout
    assert not volume_exists(stack, "postgres-data") and not (stack.dir / ".upgrade-db.json").exists()
    assert server_major(stack) > old_major
    kept(before, upgrade_snapshot(stack))
    smoke(stack, 4)
    return (
        f"PostgreSQL {old_major} -> {server_major(stack)} in {took:.0f} s ({len(before['runs'])} ended runs, "
        f"{len(before['artifacts'])} artifacts kept); refused on a running flow; {failed}; UNDO=1 in {undo_took:.0f} s, FINISH=1"
    )


def pg_version_in(stack: Stack, key: str) -> str:
    """The PG_VERSION of a database volume, read by a throwaway container; empty where the
    volume holds no database or is gone."""
    if not volume_exists(stack, key):
        return ""
    return output("docker", "run", "--rm", "-v", f"{volume(stack, key)}:/data", stack.base_image,
                  "sh", "-c", "cat /data/PG_VERSION 2>/dev/null || true")  # fmt: skip


BULK_ROWS = 500_000  # about 50 MB: a few seconds of COPY to be caught in


def kill_while_copying(stack: Stack, table: str) -> threading.Thread:
    """Kills the new cluster's container (on the other volume) once the restore copies
    `table`'s rows, as an out-of-memory kill or a host's hiccup would, half-way."""

    def watch() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            new = output("docker", "ps", "-q", "--filter", f"volume={volume(stack, 'postgres-data-2')}")
            copying = new and run(
                "docker", "exec", new, "psql", "-U", "prefect", "-d", "prefect_server", "-tAc",
                f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY public.{table} %'",
                check=False, capture_output=True, text=True,
            ).stdout.strip()  # fmt: skip
            if copying == "1":
                run("docker", "kill", new, check=False, stdout=subprocess.DEVNULL)
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def killed_upgrade(stack: Stack, new: dict, env_before: str) -> str:
    """The new cluster killed half-way through the restore: make upgrade-db says so in one
    line and leaves the stack on its old volume and version, rows as they were, the
    half-made cluster gone, .env unchanged."""
    stack_psql(stack, f"CREATE TABLE e2e_bulk AS SELECT n, md5(n::text) || md5((n + 1)::text) AS filler "
                      f"FROM generate_series(1, {BULK_ROWS}) n")  # fmt: skip
    tables = stack_psql(stack, TABLE_ROWS)
    major = server_major(stack)
    watcher = kill_while_copying(stack, "e2e_bulk")
    failed, _ = upgrade(stack, check=False, **new)
    watcher.join(timeout=1)
    assert not watcher.is_alive(), "the restore never copied e2e_bulk"
    said = [line for line in failed.stderr.splitlines() if line.startswith("make upgrade-db: ")]
    assert failed.returncode != 0 and len(said) == 1, failed.stdout[-2000:] + failed.stderr[-2000:]
    assert said[0].startswith("make upgrade-db: restoring backups/prefect-") and said[0].endswith(
        f"the stack is back on its old volume (postgres-data) and PostgreSQL {major}, unchanged, "
        "and the half-made cluster is removed"
    ), said[0]
    # Nothing lost: the stack ran on meanwhile (its schedule adds runs), so no table has fewer rows.
    after = counted(stack_psql(stack, TABLE_ROWS))
    assert server_major(stack) == major and after["public.e2e_bulk"] == BULK_ROWS
    assert {table: rows for table, rows in counted(tables).items() if after.get(table, -1) < rows} == {}
    assert not pg_version_in(stack, "postgres-data-2")
    assert (stack.dir / ".env").read_text() == env_before and not (stack.dir / ".upgrade-db.json").exists()
    for service in ("agent", "apollo", "towel"):
        stack.wait_healthy(service)
    stack_psql(stack, "DROP TABLE e2e_bulk")
    return f"killed half-way ({said[0].split('failed: ', 1)[1].split(';')[0]}): back on {major}, unchanged"


def clean(stack: Stack) -> str:
    result = stack.make("clean")
    assert "Removed the Postgres volume" in result.stdout, result.stdout[-1000:]
    assert not volume_exists(stack, "postgres-data") and not volume_exists(stack, "postgres-data-2"), (
        "make clean left a database volume"
    )
    assert not output("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.name}")
    return "volume removed, no container left"


def external_database(stack: Stack) -> str:
    """POSTGRES_HOST: a PostgreSQL outside the compose project (Debian's, in the local image
    the stack's own runs here, started with `docker run`): `make up` starts no postgres
    service and gives Hasura and graphql its URL; `make backup` and `make restore` work
    against it through a client container; `make clean` leaves it alone and says so."""
    image = stack.postgres_image  # the default's version
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
