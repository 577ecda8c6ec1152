"""The door in front of the API stand-in, with the Users report registered by register.py
and its people in a real PostgreSQL: what it lets through reaches apollo and happens; what it
refuses is a 403 naming the field and the role, leaves nothing behind (no state, no flow, no
hook, no run), and is on record with who tried."""

import base64
import importlib

import pytest
from starlette.testclient import TestClient

from tests.support.agent_runs import only_flow, register

TOKEN = "agent-token-for-the-tests"
CREATE = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"


@pytest.fixture
def open_door(standin, stack_env, people, postgres_url, monkeypatch):
    """A door as `make up` starts it: on loopback, or with `login` its PUBLIC=1 mode."""
    register(stack_env)
    monkeypatch.setenv("DOOR_APOLLO_URL", standin.url)
    monkeypatch.setenv("DOOR_DATABASE_URL", postgres_url)
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", "https://hooks.example.org/alerts")
    monkeypatch.setenv("API_TOKEN", TOKEN)
    opened = []

    def start(login: bool = False) -> TestClient:
        monkeypatch.setenv("DOOR_LOGIN", "required" if login else "")
        import door.app

        client = TestClient(importlib.reload(door.app).app).__enter__()
        opened.append(client)
        return client

    yield start
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def door(open_door):
    return open_door()


def login(people, role: str) -> dict:
    password = people.set(role + "1", role)
    return {"Authorization": "Basic " + base64.b64encode(f"{role}1:{password}".encode()).decode()}


def graphql(door, query, variables=None, **headers):
    return door.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


def run_page_input(flow, **changes):
    """create_flow_run's input as the UI's Run page sends it (Run.vue)."""
    run_config = {**flow["run_config"], "labels": []}
    return {
        "input": {
            "flow_id": flow["id"],
            "parameters": {"n_users": 37},
            "context": {},
            "run_config": run_config,
            **changes,
        }
    }


def tables(standin):
    return {name: dict(rows) for name, rows in standin.tables.items()}


def test_a_run_with_parameters_goes_through_as_the_run_page_starts_it_and_is_on_record(door, standin, people):
    answer = graphql(door, CREATE, run_page_input(only_flow(standin)))
    assert answer.status_code == 200, answer.text
    run_id = answer.json()["data"]["create_flow_run"]["id"]
    assert standin.tables["flow_run"][run_id]["parameters"] == {"n_users": 37}
    (entry,) = people.recent()
    assert (entry["caller"], entry["role"], entry["field"], entry["allowed"]) == (
        "local",
        "admin",
        "create_flow_run",
        True,
    )
    assert entry["object"]["input"]["parameters"] == {"n_users": 37}


@pytest.mark.parametrize(
    "query, variables, said",
    [
        (CREATE, {"input": {"flow_id": "FLOW", "run_config": {"type": "DockerRun", "image": "alpine"}}}, "create_flow_run: no role may send a run with its own run_config"),
        ('mutation { create_project(input: {name: "x"}) { id } }', None, "create_project: no role may send it through the door"),
        ('mutation($c: JSON!) { create_cloud_hook(input: {type: "WEBHOOK", states: ["Failed"], config: $c}) { id } }', {"c": {"url": "http://hasura:3000/v1/query"}}, "create_cloud_hook: no role may send an alert hook to any address but NOTIFY_WEBHOOK_URL"),
        ('mutation { set_task_run_states(input: {states: [{task_run_id: "t", version: 1, state: {type: "Success", _result: {type: "LocalResult", location: "/etc/passwd"}}}]}) { states { id } } }', None, "set_task_run_states: no role may send task run state 'Success' (allowed: Pending)"),
    ],
)  # fmt: skip
def test_what_no_role_may_do_is_refused_on_loopback_leaves_nothing_and_is_on_record(
    door, standin, people, query, variables, said
):
    flow = only_flow(standin)
    if variables and "input" in variables:
        variables["input"]["flow_id"] = flow["id"]
    before = tables(standin)
    answer = graphql(door, query, variables)
    assert answer.status_code == 403, answer.text
    assert answer.json()["errors"][0]["message"] == f"door: {said} (role admin, local)"
    assert tables(standin) == before
    (entry,) = people.recent()
    assert not entry["allowed"] and said.endswith(entry["reason"]) and entry["caller"] == "local"


