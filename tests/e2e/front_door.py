"""Hops of the front door and the agent's guard: only the proxy published, foreign images and
run configs refused, the database out of a flow's reach, `make up PUBLIC=1`.
"""

import base64
import http.client
import json
import pickle
import re
import ssl
import time
import urllib.error
import urllib.request

import pytest
from prefect.engine.results import LocalResult
from prefect.engine.state import Success

from tests.e2e.helpers import docker_bridge, inside, start_remote_agent, stop_remote_agent
from tests.programs.e2e_api import FINISHED
from tests.programs.e2e_stack import Stack, output
from tests.programs.smoke import check_report
from tests.support import free_port
from tests.support.planted import Planted
from tests.support.ui_operations import (
    CREATE_FLOW_RUN,
    FLOW_PAGE_QUERY,
    post,
    run_page_variables,
)


def published_ports(stack: Stack) -> dict:
    """The stack's services that publish a port, each with its host addresses (ip:port)."""
    listing = output(
        "docker",
        "ps",
        "--filter",
        f"label=com.docker.compose.project={stack.name}",
        "--format",
        '{{.Label "com.docker.compose.service"}}\t{{.Ports}}',
    )
    published = {}
    for line in listing.splitlines():
        service, _, ports = line.partition("\t")
        hosts = sorted({port.split("->")[0].strip() for port in ports.split(",") if "->" in port})
        if hosts:
            published[service] = hosts
    return published


def ask_api(url: str, body: bytes = b'{"query": "query { hello }"}', **headers) -> int:
    """The status of one POST to `url` (GraphQL's hello as JSON unless told otherwise)."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def front_door(stack: Stack) -> str:
    """Only the proxy is published, on loopback. On both its ports a web page's request
    (a foreign Origin), a foreign Host (DNS rebinding) and a form or multipart post get 403;
    Prefect's client (no Origin) and the UI's own calls pass: a run started by the UI's
    Run page through the UI's port succeeds."""
    loopback = sorted([f"127.0.0.1:{stack.ui_port}", f"127.0.0.1:{stack.apollo_port}"])
    assert published_ports(stack) == {"proxy": loopback}, published_ports(stack)
    ui = f"http://localhost:{stack.ui_port}"
    for base in (f"http://127.0.0.1:{stack.ui_port}/graphql", f"{stack.api}/graphql"):
        assert ask_api(base) == 200, base
        assert ask_api(base, Origin=ui) == 200, base
        assert ask_api(base, Origin="http://evil.example") == 403, base
        assert ask_api(base, Origin="null") == 403, base
        assert ask_api(base, Host="evil.example") == 403, base
        assert ask_api(base, b"query=mutation{}", **{"Content-Type": "text/plain"}) == 403, base
        multipart = b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--x--\r\n'
        assert ask_api(base, multipart, **{"Content-Type": "multipart/form-data; boundary=x"}) == 403, base
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ui_port}/", timeout=10) as page:
        assert page.status == 200  # the UI itself
    flow = stack.active_flow()
    page = post(
        f"http://127.0.0.1:{stack.ui_port}", FLOW_PAGE_QUERY, {"id": flow["flow_group_id"]}, Origin=ui
    )["data"]["flow_group_by_pk"]
    created = post(
        f"http://127.0.0.1:{stack.ui_port}",
        CREATE_FLOW_RUN,
        run_page_variables(page, {"n_users": 4}, "e2e-ui-origin"),
        Origin=ui,
    )
    run_id = created["data"]["create_flow_run"]["id"]
    assert stack.wait_for_runs([run_id])[run_id]["state"] == "Success", stack.explain(run_id)
    return f"403 for a foreign Origin, Host, text/plain and multipart on both ports; {stack.report_of(run_id, 4)}"


def foreign_image(stack: Stack) -> str:
    """A flow registered with another image (the base image here) and the agent's label, as
    anyone reaching the API could: the agent refuses it, no container is made and the run
    fails saying why; `make register` brings the flow's own image back."""
    other = stack.base_image.split(":")[0]
    stack.compose(
        "exec", "-T", "-e", f"FLOW_IMAGE={other}", "agent", "python", "register.py", "--skip-build",
        capture_output=True,
    )  # fmt: skip
    run_id = stack.create_run({"n_users": 5})
    flow_run = stack.wait_for_runs([run_id])[run_id]
    assert flow_run["state"] == "Failed", stack.explain(run_id)
    assert flow_run["state_message"].startswith(f"this agent does not start the image {other}:"), flow_run
    assert not output("docker", "ps", "-aq", "--filter", f"label=io.prefect.flow-run-id={run_id}")
    stack.make("register")
    return flow_run["state_message"]


