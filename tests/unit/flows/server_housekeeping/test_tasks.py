import prefect
import pytest
from prefect.engine import signals

from flows.server_housekeeping import tasks


def test_keep_days_is_the_runs_else_the_setting(monkeypatch):
    monkeypatch.setenv("SERVER_KEEP_DAYS", "7")
    assert tasks.days_to_keep.run(None) == 7 and tasks.days_to_keep.run(" ") == 7
    assert tasks.days_to_keep.run("0.5") == 0.5


@pytest.mark.parametrize("bad", ["-1", "36501", "a week", [1]])
def test_a_bad_keep_days_fails_before_anything_is_touched(bad):
    with pytest.raises(signals.FAIL, match="is not allowed: use a number of days from 0 to 36,500"):
        tasks.days_to_keep.run(bad)


def late(count):
    return [{"flow": "Users report", "name": f"run-{i}", "due": f"2026-01-0{i}"} for i in range(1, count + 1)]


def test_late_runs_fail_the_run_naming_the_first_few(monkeypatch):
    monkeypatch.setenv("LATE_MINUTES", "5")
    tasks.fail_if_late.run([])
    with pytest.raises(signals.FAIL) as failed:
        tasks.fail_if_late.run(late(tasks.NAMED + 2))
    message = str(failed.value)
    assert message.startswith("7 scheduled runs are late by more than 5 min (LATE_MINUTES)")
    assert "run-5 (due" in message and "run-6" not in message and message.endswith("and 2 more")


def test_the_record_says_what_went_and_counts_every_table(monkeypatch):
    monkeypatch.setattr(tasks, "create_markdown_artifact", lambda markdown: None)
    rows = {table: 1000 for table in tasks.TABLES}
    with prefect.context(logger=prefect.utilities.logging.get_logger("t")):
        markdown = tasks.record.run(rows, {"Users report": 3}, [], [], rows)
    assert "Deleted 3 ended runs, with their task runs, states and logs: Users report 3." in markdown
    assert all(f"| {table} | 1,000 | 1,000 |" in markdown for table in tasks.TABLES)
