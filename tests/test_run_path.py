"""The path of a run, in-process: register.py registers with the Prefect API stand-in, its
scheduler makes runs, the real DockerAgent (fake Docker client) claims them, and the flow
container's command, `prefect execute flow-run`, runs here with the container's
environment. Only Prefect Server and the Docker engine are replaced.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pendulum
import prefect
import pytest

from stack.catalog import FlowPackage
from tests.conftest import report_names
from tests.support import ROOT, free_port, users_report_entry
from tests.support.agent_runs import (
    adhoc_run,
    agent_polls,
    client,
    only_flow,
    register,
    run_container_here,
    run_module,
    start_container_here,
    states_of,
    task_runs,
)
from tests.support.webhook_receiver import WebhookReceiver

FLOW_SCRIPT_IN_IMAGE = FlowPackage("users_report").script_in_image


def test_register_creates_tenant_project_and_one_flow_version(standin, stack_env):
    register(stack_env)
    again = register(stack_env)  # unchanged: no new version, not even sent
    assert "Users report: skipped (unchanged since its current version)" in again.stdout

    assert len(standin.tables["tenant"]) == 1
    assert [project["name"] for project in standin.tables["project"].values()] == ["Data office"]
    flow = only_flow(standin)
    assert (flow["name"], flow["version"], flow["is_schedule_active"]) == ("Users report", 1, True)
    storage = flow["storage"]
    assert storage["type"] == "Docker" and storage["stored_as_script"] is True
    assert storage["flows"] == {"Users report": FLOW_SCRIPT_IN_IMAGE}
    assert storage["image_name"] == "users-report-flow" and len(storage["image_tag"]) == 12
    assert flow["run_config"]["type"] == "DockerRun"
    assert flow["run_config"]["labels"] == ["users-report"]
    registrations = [op for op in standin.operations if op[1] == ["create_flow_from_compressed_string"]]
    assert len(registrations) == 1
    assert {task["slug"] for task in standin.tables["task"].values()} == {
        "n_users",
        "plan_pages-1",
        "download_data-1",
        "parse_data-1",
        "save_report-1",
        "remove_staging-1",
        "remove_old_reports-1",
    }

    changed = {**stack_env, "SCHEDULE_N_USERS": "25"}
    register(changed)
    versions = sorted((flow["version"], flow["archived"]) for flow in standin.tables["flow"].values())
    assert versions == [(1, True), (2, False)]


def test_registering_schedules_the_next_runs_with_the_schedules_users(standin, stack_env):
    register(stack_env)
    dry_run = users_report_entry(run_module(["register.py", "--dry-run"], stack_env).stdout)

    # set_schedule_active made the next 10 runs at once; the scheduler makes each only once.
    assert len(standin.tables["flow_run"]) == 10
    assert standin.schedule_runs() == 0
    runs = sorted(standin.tables["flow_run"].values(), key=lambda run: run["scheduled_start_time"])
    assert all(run["parameters"] == {"n_users": 10} and run["state"] == "Scheduled" for run in runs)
    assert all(run["labels"] == ["users-report"] for run in runs)
    assert [pendulum.parse(run["scheduled_start_time"]) for run in runs[:5]] == [
        pendulum.parse(when) for when in dry_run["next_runs"]
    ]

    only_flow(standin)["is_schedule_active"] = False
    standin.tables["flow_run"].clear()
    assert standin.schedule_runs() == 0


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

    assert agent_polls(stack_env) == []
    assert standin.tables["flow_run"][run_id]["state"] == "Scheduled"
    assert states_of(standin, run_id) == []


def start_smoke(env, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.programs.smoke", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_a_run(standin, seconds=60):
    deadline = time.monotonic() + seconds
    while not standin.tables["flow_run"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert standin.tables["flow_run"], "smoke created no run"


@pytest.mark.parametrize(
    "n_users, outcome",
    [
        (23, "smoke passed: "),
        (0, "smoke failed: the run ended Failed: n_users must be a whole number from 1 to 1,000,000"),
    ],
)
def test_smoke_follows_a_run_through_agent_and_report(n_users, outcome, standin, stack_env):
    register(stack_env)
    smoke = start_smoke(stack_env, "--n-users", str(n_users))
    wait_for_a_run(standin)
    (create,) = agent_polls(stack_env)
    run_container_here(create, stack_env)

    stdout, stderr = smoke.communicate(timeout=60)

    assert smoke.returncode == (0 if n_users else 1), stdout + stderr
    assert outcome in (stdout + stderr)
    assert "Submitted" in stdout and ("Success" in stdout or "Failed" in stdout)
    if n_users:
        assert stdout.strip().endswith(f"has {n_users} rows")


def test_smoke_says_which_hop_failed(standin, stack_env):
    closed = {**stack_env, "PREFECT__SERVER__PORT": str(free_port())}
    checks = [
        (closed, [], "smoke failed: the Prefect API does not answer at http://127.0.0.1:"),
        (stack_env, [], "smoke failed: the flow 'Users report' is not registered (make register)"),
    ]
    for env, args, message in checks:
        smoke = start_smoke(env, *args)
        _, stderr = smoke.communicate(timeout=60)
        assert smoke.returncode == 1 and stderr.startswith(message), stderr

    register(stack_env)
    smoke = start_smoke(stack_env, "--claim-timeout", "1")
    _, stderr = smoke.communicate(timeout=60)
    assert smoke.returncode == 1
    assert stderr.startswith("smoke failed: no agent claimed the run within 1 s"), stderr


def test_the_standin_refuses_what_it_does_not_know(standin):
    """So that a change in what Prefect sends fails these tests instead of passing."""
    errors = [
        standin.execute("query { flow { id no_such_column } }"),
        standin.execute("mutation { no_such_mutation(input: {}) { id } }"),
        standin.execute('query { flow(where: {name: {_ilike: "Users%"}}) { id } }'),
        standin.execute('query { flow(order_by: {version: "desc"}) { id } }'),
        standin.execute("query { flow(where: {no_such_column: {_eq: 1}}) { id } }"),
    ]
    messages = [body["errors"][0]["message"] for body in errors]
    assert "Cannot query field 'no_such_column' on type 'flow'." in messages[0]
    assert "Cannot query field 'no_such_mutation' on type 'Mutation'." in messages[1]
    assert "cannot honour the operator '_ilike'" in messages[2]
    assert "order_by takes {column: asc|desc} with enum values" in messages[3]
    assert "no column 'no_such_column'" in messages[4]
    assert standin.operations == []


# ---- alerts: the server's cloud hook on the flow, posted to NOTIFY_WEBHOOK_URL -----------


@pytest.fixture
def receiver():
    hooks = WebhookReceiver()
    yield hooks
    hooks.stop()


def our_hooks(standin):
    return [
        (hook["type"], hook["states"], hook["config"]["url"])
        for hook in standin.tables["cloud_hook"].values()
    ]


def test_registering_leaves_exactly_one_alert_hook(standin, stack_env, receiver):
    alerting = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url}
    register(alerting)
    register(alerting)
    assert our_hooks(standin) == [("SLACK_WEBHOOK", ["FAILED", "TIMEDOUT"], receiver.url)]
    (hook,) = standin.tables["cloud_hook"].values()
    assert hook["version_group_id"] == only_flow(standin)["version_group_id"]

    register({**alerting, "NOTIFY_ON": "all"})
    assert our_hooks(standin) == [
        ("SLACK_WEBHOOK", ["CANCELLED", "FAILED", "SUCCESS", "TIMEDOUT"], receiver.url)
    ]
    register(stack_env)  # no URL: no alerts
    assert our_hooks(standin) == []
    output = "".join(result.stdout + result.stderr for result in [register(alerting)])
    assert receiver.url not in output and "secret" not in output


@pytest.mark.parametrize(
    "n_users, api_fault, message",
    [
        (0, None, "n_users must be a whole number"),
        (5, "500", "it answered 500 Internal Server Error"),
    ],
)
def test_a_failed_run_posts_one_alert(n_users, api_fault, message, standin, stack_env, users_api, receiver):
    users_api.always = api_fault
    env = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url}
    run_id, _, result = adhoc_run(standin, env, n_users)

    assert standin.tables["flow_run"][run_id]["state"] == "Failed"
    (alert,) = receiver.texts()
    name = standin.tables["flow_run"][run_id]["name"]
    assert alert[0] == f"Run `{name}` of flow `Users report` entered a new state:"
    assert alert[1] == "*State:* `Failed`" and message in alert[2]
    assert alert[3] == f"*Link:* http://localhost:4200/default/flow-run/{run_id}"


@pytest.mark.parametrize("notify_on, alerts", [("failed", 0), ("all", 1)])
def test_a_successful_run_is_silent_unless_asked(notify_on, alerts, standin, stack_env, receiver):
    env = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url, "NOTIFY_ON": notify_on}
    run_id, _, result = adhoc_run(standin, env, 3)

    assert standin.tables["flow_run"][run_id]["state"] == "Success"
    texts = receiver.texts(seconds=2)
    assert len(texts) == alerts and all(text[1] == "*State:* `Success`" for text in texts)


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_a_broken_receiver_changes_no_run(mode, standin, stack_env):
    receiver = WebhookReceiver(mode=mode, hang_seconds=10)
    try:
        env = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url, "NOTIFY_ON": "all"}
        begun = time.monotonic()
        failed_id, _, _ = adhoc_run(standin, env, 0)
        succeeded_id, _, _ = adhoc_run(standin, env, 4)
        assert time.monotonic() - begun < 60  # no state change waited 10 s for a hung receiver
        assert standin.tables["flow_run"][failed_id]["state"] == "Failed"
        assert standin.tables["flow_run"][succeeded_id]["state"] == "Success"
        assert len(receiver.texts()) >= 1
    finally:
        receiver.stop()


# ---- a run whose container died: towel's zombie killer and lazarus, then the agent --------


def kill_during_download(standin, run_id, create, env, finished=0) -> None:
    """Starts the container; once it is downloading a page, with `finished` pages done,
    kills all its processes."""
    container = start_container_here(create, env)
    deadline = time.monotonic() + 60
    while True:
        downloads = [
            run["state"]
            for (slug, index), run in task_runs(standin, run_id).items()
            if slug == "download_data-1" and index >= 0
        ]
        if "Running" in downloads and downloads.count("Success") == finished:
            break
        assert container.poll() is None and time.monotonic() < deadline, container.communicate()
        time.sleep(0.1)
    os.killpg(container.pid, signal.SIGKILL)
    container.communicate()


def test_a_run_whose_container_died_is_retried_in_a_new_container(standin, stack_env, users_api):
    """The zombie killer sets the download that was running Retrying (HTTP_RETRIES=1); the
    server hands the Running run with a due retry back to the agent, which starts a new
    container: the run finishes with the pages the first container had, reading the results
    of its finished tasks from the run's staging folder."""
    users_api.faults, users_api.slow_seconds = [None, None, "slow"], 30
    env = {**stack_env, "PAGE_SIZE": "5"}
    run_id, create, _ = adhoc_run(standin, env, 12, start=False)
    kill_during_download(standin, run_id, create, env, finished=2)

    assert standin.run_towel(heartbeat_older_than=0) == {"zombie_task_runs": 1, "rescheduled_flow_runs": 0}
    assert sorted(
        run["state"]
        for (slug, index), run in task_runs(standin, run_id).items()
        if slug == "download_data-1" and index >= 0
    ) == ["Retrying", "Success", "Success"]
    time.sleep(3.5)  # the agent leaves a retry 3 s to the container that set it
    (create,) = agent_polls(env)
    result = run_container_here(create, env)

    run = standin.tables["flow_run"][run_id]
    assert run["state"] == "Success", run["state_message"] + result.stdout[-3000:] + result.stderr[-3000:]
    pages = Counter(query["page"] for query in users_api.requests)
    assert sorted(pages.values()) == [1, 1, 2]  # only the page being downloaded, again
    host_dir = Path(env["HOST_REPORTS_DIR"])
    with open(host_dir / "report.csv", newline="", encoding="utf-8") as handle:
        assert len(list(csv.reader(handle))) == 1 + 12
    names = report_names(host_dir)  # no staging folder or results left behind
    assert len(names) == 2 and names[0] == "report.csv" and names[1].endswith(f"-{run_id[:8]}.csv")