def refused_at_door(stack: Stack, query: str, variables: dict) -> str:
    """A GraphQL request to the loopback API that the door must refuse: its one line."""
    request = urllib.request.Request(
        f"{stack.api}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403, refused.value.code
    return json.load(refused.value)["errors"][0]["message"]


def copied_flow(stack: Stack) -> str:
    """A copy of the Users report registered in another project past the door (register.py
    run with another PREFECT_PROJECT, as anyone on the stack's network could): it would
    escape the original's MAX_RUNNING and take its secrets. A run of it started through the
    door is refused by the agent with its one line, no container; an admin archives the copy
    through the door, its schedule with it."""
    stack.compose(
        "exec", "-T", "-e", "PREFECT_PROJECT=e2e-elsewhere", "agent", "python", "register.py",
        "--skip-build", "--flow", "users_report", capture_output=True,
    )  # fmt: skip
    (copy,) = stack.graphql(
        'query { flow(where: {name: {_eq: "Users report"}, archived: {_eq: false}, '
        'project: {name: {_eq: "e2e-elsewhere"}}}) { id } }'
    )["flow"]
    answer = post(stack.api, CREATE_FLOW_RUN, {"id": copy["id"]})
    run_id = answer["data"]["create_flow_run"]["id"]
    flow_run = stack.wait_for_runs([run_id])[run_id]
    assert flow_run["state"] == "Failed", stack.explain(run_id)
    assert flow_run["state_message"].startswith(
        'this agent does not start "Users report" registered in the project "e2e-elsewhere": '
    ), flow_run["state_message"]
    assert not output("docker", "ps", "-aq", "--filter", f"label=io.prefect.flow-run-id={run_id}")
    archived = post(
        stack.api,
        "mutation($id: UUID!) { archive_flow(input: {flow_id: $id}) { success } }",
        {"id": copy["id"]},
    )
    assert archived["data"]["archive_flow"]["success"], archived
    assert stack.active_flow()["id"] != copy["id"]  # one Users report again, the package's
    assert not stack.runs({"flow_id": {"_eq": copy["id"]}, "state": {"_eq": "Scheduled"}})
    return flow_run["state_message"].split(":")[0]


def run_configs_refused(stack: Stack) -> str:
    """Runs whose own run config would mount the host or set the container's environment:
    the door refuses them, even to the admin at the keyboard, and no run is made; sent past
    the door from inside the stack, the agent refuses them: Failed with its reason, no
    container."""
    flow = stack.active_flow()
    messages = []
    for change in ({"host_config": {"binds": ["/:/host"]}}, {"env": {"BROWSER": "id"}}):
        variables = {"id": flow["id"], "runConfig": {**flow["run_config"], **change}}
        runs = set(stack.runs({}))
        said = refused_at_door(stack, CREATE_FLOW_RUN, variables)
        assert said == (
            "door: create_flow_run: no role may send a run with its own run_config (role admin, local)"
        ), said
        assert set(stack.runs({})) == runs
        answer = inside(stack, "agent", "/graphql", {"query": CREATE_FLOW_RUN, "variables": variables})
        run_id = answer["data"]["create_flow_run"]["id"]
        flow_run = stack.wait_for_runs([run_id])[run_id]
        assert flow_run["state"] == "Failed", stack.explain(run_id)
        field = next(iter(change))
        assert flow_run["state_message"].startswith(
            f"this agent does not start a run config that sets {field} ("
        ), flow_run["state_message"]
        assert "the run's own run config (create_flow_run)" in flow_run["state_message"], flow_run
        assert not output("docker", "ps", "-aq", "--filter", f"label=io.prefect.flow-run-id={run_id}")
        messages.append(flow_run["state_message"].split(",")[0])
    return "the door: 403; past it: " + "; ".join(messages)


def database_out_of_reach(stack: Stack) -> str:
    """A container on the flow runs' network, from the flow image, reaches apollo but
    neither Hasura nor Postgres: those two are on the stack's internal database network."""
    image = f"{stack.flow_image}:{stack.active_flow()['storage']['image_tag']}"
    probe = (
        "import socket\n"
        "for host, port in (('apollo', 4200), ('hasura', 3000), ('postgres', 5432)):\n"
        "    try: socket.create_connection((host, port), timeout=3).close(); print(host, 'open')\n"
        "    except OSError as error: print(host, 'closed', type(error).__name__)\n"
    )
    result = output("docker", "run", "--rm", "--network", stack.name, image, "python", "-c", probe)
    lines = dict(line.split(" ", 1) for line in result.splitlines())
    assert (
        lines["apollo"] == "open"
        and lines["hasura"].startswith("closed")
        and lines["postgres"].startswith("closed")
    ), result
    return ", ".join(f"{host} {state}" for host, state in lines.items())


def person(stack: Stack, name: str, role: str) -> str:
    """`make user` for `name`: the Basic login it gives, from its last line."""
    made = stack.make("user", NAME=name, ROLE=role).stdout
    password = re.fullmatch(r"password: (\S+)", made.strip().splitlines()[-1])[1]
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def team_access(stack: Stack) -> str:
    """`make up PUBLIC=1` on this host's bridge address (a team's network here): only the
    proxy is published. Without a login / and /graphql answer 401; each person's login
    opens both, with what their role allows and a 403 naming the field and role for the
    rest, nothing made; API_TOKEN opens the API alone and a wrong one nothing; plain HTTP is
    refused. `make audit` names who did and who tried. `make ca` gives the CA that an agent
    in its own compose project trusts, reaching the server only through the proxy with the
    token: it claims and finishes a maintainer's run. `make up PUBLIC=0` goes back."""
    host, port, loopback_files = docker_bridge(), free_port(), stack.env["COMPOSE_FILE"]
    with stack.settings(
        PUBLIC_HOST=host,
        PUBLIC_BIND=host,
        PUBLIC_PORT=str(port),
        COMPOSE_FILE=loopback_files.replace("docker-compose.override.yml", "docker-compose.public.yml"),
    ):
        up = stack.make("up", "PUBLIC=1")
        assert "People:      make user NAME=" in up.stdout, up.stdout
        assert published_ports(stack) == {"proxy": [f"{host}:{port}"]}, published_ports(stack)
        stack.make("ca")
        tls = ssl.create_default_context(cafile=str(stack.dir / "certs" / "ca.crt"))
        public = f"https://{host}:{port}"
        token = re.search(r"^API_TOKEN=(\S+)$", (stack.dir / ".env").read_text(), re.M)[1]
        logins = {
            role: person(stack, f"e2e-{role}", role) for role in ("viewer", "operator", "maintainer", "admin")
        }
        bad = stack.make("user", NAME="Root", ROLE="admin", check=False)
        said = [line for line in bad.stderr.splitlines() if not line.startswith("make: ")]
        assert bad.returncode == 2 and len(said) == 1, bad.stderr
        assert said[0].startswith("door: NAME='Root' is not allowed: a lower-case letter"), bad.stderr

        def ask(path, query=None, authorization=None, base=public, variables=None, body=None, **headers):
            """Status and body of a GET (or a GraphQL POST of `query`, or a POST of a JSON
            `body`) through the proxy."""
            if query:
                body = {"query": query, "variables": variables or {}}
            body = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(
                base + path,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    **headers,
                    **({"Authorization": authorization} if authorization else {}),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10, context=tls) as answer:
                    return answer.status, answer.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        hello, viewer = "query { hello }", logins["viewer"]
        assert ask("/")[0] == ask("/graphql", hello)[0] == 401
        assert ask("/", authorization=viewer)[0] == 200
        assert json.loads(ask("/graphql", hello, viewer)[1])["data"]["hello"] == "hello"
        assert json.loads(ask("/graphql", hello, f"Bearer {token}")[1])["data"]["hello"] == "hello"
        assert ask("/graphql", hello, f"Bearer {token}x")[0] == 401
        assert ask("/graphql", hello, viewer[:-4] + "AAAA")[0] == 401
        assert ask("/", authorization=f"Bearer {token}")[0] == 401  # the token opens the API only
        status, body = ask("/", base=f"http://{host}:{port}")
        assert status == 400 and "HTTP request to an HTTPS server" in body, (status, body)
        # The login cached in a browser opens nothing for another site's page.
        assert ask("/graphql", hello, viewer, Origin=public)[0] == 200
        assert ask("/graphql", hello, viewer, Origin="https://evil.example")[0] == 403
        assert ask("/graphql", hello, viewer, Host="evil.example")[0] == 403  # DNS rebinding
        assert ask("/graphql", hello, viewer, **{"Content-Type": "text/plain"})[0] == 403  # a form's post

        def data(query, authorization=viewer, variables=None) -> dict:
            status, body = ask("/graphql", query, authorization, variables=variables)
            assert status == 200 and "errors" not in json.loads(body), body
            return json.loads(body)["data"]

        def state_when_ended(run_id: str) -> str:
            deadline = time.monotonic() + 180
            query = "query($id: uuid!) { flow_run_by_pk(id: $id) { state } }"
            while (state := data(query, variables={"id": run_id})["flow_run_by_pk"]["state"]) not in FINISHED:
                assert time.monotonic() < deadline, f"the run {run_id} is still {state}"
                time.sleep(1)
            return state

        def runs() -> set:
            return {run["id"] for run in data("query { flow_run { id } }")["flow_run"]}

        # Each role: one thing it may do, one it may not (nothing made), as the UI sends them.
        (flow,) = data(
            'query { flow(where: {archived: {_eq: false}, name: {_eq: "Users report"}}) { flow_group_id } }'
        )["flow"]
        page = data(FLOW_PAGE_QUERY, variables={"id": flow["flow_group_id"]})["flow_group_by_pk"]
        run_page = run_page_variables(page, {"n_users": 6}, "e2e-operator")
        remote_run = run_page_variables(page, {"n_users": 13}, "e2e-remote", ["e2e-remote"])
        delete = "mutation($id: UUID!) { delete_flow_run(input: {flow_run_id: $id}) { success } }"
        hooks = "query { cloud_hook { id config } }"
        runs_before = runs()
        status, body = ask("/graphql", CREATE_FLOW_RUN, viewer, variables=run_page)
        assert (
            status == 403
            and "create_flow_run: operator or above, not viewer (role viewer, e2e-viewer)" in body
        ), body
        assert runs() == runs_before
        operator_run = json.loads(ask("/graphql", CREATE_FLOW_RUN, logins["operator"], variables=run_page)[1])
        operator_run = operator_run["data"]["create_flow_run"]["id"]
        status, body = ask("/graphql", delete, logins["operator"], variables={"id": operator_run})
        assert status == 403 and "delete_flow_run: maintainer or above, not operator" in body, body
        status, body = ask("/graphql", hooks, logins["maintainer"])
        assert status == 403 and "cloud_hook holds a secret: admin only, not maintainer" in body, body
        assert "errors" not in json.loads(ask("/graphql", hooks, logins["admin"])[1])
        with_context = {**run_page, "context": {"secrets": {"TOKEN": "x"}}}
        status, body = ask("/graphql", CREATE_FLOW_RUN, logins["admin"], variables=with_context)
        assert status == 403 and "no role may send a run with its own context" in body, body
        status, body = ask("/graphql", CREATE_FLOW_RUN, f"Bearer {token}", variables=run_page)
        assert status == 403 and "no role may send it through the door (role agent" in body, body
        assert state_when_ended(operator_run) == "Success"

        remote_reports = start_remote_agent(stack, f"{public}/graphql")
        created = ask("/graphql", CREATE_FLOW_RUN, logins["maintainer"], variables=remote_run)
        run_id = json.loads(created[1])["data"]["create_flow_run"]["id"]
        assert state_when_ended(run_id) == "Success"
        check_report(remote_reports, run_id, 13)
        agent_log = stack.compose(
            "logs", "--no-color", "agent", agent=True, capture_output=True, text=True
        ).stdout
        assert run_id in agent_log and token not in agent_log
        stop_remote_agent(stack)

        # Alertmanager: every person reads it; a silence is a maintainer's, on record.
        silences, now = "/alertmanager/api/v2/silences", time.time()
        silence = {
            "matchers": [{"name": "alertname", "value": "E2eMaintenance", "isRegex": False}],
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 600)),
            "createdBy": "e2e",
            "comment": "maintenance",
        }
        status, body = ask(silences, authorization=viewer, body=silence)
        assert (
            status == 403 and "a silence: maintainer or above, not viewer (role viewer, e2e-viewer)" in body
        )
        assert json.loads(ask(silences, authorization=viewer)[1]) == []
        assert ask(silences, authorization=logins["maintainer"], body=silence)[0] == 200
        assert len(json.loads(ask(silences, authorization=viewer)[1])) == 1

        audit = stack.make("audit").stdout
        assert "e2e-viewer (viewer)  POST /alertmanager/api/v2/silences  REFUSED" in audit, audit
        assert "e2e-maintainer (maintainer)  POST /alertmanager/api/v2/silences  allowed" in audit, audit
        assert re.search(r"e2e-operator \(operator\)  create_flow_run  allowed  .*\"n_users\": 6", audit), (
            audit
        )
        assert "e2e-viewer (viewer)  create_flow_run  REFUSED: create_flow_run: operator or above" in audit, (
            audit
        )
        assert "agent (agent)  create_flow_run  REFUSED" in audit, audit
        listed = stack.make("users").stdout
        assert [line.split()[:2] for line in listed.splitlines()] == [
            [f"e2e-{role}", role] for role in ("admin", "maintainer", "operator", "viewer")
        ], listed
        assert stack.make("user", NAME="e2e-viewer", ROLE="none").stdout.strip() == "e2e-viewer: removed"
        assert ask("/graphql", hello, viewer)[0] == 401
    stack.make("up", "PUBLIC=0")
    loopback = sorted([f"127.0.0.1:{stack.ui_port}", f"127.0.0.1:{stack.apollo_port}"])
    assert published_ports(stack) == {"proxy": loopback}, published_ports(stack)
    assert stack.run(run_id)["state"] == "Success"  # the API on its loopback port again
    return (
        f"only {public} published; 401 without a login; each role's allowed and refused operation; "
        "API_TOKEN opens the API alone; remote agent's run Success; make audit names them"
    )


