"""The path of a run, in-process: the real DockerAgent (fake Docker client) claims a run
from the Prefect API stand-in, and the flow container's command, `prefect execute
flow-run`, runs here with the container's environment. Only Prefect Server and the Docker
engine are replaced."""

import csv
from pathlib import Path

import prefect

from tests.support.agent_runs import (
    adhoc_run,
    agent_polls,
    client,
    only_flow,
    register,
    run_container_here,
    run_module,
    states_of,
    task_runs,
)
from tests.support.pipeline_runs import report_names


def test_adhoc_run_goes_from_the_client_through_the_agent_to_a_report(standin, stack_env, users_api):
    run_id, create, result = adhoc_run(standin, stack_env, 37)

    assert create["environment"]["PREFECT__CONTEXT__FLOW_RUN_ID"] == run_id
    assert create["environment"]["PREFECT__CLOUD__API"] == standin.url
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = standin.tables["flow_run"][run_id]
    assert run["state"] == "Success", run["state_message"]
    assert states_of(standin, run_id) == ["Submitted", "Running", "Success"]
    assert all(
        task_run["state"] == "Success"
        for key, task_run in task_runs(standin, run_id).items()
        if key[0] != "download_data-1" or key[1] >= 0
    )
    messages = "\n".join(log["message"] for log in standin.tables["log"].values())
    assert "Dados salvos em report.csv com sucesso!" in messages
    (artifact,) = standin.tables["task_run_artifact"].values()
    assert artifact["kind"] == "markdown" and "37 users, 34 columns" in artifact["data"]["markdown"]
    host_dir = Path(stack_env["HOST_REPORTS_DIR"])
    with open(host_dir / "report.csv", newline="", encoding="utf-8") as handle:
        assert len(list(csv.reader(handle))) == 1 + 37
    assert len(list(host_dir.glob(f"users-report-*-{run_id[:8]}.csv"))) == 1
    assert [query["results"] for query in users_api.requests] == ["37"]


def test_zero_users_fails_the_run_with_its_message_and_writes_nothing(standin, stack_env, users_api):
    run_id, _, _ = adhoc_run(standin, stack_env, 0)

    assert standin.tables["flow_run"][run_id]["state"] == "Failed"
    plan = task_runs(standin, run_id)[("plan_pages-1", -1)]
    assert plan["state"] == "Failed"
    assert plan["state_message"].startswith("n_users must be a whole number from 1 to 1,000,000")
    assert plan["state_message"].endswith("got 0")
    assert users_api.requests == []
    assert report_names(Path(stack_env["HOST_REPORTS_DIR"])) == []


def test_a_users_api_failing_for_good_fails_the_run_after_its_retries(standin, stack_env, users_api):
    users_api.always = "500"

    run_id, _, _ = adhoc_run(standin, stack_env, 12)

    assert standin.tables["flow_run"][run_id]["state"] == "Failed"
    download = task_runs(standin, run_id)[("download_data-1", 0)]
    assert download["state"] == "Failed"
    assert "it answered 500 Internal Server Error" in download["state_message"]
    assert len(users_api.requests) == 2  # HTTP_RETRIES=1
    assert report_names(Path(stack_env["HOST_REPORTS_DIR"])) == []


def test_a_run_waiting_for_the_users_api_limit_keeps_beating_and_succeeds(standin, stack_env, users_api):
    """A 429 makes the run wait inside its task for a window; the flow run's heartbeats go
    on meanwhile, so the server's zombie killer leaves it alone."""
    users_api.faults = ["429"]  # the limit already spent by another client on this address
    env = {**stack_env, "USERS_API_LIMIT": "100", "USERS_API_WINDOW": "4"}

    run_id, create, result = adhoc_run(standin, env, 20, PREFECT__CLOUD__HEARTBEAT_INTERVAL="1")

    assert create["environment"]["USERS_API_LIMIT"] == "100" and len(users_api.requests) == 2
    assert standin.tables["flow_run"][run_id]["state"] == "Success", result.stdout[-3000:]
    messages = "\n".join(log["message"] for log in standin.tables["log"].values())
    assert "users API limit reached (429): waiting 4 s; 100 users per 4 s" in messages
    (artifact,) = standin.tables["task_run_artifact"].values()
    assert "1 of 1 pages waited for the users API's limit" in artifact["data"]["markdown"]
    heartbeats = [op for op in standin.operations if op[1] == ["update_flow_run_heartbeat"]]
    assert len(heartbeats) >= 4  # one a second through the 4 s wait


def test_a_run_with_other_labels_is_left_alone(standin, stack_env):
    register(stack_env)
    with client(standin):
        run_id = prefect.Client().create_flow_run(flow_id=only_flow(standin)["id"], labels=["another-office"])

    assert agent_polls(stack_env, run_id=run_id) == []
    assert standin.tables["flow_run"][run_id]["state"] == "Scheduled"
    assert states_of(standin, run_id) == []


def test_a_log_line_the_api_does_not_take_costs_no_run(standin, stack_env):
    """The agent's "Submitted for execution" line, written once the container started, is
    refused (a server too slow to answer in time): the run goes on, its container made."""
    register(stack_env)
    standin.refuse("write_run_logs", "Read timed out. (read timeout=15)")
    with client(standin):
        run_id = prefect.Client().create_flow_run(flow_id=only_flow(standin)["id"], parameters={"n_users": 3})
    (create,) = agent_polls(stack_env, run_id=run_id)
    assert create["labels"]["io.prefect.flow-run-id"] == run_id
    assert states_of(standin, run_id) == ["Submitted"]
    assert run_container_here(create, stack_env).returncode == 0
    assert states_of(standin, run_id)[-1] == "Success"


def test_the_agent_imports_what_its_deploy_threads_would_race_to_import():
    """Each deployment starts a log-streaming process from its own thread; two first starts at
    once failed one run on Debian's Python 3.9 (agent/start.py). Python 3.11 here does not
    race, so this checks that the agent's start-up imports that module before any thread."""
    probe = "import sys, agent.start; print('multiprocessing.popen_fork' in sys.modules)"
    assert run_module(["-c", probe], {}).stdout.strip() == "True"
