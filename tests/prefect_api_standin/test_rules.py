"""The API stand-in follows Prefect Server 0.15.9 where a difference could hide a real failure
or invent a false one (PrefectHQ/server 0f74a9a: graphql/schema/*.graphql for the types,
api/runs.py, api/flows.py, api/states.py, graphql/flows.py, graphql/states.py and
graphql/artifacts.py for the behaviour)."""

from unittest import mock

import pendulum
import prefect
from prefect.agent.docker import DockerAgent
from prefect.engine.state import Running, Submitted
from prefect.utilities.configuration import set_temporary_config

from agent.start import build_agent
from stack.settings import load_stack_settings
from tests.support.agent_probe import FakeDockerClient
from tests.support.agent_runs import client, only_flow, register, states_of
from tests.support.ui_operations import FLOW_PAGE_QUERY

# (type, field): the type the real server declares.
REAL_TYPES = {
    ("create_flow_run_input", "scheduled_start_time"): "DateTime",
    ("get_runs_in_queue_input", "before"): "DateTime",
    ("write_run_log_input", "timestamp"): "DateTime",
    ("write_run_log_input", "level"): "log_level",
    ("create_project_input", "tenant_id"): "UUID!",
    ("create_flow_run_input", "version_group_id"): "String",
    ("success_payload", "error"): "String",
}


def test_types_are_the_real_servers(standin):
    types = standin.schema.type_map
    assert {key: str(types[key[0]].fields[key[1]].type) for key in REAL_TYPES} == REAL_TYPES
    assert [
        str(types["Query"].fields[name].args["id"].type)
        for name in ("flow_by_pk", "flow_run_by_pk", "task_run_by_pk", "flow_group_by_pk")
    ] == ["uuid!"] * 4
    assert set(types["project"].fields) >= {"created", "description", "flows_aggregate"}
    assert {"order_by", "offset"} <= set(types["Query"].fields["project"].args)
    assert {"default_parameters", "labels", "settings", "schedule", "flows"} <= set(
        types["flow_group"].fields
    )


def test_what_the_real_server_refuses_is_refused(standin):
    answers = [
        standin.execute(FLOW_PAGE_QUERY.replace("$id: uuid!", "$id: UUID!"), {"id": "x"}),
        standin.execute(
            "mutation($t: timestamptz) { create_flow_run(input: {scheduled_start_time: $t}) { id } }",
            {"t": "2026-01-01T00:00:00Z"},
        ),
        standin.execute(
            'mutation { write_run_logs(input: {logs: [{flow_run_id: "x", level: LOUD}]}) { success } }'
        ),
    ]
    messages = [answer["errors"][0]["message"] for answer in answers]
    assert "Variable '$id' of type 'UUID!' used in position expecting type 'uuid!'." in messages[0]
    assert "Variable '$t' of type 'timestamptz' used in position expecting type 'DateTime'." in messages[1]
    assert "Value 'LOUD' does not exist in 'log_level' enum." in messages[2]


def agent_queue(standin, labels):
    tenant = next(iter(standin.tables["tenant"]))
    answer = standin.execute(
        "mutation($input: get_runs_in_queue_input!) { get_runs_in_queue(input: $input) { flow_run_ids } }",
        {"input": {"tenant_id": tenant, "labels": labels}},
    )
    return answer["data"]["get_runs_in_queue"]["flow_run_ids"]


def test_the_queue_hands_an_agent_at_most_25_runs_oldest_first_and_only_its_labels(standin, stack_env):
    register(stack_env)
    flow_id, past = only_flow(standin)["id"], pendulum.now("UTC").subtract(hours=1)
    labelled = [
        standin.create_flow_run(flow_id=flow_id, scheduled_start_time=past.add(minutes=m).isoformat())["id"]
        for m in range(30, 0, -1)
    ]  # made newest first
    unlabelled = standin.create_flow_run(
        flow_id=flow_id,
        labels=[],  # the oldest of all
        scheduled_start_time=past.isoformat(),
    )["id"]

    assert agent_queue(standin, ["users-report"]) == labelled[::-1][:25]
    assert agent_queue(standin, ["users-report", "other"])[:1] == [labelled[-1]]
    assert agent_queue(standin, []) == [unlabelled]


def test_a_run_is_created_by_version_group_once_per_idempotency_key(standin, stack_env):
    register(stack_env)
    flow = only_flow(standin)
    first = standin.create_flow_run(version_group_id=flow["version_group_id"], idempotency_key="k")
    again = standin.create_flow_run(flow_id=flow["id"], idempotency_key="k")

    assert first["flow_id"] == flow["id"] and again["id"] == first["id"]


def test_state_updates_ignore_the_version_sent(standin, stack_env):
    """Prefect's runners send versions that the real server never checks."""
    register(stack_env)
    run = standin.create_flow_run(flow_id=only_flow(standin)["id"])
    answer = standin.execute(
        "mutation($input: set_flow_run_states_input!) { set_flow_run_states(input: $input) { states { status } } }",
        {"input": {"states": [{"flow_run_id": run["id"], "version": 99, "state": Running().serialize()}]}},
    )

    assert answer["data"]["set_flow_run_states"]["states"] == [{"status": "SUCCESS"}]
    assert states_of(standin, run["id"]) == ["Running"]