def test_a_refused_field_among_allowed_ones_stops_the_whole_request(door, standin, people):
    flow = only_flow(standin)
    batch = [
        {"query": CREATE, "variables": run_page_input(flow)},
        {
            "query": 'mutation { s: set_flow_run_states(input: {states: [{flow_run_id: "x", version: 1, state: {type: "Success"}}]}) { states { id } } }'
        },
    ]
    runs = set(standin.tables["flow_run"])  # the schedule's
    answer = door.post("/graphql", json=batch)
    assert answer.status_code == 403 and "set_flow_run_states" in answer.json()["errors"][0]["message"]
    assert set(standin.tables["flow_run"]) == runs
    assert [(e["field"], e["allowed"]) for e in people.recent()] == [("set_flow_run_states", False)]


def test_what_is_not_graphql_never_reaches_apollo(door, standin):
    operations = len(standin.operations)
    assert (
        door.post("/graphql", content=b"query=mutation{}", headers={"Content-Type": "text/plain"}).status_code
        == 400
    )
    assert door.post("/graphql", json={"query": "mutation { create_flow_run("}).status_code == 400
    odd = graphql(door, 'mutation { create_flow_run(input: "x") { id } }')
    assert odd.status_code == 403 and "its input must be an object" in odd.json()["errors"][0]["message"]
    assert len(standin.operations) == operations
    over_get = door.get(
        "/graphql", params={"query": 'mutation { create_project(input: {name: "x"}) { id } }'}
    )
    assert over_get.status_code == 403 and "create_project" in over_get.json()["errors"][0]["message"]
    assert len(standin.operations) == operations and not standin.tables["project"].keys() - {
        only_flow(standin)["project_id"]
    }


def test_each_role_against_an_allowed_and_a_refused_operation(open_door, standin, people):
    door = open_door(login=True)
    flow = only_flow(standin)
    run_id = next(iter(standin.tables["flow_run"]))  # the schedule's first
    delete_run = (
        "mutation($id: UUID!) { delete_flow_run(input: {flow_run_id: $id}) { success } }",
        {"id": run_id},
    )
    start_run = (CREATE, run_page_input(flow))
    hook = ("query { cloud_hook { id config } }", None)
    with_context = (CREATE, run_page_input(flow, context={"secrets": {"x": 1}}))
    for role, allowed, refused, said in [
        ("viewer", ("query { flow { id name } }", None), start_run, "create_flow_run: operator or above, not viewer"),
        ("operator", start_run, delete_run, "delete_flow_run: maintainer or above, not operator"),
        ("maintainer", delete_run, hook, "cloud_hook holds a secret: admin only, not maintainer"),
        ("admin", hook, with_context, "create_flow_run: no role may send a run with its own context"),
    ]:  # fmt: skip
        headers = login(people, role)
        before = tables(standin)
        answer = graphql(door, *refused, **headers)
        assert answer.status_code == 403, (role, answer.text)
        assert answer.json()["errors"][0]["message"] == f"door: {said} (role {role}, {role}1)"
        assert tables(standin) == before, role
        assert people.recent()[-1]["caller"] == f"{role}1" and not people.recent()[-1]["allowed"]
        answer = graphql(door, *allowed, **headers)
        assert answer.status_code == 200 and "errors" not in answer.json(), (role, answer.text)
    assert run_id not in standin.tables["flow_run"]
    assert [(e["caller"], e["field"]) for e in people.recent() if e["allowed"]] == [
        ("operator1", "create_flow_run"),
        ("maintainer1", "delete_flow_run"),
    ]