def no_role_may(stack: Stack) -> str:
    """On loopback, where the person at the keyboard is admin without a login, what no role
    may do is refused all the same, with nothing stored: a task run state naming a result
    file, a finished run set Running again, a flow registered, an alert hook to Hasura. A run with
    parameters goes through, and `make audit` shows it and the refusals."""
    run_id = stack.create_run({"n_users": 8})
    assert stack.wait_for_runs([run_id])[run_id]["state"] == "Success", stack.explain(run_id)
    task_run = stack.graphql(
        "query($id: uuid!) { task_run(where: {flow_run_id: {_eq: $id}}, limit: 1) { id version state } }",
        {"id": run_id},
    )["task_run"][0]
    attempts = {
        "set_task_run_states": (
            "mutation($id: UUID!, $v: Int!) { set_task_run_states(input: {states: [{task_run_id: $id, version: $v, "
            'state: {type: "Success", _result: {type: "LocalResult", dir: "/", location: "/reports/evil.pickle"}}}]}) '
            "{ states { id } } }",
            {"id": task_run["id"], "v": task_run["version"]},
        ),
        "set_flow_run_states": (
            "mutation($id: UUID!) { set_flow_run_states(input: {states: [{flow_run_id: $id, version: 1, "
            'state: {type: "Running"}}]}) { states { id } } }',
            {"id": run_id},
        ),
        "create_flow_from_compressed_string": (
            'mutation { create_flow_from_compressed_string(input: {serialized_flow: "x", project_id: "p"}) { id } }',
            {},
        ),
        "create_cloud_hook": (
            'mutation { create_cloud_hook(input: {type: "WEBHOOK", states: ["Failed"], '
            'config: {url: "http://hasura:3000/v1/query"}}) { id } }',
            {},
        ),
    }
    before = (
        stack.flows(),
        stack.graphql("query { cloud_hook { id } }")["cloud_hook"],
        stack.task_runs(run_id),
    )
    for field, (query, variables) in attempts.items():
        said = refused_at_door(stack, query, variables)
        assert said.startswith(f"door: {field}: no role may send"), said
    after = (
        stack.flows(),
        stack.graphql("query { cloud_hook { id } }")["cloud_hook"],
        stack.task_runs(run_id),
    )
    assert after == before
    assert stack.run(run_id)["state"] == "Success"
    audit = stack.make("audit").stdout.splitlines()
    assert any("local (admin)  create_flow_run  allowed" in line and '"n_users": 8' in line for line in audit)
    for field in attempts:
        assert any(f"local (admin)  {field}  REFUSED: {field}: no role may send" in line for line in audit), (
            field
        )
    return (
        f"{len(attempts)} refused with nothing stored; the run with n_users=8 Success; make audit shows them"
    )


