"""The stand-in's resolvers, as PrefectHQ/server's graphql/ modules are: each hands a field's
arguments to a rule of the stand-in (flows.py, runs.py, hooks.py, api.py) and shapes the
answer. The tables' own queries (`flow_run`, `flow_run_by_pk`, `flow_run_aggregate`, ...)
follow from the schema instead (api.py)."""

from tests.prefect_api_standin.tables import now


def hello(api, info):
    return "hello"


def get_task_run_info(api, info, task_run_id):
    return api.task_run_info(api.tables["task_run"][task_run_id])


def create_tenant(api, info, input):
    return {"id": api.insert("tenant", **input)["id"]}


def register_agent(api, info, input):
    return {"id": api.insert("agent", **input)["id"]}


def create_project(api, info, input):
    return {"id": api.create_project(input["tenant_id"], input["name"])["id"]}


def create_flow_from_compressed_string(api, info, input):
    return {"id": api.create_flow(**input)["id"]}


def register_tasks(api, info, input):
    api.register_tasks(input["flow_id"], input["serialized_tasks"])
    return {"success": True}


def register_edges(api, info, input):
    return {"success": input["flow_id"] in api.tables["flow"]}


def set_schedule_active(api, info, input):
    return {"success": api.set_schedule_active(input["flow_id"])}


def archive_flow(api, info, input):
    flow = api.tables["flow"].get(input["flow_id"])
    if flow is not None:
        api.archive_flow(flow)
    return {"success": flow is not None}


def set_flow_group_run_config(api, info, input):
    return {"success": api.set_flow_group_run_config(**input)}


def create_flow_run(api, info, input):
    return {"id": api.create_flow_run(**input)["id"]}


def get_runs_in_queue(api, info, input):
    """graphql/runs.py: the agent names itself in a header (X-PREFECT-AGENT-ID), and the
    server records when it last asked (api/runs.py 511-512, api/agents.py 69-82)."""
    agent = api.tables["agent"].get(info.context["headers"].get("x-prefect-agent-id"))
    if agent is not None:
        agent["last_queried"] = now()
    return {"flow_run_ids": api.runs_in_queue(**input)}


def set_flow_run_states(api, info, input):
    return {"states": api.set_states("flow_run", input["states"])}


def set_task_run_states(api, info, input):
    return {"states": api.set_states("task_run", input["states"])}


def get_or_create_task_run_info(api, info, input):
    return api.task_run_info(api.get_or_create_task_run(**input))


def update_flow_run_heartbeat(api, info, input):
    api.heartbeat("flow_run", input["flow_run_id"])
    return {"success": True}


def update_task_run_heartbeat(api, info, input):
    api.heartbeat("task_run", input["task_run_id"])
    return {"success": True}


def write_run_logs(api, info, input):
    api.write_logs(input["logs"])
    return {"success": True}


def create_task_run_artifact(api, info, input):
    return {"id": api.create_artifact(**input)["id"]}


def create_cloud_hook(api, info, input):
    return {"id": api.create_cloud_hook(**input)["id"]}


def delete_cloud_hook(api, info, input):
    return {"success": api.delete_cloud_hook(input["cloud_hook_id"])}


def delete_flow_run(api, info, input):
    return {"success": api.delete_flow_run(input["flow_run_id"])}
