import os
import time

import pendulum
import prefect
import pytest
from prefect.engine import signals

from flows.users_report import tasks

RUN = {"scheduled_start_time": pendulum.datetime(2026, 1, 2, 3, 4, 5), "flow_run_id": "0123abcd-ffff-4000"}


@pytest.fixture
def reports(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTS_DIR", str(tmp_path))
    for name in ("PAGE_SIZE", "USERS_API_LIMIT", "USERS_API_MAX_WAIT", "REPORTS_KEEP_DAYS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_pages_cover_the_users_once_the_last_one_trimmed(reports, monkeypatch):
    monkeypatch.setenv("PAGE_SIZE", "4")
    with prefect.context(**RUN, parameters={"n_users": 10}):
        planned = tasks.plan_pages.run(10)
    assert [(page.number, page.keep) for page in planned] == [(1, 4), (2, 4), (3, 2)]
    assert len({page.seed for page in planned}) == 1 and planned[0].path.parent.is_dir()


@pytest.mark.parametrize(
    "settings, n_users, words",
    [
        ({}, "0", "n_users must be a whole number"),
        (
            {"PAGE_SIZE": "1", "USERS_API_LIMIT": "0"},
            10_001,
            "make 10,001 pages, but the users API serves pages 1 to 10,000",
        ),
        (
            {"USERS_API_MAX_WAIT": "60"},
            1_000_000,
            "need at least 4 h 5 min of waiting, more than USERS_API_MAX_WAIT=60 s",
        ),
    ],
)
def test_a_run_that_cannot_be_served_fails_before_any_download(
    reports, monkeypatch, settings, n_users, words
):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with prefect.context(**RUN, parameters={"n_users": n_users}), pytest.raises(signals.FAIL, match=words):
        tasks.plan_pages.run(n_users)
    assert list(reports.iterdir()) == []


def test_old_reports_and_leftovers_go_and_nothing_else(reports, monkeypatch):
    monkeypatch.setenv("REPORTS_KEEP_DAYS", "1")
    old = time.time() - 3 * tasks.DAY - tasks.load_settings().users_api_max_wait
    names = ["users-report-20250101T000000Z-aaaaaaaa.csv", ".users-report-20250101T000000Z-bbbbbbbb.csv.partial",
             "report.csv", "notes.csv", "users-report-20260102T030405Z-0123abcd.csv"]  # fmt: skip
    for name in names:
        (reports / name).write_text("x")
        os.utime(reports / name, (old, old))
    (reports / ".staging-users-report-20250101T000000Z-cccccccc").mkdir()
    os.utime(reports / ".staging-users-report-20250101T000000Z-cccccccc", (old, old))
    with prefect.context(**RUN):
        removed = tasks.remove_old_reports.run()
    assert sorted(removed) == sorted([names[0], names[1], ".staging-users-report-20250101T000000Z-cccccccc"])
    assert sorted(path.name for path in reports.iterdir()) == sorted(names[2:])


def test_the_summary_links_the_report_where_people_open_it():
    markdown = tasks._summary_markdown(
        "users-report-x",
        "http://localhost:8080/reports/users-report-x.csv",
        3,
        34,
        {"BR": 3},
        {"f": 3},
        "Took 1 s.",
    )
    assert "[Download users-report-x.csv](http://localhost:8080/reports/users-report-x.csv)" in markdown
    assert "Download" not in tasks._summary_markdown("x", "", 3, 34, {}, {}, "")