def reports_link(stack: Stack) -> str:
    """A run's artifact links its report at the front door's /reports/; the link serves the
    CSV, byte for byte; a path out of the folder, the stack's own files and a listing do not."""
    run_id = stack.create_run({"n_users": 23})
    assert stack.wait_for_runs([run_id])[run_id]["state"] == "Success", stack.explain(run_id)
    task_runs = stack.graphql(
        "query($id: uuid!) { flow_run_by_pk(id: $id) { task_runs { id } } }", {"id": run_id}
    )["flow_run_by_pk"]["task_runs"]
    (artifact,) = stack.graphql(
        "query($ids: [uuid!]) { task_run_artifact(where: {task_run_id: {_in: $ids}}) { kind data } }",
        {"ids": [task_run["id"] for task_run in task_runs]},
    )["task_run_artifact"]
    link = re.search(r"\[Download [^\]]+\]\((\S+)\)", artifact["data"]["markdown"])[1]
    assert link.startswith(f"http://localhost:{stack.ui_port}/reports/users-report-"), link
    with urllib.request.urlopen(link, timeout=10) as response:
        served = response.read()
    assert served == (stack.reports / link.rsplit("/", 1)[1]).read_bytes() and served.count(b"\n") == 24
    refused = {}
    for path in ("/reports/../.env", "/reports/%2e%2e/.env", "/reports/.users-api-budget.json", "/reports/"):
        connection = http.client.HTTPConnection("localhost", stack.ui_port, timeout=10)
        connection.request("GET", path)  # as written: no client cleans the path first
        answer = connection.getresponse()
        body = answer.read()
        refused[path] = answer.status
        assert answer.status in (403, 404) and b"POSTGRES_PASSWORD" not in body, (
            path,
            answer.status,
            body[:200],
        )
        connection.close()
    return f"{link.rsplit('/', 1)[1]} served from its artifact's link; refused: {refused}"


