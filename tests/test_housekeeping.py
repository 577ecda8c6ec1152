"""The "Server housekeeping" flow, run as the agent runs it, against the API stand-in: what
it deletes, ends and reports, and what it leaves alone."""

import pendulum
import prefect
from prefect.engine.state import Failed, Running, Success

from tests.support.agent_runs import agent_polls, client, register, run_container_here, states_of


def flow_id_of(standin, name):
    (flow,) = [flow for flow in standin.tables["flow"].values() if flow["name"] == name]
    return flow["id"]


def run_of_users_report(standin, state=None, labels=None, scheduled_ago=None) -> str:
    """A Users report run with a task run that logged, kept an artifact, and then `state`."""
    api = prefect.Client()
    start = pendulum.now("UTC").subtract(hours=scheduled_ago) if scheduled_ago else None
    run_id = api.create_flow_run(
        flow_id=flow_id_of(standin, "Users report"), labels=labels, scheduled_start_time=start
    )
    if state is None:
        return run_id
    api.set_flow_run_state(run_id, Running())
    task_run_id = next(
        run["id"] for run in standin.tables["task_run"].values() if run["flow_run_id"] == run_id
    )
    api.set_task_run_state(task_run_id, Success())
    api.write_run_logs([{"flow_run_id": run_id, "task_run_id": task_run_id, "message": "Dados baixados"}])
    api.create_task_run_artifact(task_run_id, kind="markdown", data={"markdown": "10 users"})
    if state != "Running":
        api.set_flow_run_state(run_id, state)
    return run_id


def backdate(standin, run_id, column, **interval):
    """The run as it would be after time passed: `column` `interval` earlier."""
    run = standin.tables["flow_run"][run_id]
    run[column] = pendulum.parse(run[column]).subtract(**interval).isoformat()


def rows_of(standin, run_id) -> dict:
    task_runs = {id for id, run in standin.tables["task_run"].items() if run["flow_run_id"] == run_id}
    return {
        "flow_run": int(run_id in standin.tables["flow_run"]),
        "task_run": len(task_runs),
        "flow_run_state": sum(
            row["flow_run_id"] == run_id for row in standin.tables["flow_run_state"].values()
        ),
        "task_run_state": sum(
            row["task_run_id"] in task_runs for row in standin.tables["task_run_state"].values()
        ),
        "log": sum(row["flow_run_id"] == run_id for row in standin.tables["log"].values()),
        "task_run_artifact": sum(
            row["task_run_id"] in task_runs for row in standin.tables["task_run_artifact"].values()
        ),
    }


def housekeeping_run(standin, env, **parameters):
    """A run of the housekeeping flow, claimed by the agent and run in its container here."""
    with client(standin):
        run_id = prefect.Client().create_flow_run(
            flow_id=flow_id_of(standin, "Server housekeeping"), parameters=parameters
        )
    (create,) = [
        call for call in agent_polls(env) if call["environment"]["PREFECT__CONTEXT__FLOW_RUN_ID"] == run_id
    ]
    result = run_container_here(create, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return standin.tables["flow_run"][run_id]


def test_housekeeping_deletes_old_ended_runs_ends_stuck_ones_and_fails_naming_late_ones(standin, stack_env):
    register(stack_env, flow=None)
    with client(standin):
        old = {state: run_of_users_report(standin, state()) for state in (Success, Failed)}
        for run_id in old.values():
            backdate(standin, run_id, "end_time", days=2)
        recent = run_of_users_report(standin, Success())
        running = run_of_users_report(standin, "Running")
        backdate(standin, running, "start_time", days=3)  # started long ago, but beats and moves
        stuck = run_of_users_report(standin, "Running")
        backdate(standin, stuck, "state_timestamp", hours=25)
        # Labels no agent has: no agent takes it.
        late = run_of_users_report(standin, labels=["another-office"], scheduled_ago=2)
    kept = {run_id: rows_of(standin, run_id) for run_id in (recent, running, stuck, late)}
    assert all(rows_of(standin, old[Success]).values())  # a row in each of its tables

    # A bad keep_days: the run fails saying what is allowed, and touches nothing.
    refused = housekeeping_run(standin, stack_env, keep_days="forever")
    assert refused["state"] == "Failed"
    assert refused["state_message"] == (
        "keep_days='forever' is not allowed: use a number of days from 0 to 36,500 "
        "(0 keeps every run; empty takes SERVER_KEEP_DAYS)"
    )
    assert all(run_id in standin.tables["flow_run"] for run_id in old.values())
    assert standin.tables["flow_run"][stuck]["state"] == "Running"

    run = housekeeping_run(standin, stack_env, keep_days=1)

    # The runs that ended 2 days ago went, with every row that was theirs.
    for run_id in old.values():
        assert set(rows_of(standin, run_id).values()) == {0}
    # Recent, running and late runs, and the refused housekeeping run, stay as they were.
    assert refused["id"] in standin.tables["flow_run"]
    assert standin.tables["flow_run"][recent]["state"] == "Success"
    assert standin.tables["flow_run"][running]["state"] == "Running"
    assert standin.tables["flow_run"][late]["state"] == "Scheduled"
    # The stuck run was ended as Failed (its alert fires), saying why.
    stuck_run = standin.tables["flow_run"][stuck]
    assert states_of(standin, stuck)[-1] == "Failed"
    assert stuck_run["state_message"].startswith("Ended by Server housekeeping: Running since ")
    assert stuck_run["state_message"].endswith(", more than 24 h (RUN_MAX_HOURS)")
    assert {run_id: rows_of(standin, run_id) for run_id in kept} == {
        **kept,
        stuck: {**kept[stuck], "flow_run_state": kept[stuck]["flow_run_state"] + 1},
    }
    # The late run fails the housekeeping, named, so that its alert reaches someone.
    late_run = standin.tables["flow_run"][late]
    assert run["state"] == "Failed"
    assert run["state_message"] == (
        "1 scheduled runs are late by more than 60 min (LATE_MINUTES): no agent takes them "
        f"(is one up, with their labels?): Users report / {late_run['name']} (due {late_run['state_start_time']})"
    )
    # Its artifact says what went and what the tables held before and after.
    task_runs = {row["id"] for row in standin.tables["task_run"].values() if row["flow_run_id"] == run["id"]}
    (artifact,) = [
        row for row in standin.tables["task_run_artifact"].values() if row["task_run_id"] in task_runs
    ]
    markdown = artifact["data"]["markdown"]
    assert "- Deleted 2 ended runs, with their task runs, states and logs: Users report 2." in markdown
    assert f"  - Users report / {stuck_run['name']}: Running since " in markdown
    runs_now = len(standin.tables["flow_run"])
    assert f"| flow_run | {runs_now + 2:,} | {runs_now:,} |" in markdown