def test_with_a_login_required_nothing_passes_without_one(open_door, standin, people):
    door = open_door(login=True)
    operations = len(standin.operations)
    viewer = login(people, "viewer")
    wrong = {"Authorization": viewer["Authorization"][:-4] + "AAAA"}
    for headers in ({}, wrong, {"Authorization": "Bearer nope"}, {"Authorization": "Basic !!"}):
        answer = graphql(door, "query { flow { id } }", **headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic"), headers
    assert len(standin.operations) == operations
    assert door.get("/door/auth", headers=viewer).status_code == 204
    assert door.get("/door/auth").status_code == 401
    agent = {"Authorization": f"Bearer {TOKEN}"}
    assert door.get("/door/auth", headers=agent).status_code == 401  # the API only
    assert door.get("/door/auth?metrics", headers=agent).status_code == 204  # and the metrics


def monitoring(door, method, uri, **headers):
    """The proxy's forward_auth for a request to Prometheus or Alertmanager
    (proxy/monitoring.caddy): its method and URI in Caddy's X-Forwarded headers."""
    forwarded = {"X-Forwarded-Method": method, "X-Forwarded-Uri": uri}
    return door.get("/door/auth?monitoring", headers={**headers, **forwarded})


def test_a_silence_is_a_maintainers_on_record_and_no_one_posts_alerts(open_door, people):
    door = open_door(login=True)
    viewer, maintainer = login(people, "viewer"), login(people, "maintainer")
    assert monitoring(door, "GET", "/alertmanager/api/v2/alerts", **viewer).status_code == 204
    assert monitoring(door, "POST", "/prometheus/api/v1/query?x=1", **viewer).status_code == 204
    assert people.recent() == []  # reads are not on record
    refused = monitoring(door, "POST", "/alertmanager/api/v2/silences", **viewer)
    assert refused.status_code == 403
    assert refused.text == "403 door: a silence: maintainer or above, not viewer (role viewer, viewer1)"
    assert monitoring(door, "POST", "/alertmanager/api/v2/silences", **maintainer).status_code == 204
    forged = monitoring(door, "POST", "/alertmanager/api/v2/alerts", **maintainer)
    assert forged.status_code == 403 and "no role may send it" in forged.text
    agent = {"Authorization": f"Bearer {TOKEN}"}
    assert monitoring(door, "GET", "/alertmanager/", **agent).status_code == 401
    assert monitoring(door, "GET", "/alertmanager/").status_code == 401
    assert [(e["caller"], e["field"], e["allowed"]) for e in people.recent()] == [
        ("viewer1", "POST /alertmanager/api/v2/silences", False),
        ("maintainer1", "POST /alertmanager/api/v2/silences", True),
        ("maintainer1", "POST /alertmanager/api/v2/alerts", False),
    ]


def test_on_loopback_the_person_at_the_keyboard_silences_on_record(door, people):
    assert monitoring(door, "DELETE", "/alertmanager/api/v2/silence/3f2a").status_code == 204
    assert [(e["caller"], e["role"], e["field"], e["allowed"]) for e in people.recent()] == [
        ("local", "admin", "DELETE /alertmanager/api/v2/silence/3f2a", True)
    ]


def test_the_agent_token_runs_the_runners_operations_and_starts_nothing(open_door, standin, people):
    door = open_door(login=True)
    agent = {"Authorization": f"Bearer {TOKEN}"}
    registered = graphql(
        door, 'mutation { register_agent(input: {type: "DockerAgent", labels: ["x"]}) { id } }', **agent
    )
    assert registered.status_code == 200 and registered.json()["data"]["register_agent"]["id"], (
        registered.text
    )
    runs = set(standin.tables["flow_run"])
    answer = graphql(door, CREATE, run_page_input(only_flow(standin)), **agent)
    assert answer.status_code == 403 and set(standin.tables["flow_run"]) == runs
    assert [(e["caller"], e["field"], e["allowed"]) for e in people.recent()] == [
        ("agent", "create_flow_run", False)
    ]
