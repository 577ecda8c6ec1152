"""End-to-end runs of the "Users report" flow against the fake users API on loopback."""

import os
import time
from pathlib import Path

import pytest

from demo.users_api import COLUMNS, users_csv
from tests.support.pipeline_runs import (
    closed_port_url,
    expected_rows,
    finish,
    read_csv,
    report_names,
    start_run,
)

MESSAGES = (
    "Dados baixados com sucesso!",
    "Dados convertidos em DataFrame com sucesso!",
    "Dados salvos em report.csv com sucesso!",
)


def assert_only_report_files(reports_dir: Path, reports: int):
    """report.csv plus one file per successful run: no staging folder, no partial file."""
    names = report_names(reports_dir)
    assert names[0] == "report.csv" and len(names) == reports + 1, names
    assert all(name.startswith("users-report-") for name in names[1:]), names


@pytest.mark.parametrize("n_users", [1, None, 12_345])
def test_report_has_exactly_the_users_asked_for(n_users, run_pipeline, users_api, reports_dir):
    result = run_pipeline(n_users)

    assert result.returncode == 0, result.stderr
    expected_n = n_users or 10  # the parameter's default
    report = Path(result.stdout.strip().splitlines()[-1])
    assert report.parent == reports_dir and report.name.startswith("users-report-")
    header, rows = read_csv(report)
    assert header == COLUMNS
    assert len(rows) == expected_n
    assert len({row[COLUMNS.index("login.uuid")] for row in rows}) == expected_n
    assert rows == expected_rows(users_api.requests, expected_n)
    assert (reports_dir / "report.csv").read_bytes() == report.read_bytes()
    assert_only_report_files(reports_dir, reports=1)
    logs = result.stdout + result.stderr
    assert "prefect.FlowRunner | Beginning Flow run for 'Users report'" in logs
    assert all(message in logs for message in MESSAGES)
    # One seed for the whole run; pages 1..k of one size.
    assert len({query["seed"] for query in users_api.requests}) == 1
    pages = sorted(int(query["page"]) for query in users_api.requests)
    assert pages == list(range(1, -(-expected_n // 5000) + 1))


def test_single_page_report_is_the_api_answer_byte_for_byte(run_pipeline, users_api, reports_dir):
    """Accents, apostrophes and quoted commas arrive unchanged; no index column is added."""
    assert run_pipeline(300).returncode == 0
    query = users_api.requests[0]
    sent = users_csv(query["seed"], 1, 300)
    assert '"Brazil, Buenos Aires, Georgetown"' in sent and "ã" in sent
    assert (reports_dir / "report.csv").read_text(encoding="utf-8") == sent


def test_small_pages_are_downloaded_concurrently_and_trimmed(run_pipeline, users_api, reports_dir):
    result = run_pipeline(1001, PAGE_SIZE=100, DOWNLOAD_WORKERS=4)

    assert result.returncode == 0, result.stderr
    assert sorted(int(query["page"]) for query in users_api.requests) == list(range(1, 12))
    header, rows = read_csv(reports_dir / "report.csv")
    assert rows == expected_rows(users_api.requests, 1001)


@pytest.mark.parametrize("bad", ["0", "-5", "1.5", "abc", "", "1000001", "1e3"])
def test_bad_n_users_fails_before_any_download(bad, run_pipeline, users_api, reports_dir):
    (reports_dir / "report.csv").write_text("previous report\n")

    result = run_pipeline(bad)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: n_users must be a whole number from 1 to 1,000,000 "
        f"(an integer or a string of digits); got {bad!r}"
    )
    assert users_api.requests == []
    assert (reports_dir / "report.csv").read_text() == "previous report\n"
    assert report_names(reports_dir) == ["report.csv"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, 10.0, True, None, [], "", 1_000_001])
def test_bad_n_users_from_the_ui_fails_the_run(bad):
    """The UI sends JSON: booleans, nulls and floats are refused too."""
    from flows.users_report.flows import flow

    state = flow.run(parameters={"n_users": bad}, run_on_schedule=False)

    assert state.is_failed()
    messages = [task_state.message for task_state in state.result.values()]
    assert f"got {bad!r}" in " ".join(messages)


def test_digit_strings_from_the_ui_are_accepted(run_pipeline, reports_dir):
    result = run_pipeline(" 42 ")
    assert result.returncode == 0, result.stderr
    assert len(read_csv(reports_dir / "report.csv")[1]) == 42


def test_burst_of_503_is_retried_until_it_succeeds(run_pipeline, users_api, reports_dir):
    users_api.faults = ["503", "503"]

    result = run_pipeline(25, HTTP_RETRIES=3)

    assert result.returncode == 0, result.stderr
    assert len(users_api.requests) == 3
    assert len(read_csv(reports_dir / "report.csv")[1]) == 25


@pytest.mark.parametrize(
    "fault, settings, message, tries",
    [
        ("500", {}, "it answered 500 Internal Server Error", 3),
        ("500", {"HTTP_RETRIES": "0"}, "it answered 500 Internal Server Error", 1),
        ("slow", {"HTTP_TIMEOUT": "0.2"}, "no answer within 0.2 s", 3),
        ("cut", {}, "the answer was cut off after", 3),
        ("empty", {}, "the answer was empty", 3),
        ("404", {}, 'it answered 404 Not Found: {"error": "fake users API answers 404', 1),
        ("ragged", {}, "is truncated or malformed: user 20 has no nat", 1),
        ("short", {}, "has 19 users where 20 were asked for", 1),
        ("headerless", {}, "has no CSV header with the API's columns", 1),
    ],
)
def test_a_failed_run_says_why_and_leaves_the_previous_report(
    fault, settings, message, tries, run_pipeline, users_api, reports_dir
):
    users_api.always, users_api.slow_seconds = fault, 1.0
    (reports_dir / "report.csv").write_text("previous report\n")

    result = run_pipeline(20, **{"HTTP_RETRIES": "2", **settings})

    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and message in error, error
    assert len(users_api.requests) == tries
    assert (reports_dir / "report.csv").read_text() == "previous report\n"
    assert report_names(reports_dir) == ["report.csv"]


def test_unreachable_api_fails_after_retries(run_pipeline, reports_dir):
    url = closed_port_url()

    result = run_pipeline(5, url=url, HTTP_RETRIES=1)

    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error == (
        f"error: could not download page 1 from the users API at {url}: cannot connect "
        f"(Connection refused); without internet, `make run OFFLINE=1` runs against the offline users API"
    )
    assert report_names(reports_dir) == []


def test_an_offline_run_starts_and_stops_its_own_users_api(run_pipeline, reports_dir):
    result = run_pipeline(12, url=closed_port_url(), extra_args=["--offline"])

    assert result.returncode == 0, result.stderr[-2000:]
    report = Path(result.stdout.strip().splitlines()[-1])
    assert report.parent == reports_dir and len(read_csv(report)[1]) == 12
    assert "Runs against the offline users API at http://127.0.0.1:" in result.stderr


def test_bad_setting_stops_with_one_line(run_pipeline, users_api):
    result = run_pipeline(5, PAGE_SIZE="6000")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: PAGE_SIZE='6000' is not allowed: use a whole number from 1 to 5,000"
    )
    assert users_api.requests == []


