"""What people do: open the flow's page in the Prefect UI and start a run from it (Run, with
inputs, or Quick Run), or start one from a terminal with Prefect's own CLI. The UI's own
operations (tests/support/ui_operations.py) and the CLI are replayed against the API
stand-in; the real DockerAgent claims the runs and their containers' command runs here.
"""

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.users_report.utils import INPUTS
from tests.support import ROOT
from tests.support.agent_runs import agent_polls, only_flow, register, run_container_here, task_runs
from tests.support.ui_operations import (
    CREATE_FLOW_RUN,
    FLOW_PAGE_QUERY,
    PREFECT_RUN_WATCH,
    post,
    run_page_variables,
)


def flow_page(standin) -> dict:
    answer = post(standin.url, FLOW_PAGE_QUERY, {"id": only_flow(standin)["flow_group_id"]})
    assert "errors" not in answer, answer
    return answer["data"]["flow_group_by_pk"]


def report_rows(env, run_id) -> int:
    (report,) = Path(env["HOST_REPORTS_DIR"]).glob(f"users-report-*-{run_id[:8]}.csv")
    with open(report, newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def claim_and_run(standin, env, run_id) -> dict:
    """The agent claims the run, in one container, and that container's command runs here."""
    (create,) = agent_polls(env, run_id=run_id)
    assert create["environment"]["PREFECT__CONTEXT__FLOW_RUN_ID"] == run_id
    run_container_here(create, env)
    return standin.tables["flow_run"][run_id]


@pytest.mark.parametrize("button, inputs, rows", [("Run", {"n_users": 2500}, 2500), ("Quick Run", None, 10)])
def test_a_run_started_from_the_flow_page_is_claimed_and_succeeds(
    button, inputs, rows, standin, stack_env, users_api
):
    register(stack_env)
    page = flow_page(standin)
    (flow,) = page["flows"]
    assert [(p["name"], p["default"]) for p in flow["parameters"]] == [("n_users", 10)]
    assert [p["name"] for p in flow["parameters"]] == list(INPUTS)  # what check_inputs allows
    assert page["default_parameters"] == {} and flow["run_config"]["labels"] == ["users-report"]
    assert flow["version_group_id"] == page["name"]

    variables = run_page_variables(page, inputs, "ui-run") if inputs else {"id": flow["id"]}
    answer = post(standin.url, CREATE_FLOW_RUN, variables)
    assert "errors" not in answer, answer
    run_id = answer["data"]["create_flow_run"]["id"]

    run = claim_and_run(standin, stack_env, run_id)
    assert run["state"] == "Success", run["state_message"]
    assert run["labels"] == ["users-report"] and run["parameters"] == {"n_users": rows}
    assert report_rows(stack_env, run_id) == rows


def test_a_run_whose_labels_were_cleared_is_left_unclaimed(standin, stack_env):
    register(stack_env)
    variables = run_page_variables(flow_page(standin), {"n_users": 5}, "no-labels", labels=[])
    run_id = post(standin.url, CREATE_FLOW_RUN, variables)["data"]["create_flow_run"]["id"]

    assert agent_polls(stack_env, run_id=run_id) == []
    assert standin.tables["flow_run"][run_id]["state"] == "Scheduled"


def test_a_misspelt_input_fails_the_run_by_name_before_any_download(standin, stack_env, users_api):
    register(stack_env)
    variables = run_page_variables(flow_page(standin), {"n_user": 2500}, "misspelt")
    run_id = post(standin.url, CREATE_FLOW_RUN, variables)["data"]["create_flow_run"]["id"]
    # The server keeps the undeclared input and fills in the declared one's default.
    assert standin.tables["flow_run"][run_id]["parameters"] == {"n_users": 10, "n_user": 2500}

    run = claim_and_run(standin, stack_env, run_id)

    assert run["state"] == "Failed"
    assert task_runs(standin, run_id)[("plan_pages-1", -1)]["state_message"] == (
        "unknown input 'n_user': the flow takes n_users (a whole number from 1 to 1,000,000)"
    )
    assert users_api.requests == []


def prefect_cli(env, *args, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def test_prefects_cli_lists_and_runs_the_flow(standin, stack_env, users_api):
    register(stack_env)
    listings = {
        what: prefect_cli(stack_env, "get", what).communicate(timeout=60)[0]
        for what in ("flows", "projects", "flow-runs")
    }
    assert "Users report  1" in listings["flows"] and "Data office" in listings["flows"]
    assert listings["projects"].splitlines()[1].split()[:3] == ["Data", "office", "1"]
    assert listings["flow-runs"].count("Scheduled") == 10  # the schedule's next runs

    watch = prefect_cli(stack_env, *PREFECT_RUN_WATCH)
    deadline = time.monotonic() + 60
    while not (adhoc := [run for run in standin.tables["flow_run"].values() if not run["auto_scheduled"]]):
        assert time.monotonic() < deadline, "prefect run created no run"
        time.sleep(0.2)
    run = claim_and_run(standin, stack_env, adhoc[0]["id"])
    output, _ = watch.communicate(timeout=60)

    assert watch.returncode == 0, output
    assert run["state"] == "Success" and "Flow run succeeded!" in output, output
    assert report_rows(stack_env, run["id"]) == 5
