"""scripts/upgrade_database.py's rules: what it refuses before touching anything, the room it
asks for, and the row counts that must match before the stack switches volumes. The steps
themselves run against a real stack in make e2e (tests/e2e/database.py upgrade_db)."""

import pytest

from scripts import upgrade_database
from scripts.stack import StackError
from scripts.upgrade_database import WAL_BYTES, MiB


class NoCompose(list):
    """A compose command that must not be run: the refusals come before any."""

    def __iter__(self):
        raise AssertionError("compose was called")


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env.example").write_text("# POSTGRES_VOLUME=postgres-data\n# POSTGRES_HOST=\n")
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=x\n")
    for name in ("UNDO", "FINISH", "POSTGRES_HOST", "POSTGRES_VOLUME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def refusal(monkeypatch, **environ) -> StackError:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StackError) as refused:
        upgrade_database.upgrade_database(NoCompose())
    return refused.value


def test_the_other_volume_is_the_one_not_in_use():
    assert upgrade_database.other_slot("postgres-data") == "postgres-data-2"
    assert upgrade_database.other_slot("postgres-data-2") == "postgres-data"


def test_an_external_database_gets_the_steps_and_nothing_runs(checkout, monkeypatch):
    refused = refusal(monkeypatch, POSTGRES_HOST="db.example.org")
    assert refused.code == 2
    assert str(refused).startswith("POSTGRES_HOST names an external database")
    assert "make backup" in str(refused) and "make restore FILE=<the backup> YES=1" in str(refused)


@pytest.mark.parametrize(
    "environ, said",
    [
        ({"UNDO": "yes"}, "UNDO must be 1 or left out, got 'yes'"),
        ({"FINISH": "2"}, "FINISH must be 1 or left out, got '2'"),
        ({"UNDO": "1", "FINISH": "1"}, "UNDO=1 and FINISH=1 together: one or the other"),
        ({"UNDO": "1"}, "UNDO=1: there is no upgrade to finish or undo (.upgrade-db.json is not there)"),
        ({"FINISH": "1"}, "FINISH=1: there is no upgrade to finish or undo (.upgrade-db.json is not there)"),
    ],
)
def test_bad_or_pointless_asks_are_refused_before_anything_runs(checkout, monkeypatch, environ, said):
    refused = refusal(monkeypatch, **environ)
    assert (str(refused), refused.code) == (said, 2)


def test_a_second_upgrade_waits_for_the_first_to_be_finished_or_undone(checkout, monkeypatch):
    (checkout / ".upgrade-db.json").write_text("{}")
    refused = refusal(monkeypatch)
    assert refused.code == 2 and "make upgrade-db FINISH=1 keeps it" in str(refused)
    assert (checkout / ".upgrade-db.json").read_text() == "{}"


def test_room_for_the_new_cluster_and_the_backup_or_how_much_is_missing():
    cluster, database = 900 * MiB, 800 * MiB
    enough = dict(
        cluster_bytes=cluster,
        volume_free=cluster + WAL_BYTES,
        backup_bytes=database // 2,
        backups_free=database // 2,
    )
    assert upgrade_database.room_refusal(**enough) is None
    short = upgrade_database.room_refusal(**{**enough, "volume_free": cluster, "backups_free": 100 * MiB})
    assert short == (
        "not enough disk: it needs 964 MiB for the new cluster on Docker's disk (900 MiB free) "
        "and 400 MiB for the backup in backups/ (100 MiB free); nothing changed"
    )


def test_row_counts_are_read_and_every_table_that_differs_or_is_missing_named():
    before = upgrade_database.counted("hdb_catalog.hdb_table=52 public.flow_run=1000 public.log=52000")
    assert before == {"hdb_catalog.hdb_table": 52, "public.flow_run": 1000, "public.log": 52000}
    assert upgrade_database.count_differences(before, dict(before)) == []
    after = {**before, "public.log": 51999, "public.extra": 0}
    del after["hdb_catalog.hdb_table"]
    assert upgrade_database.count_differences(before, after) == [
        "hdb_catalog.hdb_table: 52 before, none after",
        "public.extra: none before, 0 after",
        "public.log: 52000 before, 51999 after",
    ]


def test_the_volume_setting_takes_only_the_two_volumes():
    from scripts import check

    read = check.COMPOSE_READ["POSTGRES_VOLUME"]
    assert check.bad_values([lambda: read("POSTGRES_VOLUME")], {"POSTGRES_VOLUME": "postgres-data-2"}) == []
    assert check.bad_values([lambda: read("POSTGRES_VOLUME")], {"POSTGRES_VOLUME": "postgres-data-3"}) == [
        "POSTGRES_VOLUME='postgres-data-3' is not allowed: use postgres-data or postgres-data-2"
    ]


def test_as_make_runs_it_a_refusal_is_one_line_and_exit_status_2(checkout):
    import subprocess
    import sys

    from tests.support import ROOT

    ran = subprocess.run(
        [sys.executable, "-m", "scripts.upgrade_database", "--", "false"],
        cwd=checkout, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "POSTGRES_HOST": "db.example.org"},
        capture_output=True, text=True,
    )  # fmt: skip
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.startswith("make upgrade-db: POSTGRES_HOST names an external database")
    assert ran.stderr.count("\n") == 1