def test_four_runs_at_once_give_four_intact_reports(users_api, reports_dir):
    sizes = [101, 202, 303, 404]
    runs = [start_run(users_api.url, reports_dir, n, PAGE_SIZE=50) for n in sizes]
    results = [finish(run) for run in runs]

    assert [result.returncode for result in results] == [0, 0, 0, 0], [r.stderr for r in results]
    reports = [Path(result.stdout.strip().splitlines()[-1]) for result in results]
    assert len(set(reports)) == 4
    by_seed = {}
    for query in users_api.requests:
        by_seed.setdefault(query["seed"], []).append(query)
    for report, n in zip(reports, sizes):
        header, rows = read_csv(report)
        assert header == COLUMNS and len(rows) == n
        seed = next(s for s, queries in by_seed.items() if len(queries) == -(-n // 50))
        assert rows == expected_rows(by_seed[seed], n)
    latest = (reports_dir / "report.csv").read_bytes()
    assert any(latest == report.read_bytes() for report in reports)
    assert_only_report_files(reports_dir, reports=4)


def test_more_pages_than_the_api_serves_are_refused_before_any_download(run_pipeline, users_api):
    """Past page 10,000 the real API serves page 1 again: the run would repeat users."""
    result = run_pipeline(10_001, PAGE_SIZE=1)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 10,001 users in pages of 1 make 10,001 pages, but the users API serves "
        "pages 1 to 10,000: raise PAGE_SIZE"
    )
    assert users_api.requests == []


def aged(path: Path, days: float, folder=False) -> Path:
    """A file (or folder) last modified `days` ago."""
    path.mkdir() if folder else path.write_text("old\n")
    then = time.time() - days * 24 * 3600
    os.utime(path, (then, then))
    return path


@pytest.mark.parametrize("keep_days", ["30", "0"])
def test_a_successful_run_removes_only_its_flows_old_reports(keep_days, run_pipeline, reports_dir):
    old_report = aged(reports_dir / "users-report-20200101T090000Z-0a1b2c3d.csv", 31)
    recent_report = aged(reports_dir / "users-report-20201201T090000Z-4e5f6a7b.csv", 29)
    kept_anyway = [
        aged(reports_dir / "report.csv", 400),
        aged(reports_dir / "users-report-final.csv", 400),  # a person's file, not a run's
        aged(reports_dir / "notes.txt", 400),
        aged(reports_dir / ".staging-users-report-20201201T090000Z-4e5f6a7b", 0.5, folder=True),
    ]
    dead_run = aged(reports_dir / ".staging-users-report-20200101T090000Z-0a1b2c3d", 2, folder=True)

    result = run_pipeline(7, REPORTS_KEEP_DAYS=keep_days)

    assert result.returncode == 0, result.stderr
    own_report = Path(result.stdout.strip().splitlines()[-1])
    assert own_report.exists() and len(read_csv(own_report)[1]) == 7
    assert all(path.exists() for path in kept_anyway + [recent_report])
    assert not dead_run.exists()
    assert old_report.exists() == (keep_days == "0")
    removed = sorted([old_report.name] * (keep_days == "30") + [dead_run.name])
    assert (
        f"Removed {len(removed)} old files (REPORTS_KEEP_DAYS={keep_days}): {', '.join(removed)}"
        in result.stdout + result.stderr
    )


def test_a_failed_run_removes_no_report(run_pipeline, reports_dir):
    old_report = aged(reports_dir / "users-report-20200101T090000Z-0a1b2c3d.csv", 31)

    result = run_pipeline(0)

    assert result.returncode == 1 and old_report.exists()
