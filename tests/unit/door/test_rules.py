"""door/rules.py: one test per row of the table (its role may, the role below may not), each
argument check's forbidden forms, and what no role may send."""

import pytest

from door.requests import Field
from door.rules import AGENT, AGENT_MUTATIONS, MUTATIONS, ROLES, monitoring_refusal, refusal

RUN_CONFIG = {"type": "DockerRun", "image": "users-report-flow:abc", "labels": ["users-report"]}
SETTINGS = {
    "NOTIFY_WEBHOOK_URL": "https://hooks.example.org/alerts",
    "flows": {"f": {"id": "f", "run_config": RUN_CONFIG, "flow_group": {"labels": ["users-report"]}}},
}
# Arguments each row's check accepts: the UI's own.
ALLOWED_ARGUMENTS = {
    # As the Run page sends it (PrefectHQ/ui src/pages/Flow/Run.vue): the run config's labels emptied.
    "create_flow_run": {
        "input": {
            "flow_id": "f",
            "parameters": {"n_users": 50},
            "flow_run_name": "big",
            "context": {},
            "run_config": {**RUN_CONFIG, "labels": []},
            "labels": ["users-report"],
        }
    },
    "set_flow_run_states": {
        "input": {"states": [{"flow_run_id": "r", "version": 3, "state": {"type": "Scheduled"}}]}
    },
    "set_task_run_states": {
        "input": {"states": [{"task_run_id": "t", "version": 2, "state": {"type": "Pending"}}]}
    },
    "create_cloud_hook": {
        "input": {"type": "WEBHOOK", "config": {"url": "https://hooks.example.org/alerts"}}
    },
}


def mutation(name, arguments=None):
    return Field("mutation", name, arguments if arguments is not None else ALLOWED_ARGUMENTS.get(name, {}))


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_row_its_role_and_above_may_the_role_below_may_not(name):
    least = ROLES.index(MUTATIONS[name].role)
    for role in ROLES[least:]:
        assert refusal(mutation(name), role, SETTINGS) is None, role
    for role in ROLES[:least]:
        assert (
            refusal(mutation(name), role, SETTINGS) == f"{name}: {MUTATIONS[name].role} or above, not {role}"
        )


@pytest.mark.parametrize("name", sorted(AGENT_MUTATIONS))
def test_an_agent_may_send_its_own_operations_and_no_person_may_send_the_runners(name):
    success = {"input": {"states": [{"task_run_id": "t", "version": 1, "state": {"type": "Success"}}]}}
    assert refusal(mutation(name, success), AGENT, SETTINGS) is None
    if name not in MUTATIONS:
        for role in ROLES:
            assert refusal(mutation(name, success), role, SETTINGS) == (
                f"{name}: agents only (API_TOKEN), not {role}"
            )


@pytest.mark.parametrize(
    "name", ["create_flow_run", "cancel_flow_run", "delete_flow_run", "set_schedule_inactive"]
)
def test_an_agent_token_starts_stops_and_deletes_nothing(name):
    assert refusal(mutation(name), AGENT, SETTINGS) == f"{name}: no role may send it through the door"


def test_a_maintainer_may_send_a_run_to_other_labels_an_operator_may_not():
    other_labels = mutation("create_flow_run", {"input": {"flow_id": "f", "labels": ["e2e-remote"]}})
    assert refusal(other_labels, "maintainer", SETTINGS) is None
    assert refusal(other_labels, "operator", SETTINGS) == (
        "create_flow_run: no role may send a run with labels other than the flow's (maintainer or above)"
    )


@pytest.mark.parametrize(
    "name",
    ["create_flow", "create_flow_from_compressed_string", "create_project", "create_tenant", "delete_project",
     "update_flow_project", "set_secret", "register_tasks", "register_edges", "set_flow_group_run_config"],
)  # fmt: skip
def test_registering_or_changing_flows_projects_tenants_is_nobodys(name):
    for role in (*ROLES, AGENT):
        assert refusal(mutation(name), role, SETTINGS) == f"{name}: no role may send it through the door"


