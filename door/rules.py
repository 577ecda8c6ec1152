"""What each role may send: one table (MUTATIONS), read by the door for every root field of
every request. Reads are open to every role (the UI's pages query fields Hasura generates
that the door need not know), but for what holds a secret. A mutation not in the table is
refused to everyone. The operations are the UI's (PrefectHQ/ui 2092e92, src/graphql/ and the
inline ones named below) and the agent's (prefect 0.15.9, agent/agent.py, client/client.py).
"""

import re
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from door.requests import Field

ROLES = ("viewer", "operator", "maintainer", "admin")
AGENT = "agent"  # an agent's token: its own operations only
# Reads that hold a secret: the alert hook's URL and headers.
SECRET_READS = {"cloud_hook": "admin"}
# State types a person may set: the UI's Restart (task runs Pending, the run Scheduled), its
# Cancel and "mark as" Failed.
FLOW_RUN_STATES = {"Scheduled", "Cancelled", "Failed"}
TASK_RUN_STATES = {"Pending"}
# What a state must not carry: a result (read by location when the next run loads it) or
# cached inputs.
STATE_PAYLOADS = ("_result", "result", "cached_inputs", "cached_result")


@dataclass(frozen=True)
class Rule:
    role: str  # the least role that may send it
    source: str  # where the UI (or agent) sends it
    check: Optional[Callable[[Field, str, dict], Optional[str]]] = None  # a reason to refuse, or None