def test_a_run_whose_container_died_without_retries_left_fails_and_alerts(
    standin, stack_env, users_api, receiver
):
    """The zombie killer fails the running download (no retries left); lazarus, finding no
    task run running or waiting, schedules the run again; the new container ends it Failed,
    saying why, and the server posts the alert."""
    users_api.faults, users_api.slow_seconds = ["slow"], 30
    env = {**stack_env, "HTTP_RETRIES": "0", "NOTIFY_WEBHOOK_URL": receiver.url}
    run_id, create, _ = adhoc_run(standin, env, 12, start=False)
    kill_during_download(standin, run_id, create, env)

    assert standin.run_towel(heartbeat_older_than=0) == {"zombie_task_runs": 1, "rescheduled_flow_runs": 1}
    assert standin.tables["flow_run"][run_id]["state"] == "Scheduled"
    # On the server lazarus takes a run only after 10 minutes without a heartbeat: the 30 s
    # submitted lock of its first deployment has long expired by then.
    standin.submitted_locks.clear()
    (create,) = agent_polls(env)
    run_container_here(create, env)

    run = standin.tables["flow_run"][run_id]
    assert run["state"] == "Failed"
    dead = "No heartbeat detected from the remote task; marking the run as failed."
    assert dead in run["state_message"]
    (alert,) = receiver.texts()
    assert alert[1] == "*State:* `Failed`" and dead in alert[2]
    assert report_names(Path(env["HOST_REPORTS_DIR"])) == []
