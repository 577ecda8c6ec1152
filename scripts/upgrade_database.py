"""`make upgrade-db`: the stack's own database moved to POSTGRES_IMAGE's major version, which
cannot start on the old one's data (docs/operations.md#another-postgresql-version).

Before anything changes it refuses an external database (printing the steps instead), runs
whose containers are running, and a disk without room. Then: the writers stopped, each
table's rows counted, a backup by the old version's own pg_dump (`make backup`) checked as
`make restore` checks one, a new cluster made in the other of the database's two volumes
(POSTGRES_VOLUME), the backup restored into it in one transaction, the rows counted again;
only when every count matches does the stack switch to it (POSTGRES_VOLUME in .env) and
start. Anything failing on the way puts the stack back on its old volume and version,
unchanged, and removes the half-made cluster. The old volume stays until FINISH=1 removes
it; UNDO=1 goes back to it. Standard library only, as scripts/stack.py.
"""

import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from scripts import dotenv
from scripts.stack import POSTGRES_PROBE, StackError, as_make_says, postgres_majors, up

SLOTS = ("postgres-data", "postgres-data-2")
# What UNDO=1 and FINISH=1 need, from a finished upgrade until FINISH=1.
STATE = Path(".upgrade-db.json")
# The services that write to the database, stopped while it moves (as make restore stops them).
WRITERS = ("agent", "door", "towel", "apollo", "graphql", "hasura")
# The rows of every table outside PostgreSQL's own schemas: the server's, Hasura's catalog.
TABLE_ROWS = """SELECT string_agg(format('%s.%s=%s', table_schema, table_name,
  (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name),
  false, true, '')))[1]::text), ' ' ORDER BY table_schema, table_name)
  FROM information_schema.tables WHERE table_type = 'BASE TABLE'
  AND table_schema NOT IN ('pg_catalog', 'information_schema')"""
# The new cluster: about the old one's size (a restore writes tables and indexes afresh),
# plus its first WAL segments; the backup: gzip-compressed SQL, well under half the size.
WAL_BYTES = 64 * 2**20
MiB = 2**20