def test_a_new_version_archives_the_old_one_and_its_waiting_runs(standin, stack_env):
    register(stack_env)
    old = only_flow(standin)
    waiting = standin.create_flow_run(
        flow_id=old["id"], scheduled_start_time=pendulum.now("UTC").add(days=1).isoformat()
    )
    scheduled_before = {run["id"] for run in standin.tables["flow_run"].values() if run["auto_scheduled"]}

    register({**stack_env, "SCHEDULE_N_USERS": "25"})

    new = next(flow for flow in standin.tables["flow"].values() if not flow["archived"])
    assert (old["archived"], new["version"], new["version_group_id"]) == (True, 2, old["version_group_id"])
    runs = standin.tables["flow_run"]
    assert not scheduled_before & set(runs)  # the old version's auto-scheduled runs are gone
    assert (runs[waiting["id"]]["state"], runs[waiting["id"]]["state_message"]) == (
        "Cancelled",
        f"Flow {old['id']} was archived.",
    )
    scheduled_now = [run for run in runs.values() if run["auto_scheduled"]]
    assert len(scheduled_now) == 10 and all(run["flow_id"] == new["id"] for run in scheduled_now)
    assert all(run["parameters"] == {"n_users": 25} for run in scheduled_now)


def test_archive_flow_takes_its_schedule_and_waiting_runs_away(standin, stack_env):
    """api/flows.py archive_flow, as a maintainer sends it through the door."""
    register(stack_env)
    flow = only_flow(standin)
    with client(standin):
        answer = prefect.Client().graphql(
            {"mutation": {f'archive_flow(input: {{flow_id: "{flow["id"]}"}})': {"success"}}}
        )
    assert answer.data.archive_flow.success and flow["archived"] and not flow["is_schedule_active"]
    assert not [run for run in standin.tables["flow_run"].values() if run["flow_id"] == flow["id"]]


def test_towel_leaves_live_runs_alone_and_lazarus_gives_up_after_three_attempts(standin, stack_env):
    """services/towel: only a heartbeat older than the cutoff counts; lazarus reschedules a
    run 3 times, then fails it."""
    register(stack_env)
    run = standin.create_flow_run(flow_id=only_flow(standin)["id"])
    standin.set_states("flow_run", [{"flow_run_id": run["id"], "state": Running().serialize()}])
    n_users = next(task["id"] for task in standin.tables["task"].values() if task["slug"] == "n_users")
    task_run = next(
        t
        for t in standin.tables["task_run"].values()
        if t["task_id"] == n_users and t["flow_run_id"] == run["id"]
    )
    standin.set_states("task_run", [{"task_run_id": task_run["id"], "state": Running().serialize()}])

    assert standin.run_towel(heartbeat_older_than=600) == {"zombie_task_runs": 0, "rescheduled_flow_runs": 0}
    # One pass: the zombie killer fails the task (a parameter has no retries), then lazarus
    # finds nothing running or waiting and schedules the run again.
    assert standin.run_towel(heartbeat_older_than=0) == {"zombie_task_runs": 1, "rescheduled_flow_runs": 1}
    assert task_run["state"] == "Failed" and run["state"] == "Scheduled"
    for attempt in range(2):
        standin.set_states("flow_run", [{"flow_run_id": run["id"], "state": Running().serialize()}])
        assert standin.run_towel(heartbeat_older_than=0)["rescheduled_flow_runs"] == 1
    standin.set_states("flow_run", [{"flow_run_id": run["id"], "state": Running().serialize()}])
    assert standin.run_towel(heartbeat_older_than=0)["rescheduled_flow_runs"] == 0
    assert run["state"] == "Failed" and run["state_message"] == (
        "A Lazarus process attempted to reschedule this run 3 times without success. Marking as failed."
    )
    assert states_of(standin, run["id"]).count("Scheduled") == 3


SET_STATES = (
    "mutation($input: set_{0}_states_input!) {{ set_{0}_states(input: $input) {{ states {{ status }} }} }}"
)


def set_state(standin, table, run_id, state):
    return standin.execute(
        SET_STATES.format(table), {"input": {"states": [{f"{table}_id": run_id, "state": state.serialize()}]}}
    )


def test_a_run_is_submitted_once_in_30_seconds(standin, stack_env):
    """api/states.py submitted_state_lock: what keeps two agents from deploying one run."""
    register(stack_env)
    run = standin.create_flow_run(flow_id=only_flow(standin)["id"])

    assert "errors" not in set_state(standin, "flow_run", run["id"], Submitted())
    again = set_state(standin, "flow_run", run["id"], Submitted())
    assert again["errors"][0]["message"] == "State update failed: this run has already been submitted."
    assert states_of(standin, run["id"]) == ["Submitted"]