def at_least(role: str, least: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(least)


def states_refusal(states, allowed: set, what: str) -> Optional[str]:
    for item in states if isinstance(states, list) else [states]:
        state = (item or {}).get("state") if isinstance(item, dict) else None
        if not isinstance(state, dict):
            return f"{what} states must be objects"
        if state.get("type") not in allowed:
            return f"{what} state {state.get('type')!r} (allowed: {', '.join(sorted(allowed))})"
        carried = [key for key in STATE_PAYLOADS if state.get(key) not in (None, {}, [])]
        if carried:
            return f"a state carrying {carried[0]}"
    return None


def flow_run_states(field: Field, role: str, settings: dict) -> Optional[str]:
    states = ((field.arguments.get("input") or {}).get("states")) or []
    return states_refusal(states, FLOW_RUN_STATES, "flow run")


def task_run_states(field: Field, role: str, settings: dict) -> Optional[str]:
    states = ((field.arguments.get("input") or {}).get("states")) or []
    return states_refusal(states, TASK_RUN_STATES, "task run")


def create_flow_run(field: Field, role: str, settings: dict) -> Optional[str]:
    """A run of a registered flow with parameters and a name, as the UI's Run page starts it:
    the flow's own run config with its labels emptied (Run.vue), an empty context, and the
    group's or the run config's labels; a maintainer may send the run to other agents' labels
    (the agent still checks what it starts). `settings["flows"]`: the flows by id, as
    registered."""
    given = field.arguments.get("input") or {}
    flow = settings.get("flows", {}).get(given.get("flow_id"))
    if flow is None:
        return "a run of a flow that is not registered (by flow_id)"
    if given.get("context") not in (None, {}):
        return "a run with its own context"
    own = flow.get("run_config") or {}
    if given.get("run_config") not in (None, own, {**own, "labels": []}):
        return "a run with its own run_config"
    labels = given.get("labels")
    if not at_least(role, "maintainer") and labels not in (
        None,
        [],
        (flow.get("flow_group") or {}).get("labels"),
        own.get("labels"),
    ):
        return "a run with labels other than the flow's (maintainer or above)"
    return None


def create_cloud_hook(field: Field, role: str, settings: dict) -> Optional[str]:
    config = (field.arguments.get("input") or {}).get("config")
    allowed = settings.get("NOTIFY_WEBHOOK_URL")
    if not allowed or not isinstance(config, dict) or config.get("url") != allowed:
        return "an alert hook to any address but NOTIFY_WEBHOOK_URL"
    return None


MUTATIONS: Dict[str, Rule] = {
    "create_flow_run": Rule("operator", "Mutations/create-flow-run.gql", create_flow_run),
    "cancel_flow_run": Rule("operator", "FlowRun/cancel-flow-run.gql, SystemActions/CancelAll.vue"),
    "set_flow_run_states": Rule(
        "operator", "TaskRun/set-flow-run-states.gql (Restart-Dialog.vue)", flow_run_states
    ),
    "set_task_run_states": Rule(
        "operator", "TaskRun/set-task-run-states.gql (Restart-Dialog.vue)", task_run_states
    ),
    "write_run_logs": Rule("operator", "Update/write-run-logs.gql (changeStateMixin.js)"),
    "set_schedule_active": Rule("operator", "Mutations/set-schedule-active.gql (ScheduleToggle.vue)"),
    "set_schedule_inactive": Rule("operator", "Mutations/set-schedule-inactive.gql (ScheduleToggle.vue)"),
    "archive_flow": Rule("maintainer", "prefect 0.15.9 client (the UI deletes instead)"),
    "delete_flow": Rule("maintainer", "DeleteFlowButton.vue (inline): one version"),
    "delete_flow_group": Rule("maintainer", "DeleteFlowButton.vue (inline): every version"),
    "delete_flow_run": Rule("maintainer", "Mutations/delete-flow-run.gql"),
    "set_flow_group_schedule": Rule("maintainer", "Mutations/set-flow-group-schedule.gql"),
    "delete_flow_group_schedule": Rule("maintainer", "Mutations/delete-flow-group-schedule.gql"),
    "set_flow_group_default_parameters": Rule("maintainer", "Mutations/set-default-params.gql"),
    "set_flow_group_labels": Rule("maintainer", "Mutations/set-labels.gql (LabelEdit.vue)"),
    "create_cloud_hook": Rule(
        "admin", "Mutations/create-cloud-hook.gql (CloudHookForm.vue)", create_cloud_hook
    ),
    "delete_cloud_hook": Rule("admin", "Mutations/delete-cloud-hook.gql"),
    "set_cloud_hook_active": Rule("admin", "Mutations/set-cloud-hook-active.gql"),
    "set_cloud_hook_inactive": Rule("admin", "Mutations/set-cloud-hook-inactive.gql"),
}
# API_TOKEN's: an agent on another host and the flow runs it starts (prefect 0.15.9
# agent/agent.py, client/client.py, engine/cloud/*.py, artifacts.py). Their states carry
# results; the run reads them only from its own folder (flows/shared/results.py). The agents
# and flow runs of the server's own host reach apollo inside, not through the door.
AGENT_MUTATIONS: Dict[str, Rule] = {
    name: Rule(AGENT, source)
    for name, source in {
        "get_runs_in_queue": "agent/agent.py query_flow_runs",
        "register_agent": "client/client.py register_agent",
        "set_flow_run_states": "agent/agent.py (Submitted), engine/cloud/flow_runner.py",
        "set_task_run_states": "engine/cloud/task_runner.py",
        "get_or_create_task_run_info": "client/client.py get_task_run_info",
        "update_flow_run_heartbeat": "client/client.py update_flow_run_heartbeat",
        "write_run_logs": "agent/agent.py, utilities/logging.py",
        "set_flow_run_name": "client/client.py set_flow_run_name",
        "set_task_run_name": "client/client.py set_task_run_name",
        "create_task_run_artifact": "artifacts.py create_link/create_markdown",
        "update_task_run_artifact": "artifacts.py update_link/update_markdown",
        "delete_task_run_artifact": "artifacts.py delete_artifact",
    }.items()
}


# The monitoring pages (proxy/monitoring.caddy) read with GET, Prometheus's queries with POST
# too (web/api/v1/api.go of Prometheus 2.42). The one change a person makes there is a
# silence, for maintenance (Alertmanager 0.25's api/v2/openapi.yaml: POST /silences, DELETE
# /silence/{silenceID}; v1 alike). Posting alerts is Prometheus's alone, on its own network.
PROMETHEUS_READS = re.compile(
    r"^/prometheus/api/v1/(query|query_range|query_exemplars|series|labels|format_query)$"
)
SILENCES = re.compile(r"^/alertmanager/api/v[12]/(silences|silence/[^/]+)$")
SILENCE_ROLE = "maintainer"


def monitoring_read(method: str, path: str) -> bool:
    return method in ("GET", "HEAD") or (method == "POST" and bool(PROMETHEUS_READS.match(path)))


def monitoring_refusal(method: str, path: str, role: str) -> Optional[str]:
    """Why `role` may not send `method path` to Prometheus or Alertmanager; None: it may."""
    if role == AGENT:
        return "the monitoring pages: people only, not the agents' token"
    if monitoring_read(method, path):
        return None
    if method in ("POST", "DELETE") and SILENCES.match(path):
        return None if at_least(role, SILENCE_ROLE) else f"a silence: {SILENCE_ROLE} or above, not {role}"
    return f"{method} {path}: no role may send it through the door"


def refusal(field: Field, role: str, settings: dict) -> Optional[str]:
    """Why `role` may not send `field`, as the one line the caller gets; None: it may."""
    if field.kind == "query":
        least = SECRET_READS.get(field.name)
        if least and not at_least(role, least):
            return f"{field.name} holds a secret: {least} only, not {role}"
        return None
    rule = (AGENT_MUTATIONS if role == AGENT else MUTATIONS).get(field.name)
    if rule is None and field.name in AGENT_MUTATIONS:
        return f"{field.name}: agents only (API_TOKEN), not {role}"
    if rule is None:
        return f"{field.name}: no role may send it through the door"
    if role != AGENT and not at_least(role, rule.role):
        return f"{field.name}: {rule.role} or above, not {role}"
    if not isinstance(field.arguments.get("input", {}), dict):  # what the checks below read
        return f"{field.name}: its input must be an object"
    problem = rule.check(field, role, settings) if rule.check else None
    return f"{field.name}: no role may send {problem}" if problem else None
