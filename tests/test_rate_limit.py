"""The users API's limit, scaled down from 20,000 users per 5 min to 4,000 per 5 s: runs
pace themselves to it, share it, wait out a 429 and stop waiting at USERS_API_MAX_WAIT."""

import json

import pytest
import requests

from demo.users_api import COLUMNS, DemoUsersAPI
from tests.support.pipeline_runs import expected_rows, finish, read_csv, report_names, start_run

LIMIT, WINDOW = 4000, 5
SCALED_DOWN = {"USERS_API_LIMIT": LIMIT, "USERS_API_WINDOW": WINDOW, "PAGE_SIZE": 1000, "HTTP_RETRIES": 0}


@pytest.fixture
def limited_api():
    with DemoUsersAPI(lifetime=120, limit=LIMIT, window=WINDOW) as api:
        yield api


# A longer window where a test needs the run to meet the window another program spent:
# the run's first request must come before it ends, however slow the machine.
SPENT_WINDOW = 10


@pytest.fixture
def spent_api():
    """The limited fake whose first window another program on this host has spent."""
    with DemoUsersAPI(lifetime=120, limit=LIMIT, window=SPENT_WINDOW) as api:
        answer = requests.get(api.url, params={"results": LIMIT, "format": "csv"}, timeout=10)
        assert answer.status_code == 200 and answer.text.count("\n") == LIMIT + 1
        yield api


def run_pages(api: DemoUsersAPI) -> list:
    """The run's page requests (they carry a seed), once each though a 429 made one ask twice."""
    return list({query["page"]: query for query in api.requests if query.get("seed")}.values())


def test_fake_api_limits_each_client_like_the_real_one(limited_api):
    def ask(results, page=1):
        return requests.get(
            limited_api.url,
            timeout=10,
            params={"results": results, "format": "csv", "seed": "s", "page": page},
        )

    assert ask(6000).text.count("\n") == 2  # out of 1..5000: one user, not 5,000
    assert ask(20_000, page=10_001).text == ask(1).text  # out of 1..10,000: page 1
    assert ask(3997).status_code == 200  # 4,000 counted: the limit is reached...
    refused = ask(1)  # ...and checked before serving
    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "application/json"
    assert json.loads(refused.text)["error"].startswith(
        "Whoa, ease up there cowboy. You've requested 4000 users in the last minute."
    )
    assert limited_api.rejected == 1


def test_a_big_run_paces_itself_and_gets_every_user(limited_api, reports_dir):
    result = finish(start_run(limited_api.url, reports_dir, 12_345, **SCALED_DOWN))

    assert result.returncode == 0, result.stderr[-3000:]
    header, rows = read_csv(reports_dir / "report.csv")
    assert header == COLUMNS and len(rows) == 12_345
    assert len({row[COLUMNS.index("login.uuid")] for row in rows}) == 12_345
    assert rows == expected_rows(run_pages(limited_api), 12_345)
    assert limited_api.rejected <= 2, f"{limited_api.rejected} answers 429"
    logs = result.stdout + result.stderr
    # 13 pages, 4 a window: 3 windows of waiting, said up front.
    assert "12,345 users at 4,000 users per 5 s: at least 15 s" in logs
    assert "users API budget spent: waiting" in logs


def test_a_run_that_meets_a_spent_window_waits_it_out(spent_api, reports_dir):
    result = finish(
        start_run(spent_api.url, reports_dir, 500, **{**SCALED_DOWN, "USERS_API_WINDOW": SPENT_WINDOW})
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert spent_api.rejected == 1  # one 429, then a wait, not a failure nor a retry
    logs = result.stdout + result.stderr
    assert "users API limit reached (429): waiting 10 s; 4,000 users per 10 s" in logs
    # The 429's JSON body never became part of the report.
    header, rows = read_csv(reports_dir / "report.csv")
    assert header == COLUMNS and len(rows) == 500
    assert rows == expected_rows(run_pages(spent_api), 500)


def test_two_runs_on_one_reports_folder_share_the_budget(limited_api, reports_dir):
    runs = [start_run(limited_api.url, reports_dir, 6000, **SCALED_DOWN) for _ in range(2)]
    results = [finish(run) for run in runs]

    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    assert limited_api.rejected == 0  # 12,000 users in 12 pages, never more than 4,000 a window
    reports = [name for name in report_names(reports_dir) if name != "report.csv"]
    assert len(reports) == 2
    assert all(len(read_csv(reports_dir / name)[1]) == 6000 for name in reports)


@pytest.mark.parametrize(
    "api, n_users, settings, message",
    [
        (
            "limited_api",
            12_345,
            {"USERS_API_MAX_WAIT": 10},
            "12,345 users at 4,000 users per 5 s need at least 15 s of waiting, "
            "more than USERS_API_MAX_WAIT=10 s allows",
        ),
        (
            "spent_api",
            500,
            {"USERS_API_MAX_WAIT": 2, "USERS_API_WINDOW": SPENT_WINDOW},
            "users API limit reached (429) for page 1: waiting 10 s more would take "
            "this run past USERS_API_MAX_WAIT=2 s (4,000 users per 10 s)",
        ),
    ],
)
def test_waiting_longer_than_allowed_fails_the_run_with_one_line(
    api, n_users, settings, message, request, reports_dir
):
    api = request.getfixturevalue(api)
    (reports_dir / "report.csv").write_text("previous report\n")

    result = finish(start_run(api.url, reports_dir, n_users, **{**SCALED_DOWN, **settings}))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {message}"
    assert (reports_dir / "report.csv").read_text() == "previous report\n"
    assert report_names(reports_dir) == ["report.csv"]