def test_two_agents_sharing_a_label_deploy_a_run_once(standin, stack_env, monkeypatch):
    """Both see the run Scheduled; the second one's Submitted is refused by the lock, and
    Prefect's agent then leaves the run alone (agent/agent.py _deploy_flow_run)."""
    register(stack_env)
    run = standin.create_flow_run(flow_id=only_flow(standin)["id"])
    for name, value in stack_env.items():
        monkeypatch.setenv(name, value)
    dockers = [FakeDockerClient(), FakeDockerClient()]
    with (
        client(standin),
        set_temporary_config({"backend": "server"}),
        mock.patch.object(DockerAgent, "stream_flow_logs"),
    ):
        agents = []
        for docker in dockers:
            with mock.patch.object(DockerAgent, "_get_docker_client", lambda agent, docker=docker: docker):
                agents.append(build_agent(load_stack_settings()))
        claimed = [agent._get_flow_run_metadata([run["id"]]) for agent in agents]
        for agent, (flow_run,) in zip(agents, claimed):
            agent._deploy_flow_run(flow_run)

    created = [name for docker in dockers for name, _, _ in docker.calls if name == "create_container"]
    assert created == ["create_container"]
    assert standin.tables["flow_run"][run["id"]]["state"] == "Submitted"


def test_a_task_run_runs_only_while_its_flow_run_runs(standin, stack_env):
    register(stack_env)
    run = standin.create_flow_run(flow_id=only_flow(standin)["id"])
    task_run = next(t for t in standin.tables["task_run"].values() if t["flow_run_id"] == run["id"])

    answer = set_state(standin, "task_run", task_run["id"], Running())
    assert answer["errors"][0]["message"] == (
        f"State update failed for task run ID {task_run['id']}: provided a running state but "
        f"associated flow run {run['id']} is not in a running state."
    )
    set_state(standin, "flow_run", run["id"], Running())
    assert "errors" not in set_state(standin, "task_run", task_run["id"], Running())


def test_the_queue_looks_at_the_75_oldest_runs_before_their_labels(standin, stack_env):
    """api/runs.py get_runs_in_queue: 3 x 25 runs are fetched oldest first, then filtered
    by label: a backlog of another label's runs hides this agent's newer ones."""
    register(stack_env)
    flow_id, past = only_flow(standin)["id"], pendulum.now("UTC").subtract(hours=2)
    for minute in range(75):
        standin.create_flow_run(
            flow_id=flow_id, labels=["site-b"], scheduled_start_time=past.add(minutes=minute).isoformat()
        )
    ours = standin.create_flow_run(flow_id=flow_id, scheduled_start_time=past.add(minutes=80).isoformat())

    assert ours["id"] not in agent_queue(standin, ["users-report"])
    assert len(agent_queue(standin, ["site-b"])) == 25


def test_an_artifact_needs_its_task_run_and_at_most_1_mb(standin, stack_env):
    register(stack_env)
    run = standin.create_flow_run(flow_id=only_flow(standin)["id"])
    task_run = next(t for t in standin.tables["task_run"].values() if t["flow_run_id"] == run["id"])
    create = (
        "mutation($input: create_task_run_artifact_input!) { create_task_run_artifact(input: $input) { id } }"
    )

    def artifact(task_run_id, text):
        return standin.execute(
            create, {"input": {"task_run_id": task_run_id, "kind": "markdown", "data": {"markdown": text}}}
        )

    assert "errors" not in artifact(task_run["id"], "# fine")
    unknown = "00000000-0000-0000-0000-000000000000"
    assert artifact(unknown, "# x")["errors"][0]["message"] == f"Task run {unknown} not found"
    assert (
        artifact(task_run["id"], "x" * 1_000_000)["errors"][0]["message"]
        == "Artifact data payload exceedes 1Mb limit."
    )
    assert len(standin.tables["task_run_artifact"]) == 1


def test_a_log_sent_without_a_timestamp_is_stamped_and_ordered(standin, stack_env):
    """The agent writes its own lines without one (api/logs.py stamps them now)."""
    register(stack_env)
    run = standin.create_flow_run(flow_id=only_flow(standin)["id"])
    write = "mutation($input: write_run_logs_input!) { write_run_logs(input: $input) { success } }"
    standin.execute(
        write,
        {
            "input": {
                "logs": [
                    {
                        "flow_run_id": run["id"],
                        "message": "sent first",
                        "timestamp": "2026-01-01T00:00:00+00:00",
                    },
                    {"flow_run_id": run["id"], "message": "the agent's line"},
                ]
            }
        },
    )
    answer = standin.execute(
        "query($id: uuid!) { flow_run_by_pk(id: $id) { logs(order_by: {timestamp: asc}) { message } } }",
        {"id": run["id"]},
    )

    assert [log["message"] for log in answer["data"]["flow_run_by_pk"]["logs"]] == [
        "sent first",
        "the agent's line",
    ]


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