def forged_result(stack: Stack) -> str:
    """Past the door, from inside the stack: a run's first task set Success with a result
    that names a pickle in the reports folder. The run's container refuses to read it: the
    run fails naming the file, and the pickle's code never runs."""
    planted, marker = stack.reports / "e2e-planted.prefect", stack.reports / "e2e-unpickled"
    planted.write_bytes(pickle.dumps(Planted(f"/reports/{marker.name}")))
    flow = stack.active_flow()
    (plan,) = [
        task
        for task in stack.graphql(
            "query($id: uuid!) { flow_by_pk(id: $id) { tasks { id slug } } }", {"id": flow["id"]}
        )["flow_by_pk"]["tasks"]
        if task["slug"] == "plan_pages-1"
    ]
    stack.compose("stop", "agent", capture_output=True)
    try:
        run_id = stack.create_run({"n_users": 9})
        info = inside(
            stack,
            "door",
            "/graphql",
            {
                "query": "mutation($input: get_or_create_task_run_info_input!) { "
                "get_or_create_task_run_info(input: $input) { id version } }",
                "variables": {"input": {"flow_run_id": run_id, "task_id": plan["id"], "map_index": -1}},
            },
        )["data"]["get_or_create_task_run_info"]
        forged = Success(
            "forged", result=LocalResult(dir="/", location=f"/reports/{planted.name}", validate_dir=False)
        )
        answer = inside(
            stack,
            "door",
            "/graphql",
            {
                "query": "mutation($input: set_task_run_states_input!) { set_task_run_states(input: $input) { states { id } } }",
                "variables": {
                    "input": {
                        "states": [
                            {
                                "task_run_id": info["id"],
                                "version": info["version"],
                                "state": forged.serialize(),
                            }
                        ]
                    }
                },
            },
        )
        assert "errors" not in answer, answer
    finally:
        stack.compose("start", "agent", capture_output=True)
    flow_run = stack.wait_for_runs([run_id])[run_id]
    assert flow_run["state"] == "Failed", stack.explain(run_id)
    said = [
        t["state_message"] for t in stack.task_runs(run_id) if "refused to read" in (t["state_message"] or "")
    ]
    assert said and f"refused to read a task result from /reports/{planted.name}" in said[0], stack.explain(
        run_id
    )
    assert not marker.exists()
    planted.unlink()
    return said[0]
