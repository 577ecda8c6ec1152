"""What register.py and the agent's start-up share: reaching Prefect Server, and making sure
it has what registration and agents need (a tenant; each flow's project)."""

import time

import prefect
from prefect.utilities.graphql import with_args


def wait_for_apollo(seconds: float) -> None:
    """Returns once the API answers `query { hello }` at its address (apollo in the stack,
    PREFECT_API_URL for an agent elsewhere); exits with one line after `seconds`. Asked
    through Prefect's client, which presents API_TOKEN and trusts REQUESTS_CA_BUNDLE as
    the agent's later requests do."""
    client = prefect.Client()
    deadline = time.monotonic() + seconds
    while True:
        try:
            if client.graphql("query { hello }").data.hello:
                return
            problem = "it answered without data"
        except Exception as exc:  # not listening yet, refused (401: API_TOKEN), TLS, ...
            problem = str(exc)
        if time.monotonic() >= deadline:
            raise SystemExit(
                f"error: Prefect Server's API did not answer at {client.api_server} within "
                f"{seconds:g} s ({problem}); see `make logs` for apollo and graphql"
            )
        time.sleep(2)


def ensure_tenant(client: prefect.Client) -> None:
    """A fresh server has no tenant; without one the UI would ask a person to make it."""
    if not client.get_available_tenants():
        client.create_tenant(name="default")


def ensure_project(client: prefect.Client, name: str) -> None:
    ensure_tenant(client)
    query = {"query": {with_args("project", {"where": {"name": {"_eq": name}}}): {"id"}}}
    if not client.graphql(query).data.project:
        client.create_project(project_name=name)


# The ends of runs the hook posts. Failures are Alertmanager's (RunFailed, monitoring/rules.yml,
# grouped per flow), so that no failure is told twice: NOTIFY_ON=failed needs no hook at all.
NOTIFY_STATES = {"failed": [], "all": ["CANCELLED", "SUCCESS"]}
HOOK_NAME = "users-report alerts"
CREATE_HOOK = "mutation($input: create_cloud_hook_input!) { create_cloud_hook(input: $input) { id } }"
DELETE_HOOK = "mutation($input: delete_cloud_hook_input!) { delete_cloud_hook(input: $input) { success } }"


def ensure_alert_hook(client: prefect.Client, flow_id: str, url: str, notify_on: str) -> None:
    """Leaves exactly one cloud hook of ours on the flow's version group: Prefect Server
    posts to `url` (Slack's format) when a run ends in one of NOTIFY_ON's states, whatever
    ended it. No URL, or no such state: none, and an older hook (one that also posted
    failures) is deleted. The URL is a secret: never printed."""
    flow = client.graphql({"query": {with_args("flow_by_pk", {"id": flow_id}): {"version_group_id"}}})
    group = flow.data.flow_by_pk.version_group_id
    where = {"version_group_id": {"_eq": group}, "name": {"_eq": HOOK_NAME}}
    hooks = client.graphql(
        {"query": {with_args("cloud_hook", {"where": where}): {"id", "type", "states", "config"}}}
    ).data.cloud_hook
    states = NOTIFY_STATES[notify_on] if url else []
    wanted = {"type": "SLACK_WEBHOOK", "states": states, "config": {"url": url}}
    keep = next(
        (
            hook.id
            for hook in hooks
            if states
            and {"type": hook.type, "states": sorted(hook.states), "config": dict(hook.config)} == wanted
        ),
        None,
    )
    for hook in hooks:
        if hook.id != keep:
            client.graphql(DELETE_HOOK, variables={"input": {"cloud_hook_id": hook.id}})
    if states and not keep:
        tenant_id = client.get_available_tenants()[0]["id"]
        client.graphql(
            CREATE_HOOK,
            variables={
                "input": {**wanted, "tenant_id": tenant_id, "name": HOOK_NAME, "version_group_id": group}
            },
        )