def other_slot(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


def room_refusal(cluster_bytes: int, volume_free: int, backup_bytes: int, backups_free: int) -> Optional[str]:
    """Whether the disks hold the backup (backups/) and the new cluster (Docker's volumes)."""
    need_volume = cluster_bytes + WAL_BYTES
    short = []
    if volume_free < need_volume:
        short.append(
            f"{need_volume // MiB} MiB for the new cluster on Docker's disk ({volume_free // MiB} MiB free)"
        )
    if backups_free < backup_bytes:
        short.append(f"{backup_bytes // MiB} MiB for the backup in backups/ ({backups_free // MiB} MiB free)")
    if not short:
        return None
    return f"not enough disk: it needs {' and '.join(short)}; nothing changed"


def counted(said: str) -> Dict[str, int]:
    """TABLE_ROWS's answer as table -> rows."""
    return {name: int(rows) for name, rows in (pair.split("=") for pair in said.split())}


def count_differences(before: Dict[str, int], after: Dict[str, int]) -> List[str]:
    """Each table whose rows differ between the old cluster and the new, or that one lacks."""
    return [
        f"{table}: {before.get(table, 'none')} before, {after.get(table, 'none')} after"
        for table in sorted(set(before) | set(after))
        if before.get(table) != after.get(table)
    ]


def external_steps() -> str:
    return (
        "POSTGRES_HOST names an external database: its version is its own to upgrade, not the "
        "stack's. The steps: make backup (a dump by a pg_dump as new as the server: "
        "POSTGRES_CLIENT_IMAGE); make down; upgrade or replace the server (pg_upgrade, or a new "
        "one of the new version); point POSTGRES_HOST and friends at it in .env; make up; if it "
        "is a new, empty one, make restore FILE=<the backup> YES=1"
    )


class Upgrade:
    """The steps, on the stack's compose project."""

    def __init__(self, compose: list):
        self.compose = compose

    def compose_run(self, *args, env: Optional[dict] = None, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self.compose, *args],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            **kwargs,
        )

    def checked(self, *args, env: Optional[dict] = None, what: str, **kwargs) -> str:
        done = self.compose_run(*args, env=env, **kwargs)
        if done.returncode != 0:
            raise StackError(f"{what} failed: {(done.stderr.strip().splitlines() or ['(no message)'])[-1]}")
        return done.stdout

    def psql(self, sql: str) -> str:
        return self.checked(
            "exec", "-T", "postgres", "psql", "-X", "-tA", "-U", "prefect", "-d", "prefect_server", "-c", sql,
            what="asking the database",
        ).strip()  # fmt: skip

    def container(self, service: str) -> Optional[str]:
        ids = self.compose_run("ps", "-a", "-q", service).stdout.split()
        return ids[0] if ids else None

    def inspect(self, container: str, template: str) -> str:
        return subprocess.run(
            ["docker", "inspect", "-f", template, container], capture_output=True, text=True
        ).stdout.strip()

    def running_services(self) -> List[str]:
        return self.compose_run("ps", "--services", "--filter", "status=running").stdout.split()

    def majors(self, slot: str, image: str) -> tuple:
        probe = self.compose_run(
            "run", "--rm", "--no-deps", "-T", "--entrypoint", "sh", "postgres", "-c", POSTGRES_PROBE,
            env={"POSTGRES_VOLUME": slot, "POSTGRES_IMAGE": image},
        )  # fmt: skip
        if probe.returncode != 0:
            raise StackError(
                f"could not read the database volume {slot} with {image}: {probe.stderr.strip()[-300:]}"
            )
        return postgres_majors(probe.stdout)

    def postgres_on(self, slot: str, image: str) -> str:
        """The postgres service on `slot` with `image`, healthy; its container."""
        self.checked("up", "-d", "--no-deps", "postgres", env={"POSTGRES_VOLUME": slot, "POSTGRES_IMAGE": image},
                     what=f"starting PostgreSQL ({image}) on {slot}")  # fmt: skip
        container = self.container("postgres")
        deadline = time.monotonic() + float(dotenv.get("START_SECONDS"))
        while self.inspect(container, "{{.State.Health.Status}}") != "healthy":
            if time.monotonic() > deadline or self.inspect(container, "{{.State.Status}}") != "running":
                raise StackError(f"PostgreSQL ({image}) on {slot} did not become healthy (make logs)")
            time.sleep(1)
        return container

    def volume_of(self, container: str) -> str:
        """The Docker name of the volume a postgres container keeps its data in."""
        template = '{{range .Mounts}}{{if eq .Destination "/var/lib/postgresql/data"}}{{.Name}}{{end}}{{end}}'
        return self.inspect(container, template)

    def flow_runs_running(self) -> int:
        return len(
            subprocess.run(
                ["docker", "ps", "-q", "--filter", "label=io.prefect.flow-run-id",
                 "--filter", f"network={dotenv.get('PREFECT_NETWORK')}"],
                capture_output=True, text=True,
            ).stdout.split()
        )  # fmt: skip

    def refuse_running_runs(self) -> None:
        running = self.flow_runs_running()
        if running:
            raise StackError(
                f"flow runs are running (their containers: {running}): wait for them to end (or cancel "
                f"them in the UI), then run make upgrade-db again; nothing changed",
                code=2,
            )

    def backup(self) -> Path:
        """`make backup` of the database as it runs now, checked whole as make restore checks."""
        made = subprocess.run(
            ["make", "--no-print-directory", "backup", f"COMPOSE={' '.join(self.compose)}"],
            capture_output=True, text=True,
        )  # fmt: skip
        if made.returncode != 0:
            raise StackError(f"the backup failed: {made.stderr.strip()[-300:]}")
        file = Path(made.stdout.strip().splitlines()[-1].split(" (")[0])
        check = subprocess.run(
            ["sh", "scripts/restore-database.sh", str(file), *self.compose],
            env={**os.environ, "CHECK_ONLY": "1"}, capture_output=True, text=True,
        )  # fmt: skip
        if check.returncode != 0:
            raise StackError(f"the backup {file} is not whole: {check.stderr.strip()}")
        return file

    def restore(self, file: Path) -> None:
        """`file` into the new cluster as one transaction: all of it or nothing."""
        # psql's notices (the dump's DROP ... IF EXISTS on an empty database) go to a file: a
        # pipe left unread would fill and stall it.
        with tempfile.TemporaryFile() as notices:
            restoring = subprocess.Popen(
                [*self.compose, "exec", "-T", "postgres", "psql", "-X", "-q", "--single-transaction",
                 "-v", "ON_ERROR_STOP=1", "-U", "prefect", "-d", "prefect_server"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=notices,
            )  # fmt: skip
            try:
                with gzip.open(file) as dump:
                    while chunk := dump.read(MiB):
                        restoring.stdin.write(chunk)
                restoring.stdin.close()
            except BrokenPipeError:  # psql stopped at the first error: its words say which
                pass
            status = restoring.wait()
            if status == 0:
                return
            notices.seek(0)
            said = notices.read().decode(errors="replace")
        lines = [line.strip() for line in said.splitlines() if line.strip()]
        lines = lines or [f"psql ended with status {status} and no message (the new server stopped?)"]
        errors = [line for line in lines if "ERROR" in line or "FATAL" in line or "PANIC" in line]
        raise StackError(f"restoring {file} into the new cluster failed: {(errors or lines)[-1]}")

    def upgrade(self) -> None:
        if dotenv.get("POSTGRES_HOST"):
            raise StackError(external_steps(), code=2)
        if STATE.exists():
            raise StackError(
                "the last upgrade is not finished: make upgrade-db FINISH=1 keeps it (and removes "
                "the old volume), make upgrade-db UNDO=1 goes back to the old version",
                code=2,
            )
        slot, target = dotenv.get("POSTGRES_VOLUME"), dotenv.get("POSTGRES_IMAGE")
        new_slot = other_slot(slot)
        data, server = self.majors(slot, target)
        if data is None:
            raise StackError(
                f"the database volume {slot} is empty: make up starts a new database on {target}", code=2
            )
        if server is None:
            raise StackError(
                f"POSTGRES_IMAGE ({target}) has no PostgreSQL server to tell its version", code=2
            )
        if data == server:
            print(f"make upgrade-db: the database is already PostgreSQL {data} ({target}): nothing to do")
            return
        if data > server:
            raise StackError(
                f"the database is PostgreSQL {data}, newer than POSTGRES_IMAGE's {server}: it moves only "
                f"to a newer version (make upgrade-db UNDO=1 goes back after an upgrade)",
                code=2,
            )
        if self.majors(new_slot, target)[0] is not None:
            raise StackError(
                f"the other database volume ({new_slot}) holds a database already: remove it "
                f"(docker volume ls, docker volume rm) after checking it is not yours; nothing changed",
                code=2,
            )
        self.refuse_running_runs()
        running = self.running_services()
        old = self.container("postgres")
        old_image = os.environ.get("OLD_IMAGE") or (self.inspect(old, "{{.Config.Image}}") if old else "")
        if not old_image or self.majors(slot, old_image)[1] != data:
            old_image = f"postgres:{data}"  # the official image of the data's version
        self.postgres_on(slot, old_image)
        room = room_refusal(
            cluster_bytes=int(self.psql("SELECT sum(pg_database_size(oid)) FROM pg_database")),
            volume_free=self.volume_free_kib() * 1024,
            backup_bytes=int(self.psql("SELECT pg_database_size('prefect_server')")) // 2,
            backups_free=free_bytes(Path("backups")),
        )
        if room:
            self.put_back(slot, old_image, running)
            raise StackError(room, code=2)

        # Compose names a volume <project>_<key>.
        old_volume = self.volume_of(self.container("postgres"))
        new_volume = old_volume[: -len(slot)] + new_slot
        print(
            f"Moving the database from PostgreSQL {data} to {server} ({target}); the writers stop meanwhile."
        )
        self.checked("stop", *WRITERS, what="stopping the services that write to the database")
        try:
            before = counted(self.psql(TABLE_ROWS))
            backup = self.backup()
            print(f"Backup: {backup} (PostgreSQL {data}'s own pg_dump)")
            self.postgres_on(new_slot, target)
            self.restore(backup)
            differences = count_differences(before, counted(self.psql(TABLE_ROWS)))
            if differences:
                raise StackError(f"the new cluster's rows differ from the old: {'; '.join(differences)}")
        except (StackError, OSError) as exc:
            self.put_back(slot, old_image, running, remove=new_volume)
            raise StackError(
                f"{exc}; the stack is back on its old volume ({slot}) and PostgreSQL {data}, unchanged, "
                f"and the half-made cluster is removed"
            )
        state = {
            "old_slot": slot,
            "old_volume": old_volume,
            "old_image": old_image,
            "new_volume": new_volume,
            "backup": str(backup),
        }
        dotenv.write_private(STATE, [json.dumps(state, indent=1)])
        dotenv.set_value("POSTGRES_VOLUME", new_slot)
        if os.environ.get("POSTGRES_IMAGE"):  # given for this command: kept for the next ones
            dotenv.set_value("POSTGRES_IMAGE", target)
        print(
            f"Every table's rows match ({sum(before.values())} rows in {len(before)} tables); starting the stack."
        )
        up(self.compose)
        print(
            f"\nmake upgrade-db: on PostgreSQL {server}. The old volume ({old_volume}) is kept: "
            f"make upgrade-db FINISH=1 removes it, make upgrade-db UNDO=1 goes back to it."
        )

    def volume_free_kib(self) -> int:
        """Free KiB of the disk the database volumes are on, as the postgres container sees it."""
        said = self.checked(
            "exec", "-T", "postgres", "df", "-Pk", "/var/lib/postgresql/data", what="reading free disk"
        )
        return int(said.strip().splitlines()[-1].split()[3])

    def put_back(self, slot: str, image: str, running: List[str], remove: Optional[str] = None) -> None:
        """The stack as it was: postgres on its old volume and image, the services that ran
        running again, `remove` (the half-made cluster's volume) gone."""
        self.postgres_on(slot, image)
        if "postgres" not in running:
            self.compose_run("stop", "postgres")
        if remove:
            subprocess.run(["docker", "volume", "rm", remove], capture_output=True)
        others = [service for service in running if service != "postgres"]
        if others:
            self.compose_run("up", "-d", *others, env={"POSTGRES_VOLUME": slot, "POSTGRES_IMAGE": image})

    def undo(self) -> None:
        state = self.state("UNDO=1")
        self.refuse_running_runs()
        if "postgres" in self.running_services():
            backup = self.backup()
            print(f"What the new version holds now (runs since the upgrade): {backup}")
        self.checked("stop", *WRITERS, "postgres", what="stopping the stack")
        # The old image named in .env: the default may be of the new version.
        dotenv.set_value("POSTGRES_VOLUME", state["old_slot"])
        dotenv.set_value("POSTGRES_IMAGE", state["old_image"])
        os.environ.pop("POSTGRES_IMAGE", None)
        self.compose_run("rm", "--force", "postgres")  # its container holds the new volume
        subprocess.run(["docker", "volume", "rm", state["new_volume"]], capture_output=True)
        STATE.unlink()
        up(self.compose)
        print(
            f"\nmake upgrade-db UNDO=1: back on {state['old_image']} and its volume ({state['old_volume']})."
        )

    def finish(self) -> None:
        state = self.state("FINISH=1")
        removed = subprocess.run(
            ["docker", "volume", "rm", state["old_volume"]], capture_output=True, text=True
        )
        if removed.returncode != 0 and "no such volume" not in removed.stderr.lower():
            raise StackError(
                f"could not remove the old volume {state['old_volume']}: {removed.stderr.strip()}"
            )
        STATE.unlink()
        print(
            f"make upgrade-db FINISH=1: removed the old volume {state['old_volume']}; the backup {state['backup']} stays."
        )

    def state(self, asked: str) -> dict:
        if not STATE.exists():
            raise StackError(f"{asked}: there is no upgrade to finish or undo ({STATE} is not there)", code=2)
        return json.loads(STATE.read_text())


def free_bytes(folder: Path) -> int:
    folder.mkdir(exist_ok=True)
    info = os.statvfs(folder)
    return info.f_bavail * info.f_frsize


def upgrade_database(compose: list) -> None:
    undo, finish = os.environ.get("UNDO", "") == "1", os.environ.get("FINISH", "") == "1"
    for name in ("UNDO", "FINISH"):
        if os.environ.get(name, "") not in ("", "0", "1"):
            raise StackError(f"{name} must be 1 or left out, got {os.environ[name]!r}", code=2)
    if undo and finish:
        raise StackError("UNDO=1 and FINISH=1 together: one or the other", code=2)
    upgrade = Upgrade(compose)
    if undo:
        upgrade.undo()
    elif finish:
        upgrade.finish()
    else:
        upgrade.upgrade()


def main(argv=None) -> int:
    """`python3 -m scripts.upgrade_database -- docker compose`, as the Makefile runs it."""
    compose = [word for word in (sys.argv[1:] if argv is None else argv) if word != "--"]
    return as_make_says("upgrade-db", lambda: upgrade_database(compose))


if __name__ == "__main__":
    sys.exit(main())