@pytest.mark.parametrize(
    "name, arguments, said",
    [
        ("set_flow_run_states", {"input": {"states": [{"state": {"type": "Running"}}]}}, "flow run state 'Running' (allowed: Cancelled, Failed, Scheduled)"),
        ("set_flow_run_states", {"input": {"states": [{"state": {"type": "Success"}}]}}, "flow run state 'Success' (allowed: Cancelled, Failed, Scheduled)"),
        ("set_flow_run_states", {"input": {"states": [{"state": {"type": "Failed", "_result": {"type": "LocalResult", "location": "/x"}}}]}}, "a state carrying _result"),
        ("set_task_run_states", {"input": {"states": [{"state": {"type": "Success"}}]}}, "task run state 'Success' (allowed: Pending)"),
        ("set_task_run_states", {"input": {"states": [{"state": {"type": "Pending", "cached_inputs": {"data": {}}}}]}}, "a state carrying cached_inputs"),
        ("set_task_run_states", {"input": {"states": ["Pending"]}}, "task run states must be objects"),
        ("create_flow_run", {"input": {"flow_id": "f", "run_config": {"type": "DockerRun", "image": "evil"}}}, "a run with its own run_config"),
        ("create_flow_run", {"input": {"flow_id": "f", "run_config": {**RUN_CONFIG, "host_config": {"binds": ["/:/host"]}}}}, "a run with its own run_config"),
        ("create_flow_run", {"input": {"flow_id": "other"}}, "a run of a flow that is not registered (by flow_id)"),
        ("create_flow_run", {"input": {"flow_id": "f", "context": ["x"]}}, "a run with its own context"),
        ("create_cloud_hook", {"input": {"type": "WEBHOOK", "config": {"url": "http://hasura:3000/v1/query"}}}, "an alert hook to any address but NOTIFY_WEBHOOK_URL"),
    ],
)  # fmt: skip
def test_forbidden_arguments_are_refused_to_every_role_admin_included(name, arguments, said):
    assert refusal(mutation(name, arguments), "admin", SETTINGS) == f"{name}: no role may send {said}"


@pytest.mark.parametrize(
    "name", ["create_flow_run", "set_flow_run_states", "create_cloud_hook", "delete_flow_run"]
)
def test_an_input_that_is_not_an_object_is_refused_not_a_crash(name):
    for given in ("x", ["x"], 3):
        assert (
            refusal(mutation(name, {"input": given}), "admin", SETTINGS)
            == f"{name}: its input must be an object"
        )


def test_an_alert_hook_whose_config_is_not_an_object_is_refused():
    hook = mutation(
        "create_cloud_hook", {"input": {"type": "WEBHOOK", "config": "https://hooks.example.org/alerts"}}
    )
    assert refusal(hook, "admin", SETTINGS) == (
        "create_cloud_hook: no role may send an alert hook to any address but NOTIFY_WEBHOOK_URL"
    )


def test_no_alert_hook_at_all_without_notify_webhook_url():
    assert refusal(mutation("create_cloud_hook"), "admin", {}) == (
        "create_cloud_hook: no role may send an alert hook to any address but NOTIFY_WEBHOOK_URL"
    )


def test_reads_are_open_but_the_hooks_secret_is_admins():
    for role in ROLES:
        assert refusal(Field("query", "flow_run", {"where": {}}), role, SETTINGS) is None
        assert refusal(Field("query", "some_hasura_field_we_never_heard_of"), role, SETTINGS) is None
    assert (
        refusal(Field("query", "cloud_hook"), "maintainer", SETTINGS)
        == "cloud_hook holds a secret: admin only, not maintainer"
    )
    assert refusal(Field("query", "cloud_hook"), "admin", SETTINGS) is None


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/prometheus/graph"),
        ("GET", "/alertmanager/api/v2/alerts"),
        ("HEAD", "/alertmanager/"),
        ("POST", "/prometheus/api/v1/query"),  # its UI's and Grafana's queries
        ("POST", "/prometheus/api/v1/query_range"),
    ],
)
def test_every_person_reads_the_monitoring_pages_and_the_token_does_not(method, path):
    for role in ROLES:
        assert monitoring_refusal(method, path, role) is None, role
    assert (
        monitoring_refusal(method, path, AGENT) == "the monitoring pages: people only, not the agents' token"
    )


@pytest.mark.parametrize("method, path", [("POST", "/alertmanager/api/v2/silences"), ("DELETE", "/alertmanager/api/v2/silence/3f2a"), ("POST", "/alertmanager/api/v1/silences")])  # fmt: skip
def test_a_silence_is_a_maintainers_and_above(method, path):
    assert monitoring_refusal(method, path, "maintainer") is None
    assert monitoring_refusal(method, path, "admin") is None
    assert monitoring_refusal(method, path, "operator") == "a silence: maintainer or above, not operator"
    assert monitoring_refusal(method, path, "viewer") == "a silence: maintainer or above, not viewer"


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/alertmanager/api/v2/alerts"),  # a forged alert, or one resolved by hand
        ("POST", "/alertmanager/api/v1/alerts"),
        ("POST", "/prometheus/api/v1/admin/tsdb/delete_series"),
        ("PUT", "/prometheus/api/v1/admin/tsdb/snapshot"),
        ("POST", "/prometheus/-/quit"),
        ("POST", "/alertmanager/-/reload"),
        ("PUT", "/alertmanager/api/v2/silences"),
        ("POST", "/alertmanager/api/v2/silences/extra"),
    ],
)
def test_no_role_changes_anything_else_there(method, path):
    assert (
        monitoring_refusal(method, path, "admin") == f"{method} {path}: no role may send it through the door"
    )
