"""What the stand-in does with each operation, as Prefect Server 0.15.9 does it: one
`resolve_<field>` method for every query and mutation of schema.graphql."""
import json
import threading
import uuid

import pendulum
from graphql import GraphQLError, graphql_sync, parse

from tests.prefect_api_standin.schema import build_standin_schema
from tests.prefect_api_standin.tables import Tables, as_time, now

FINISHED_TASK_STATES = {"Success", "Failed", "Cancelled", "TimedOut", "Skipped",
                        "TriggerFailed", "Mapped", "Cached"}


class PrefectAPIStandIn(Tables):
    """The API's state and resolvers; `serve()` puts it on HTTP (server.py)."""

    def __init__(self):
        schema = build_standin_schema()
        super().__init__(schema)
        self.operations = []  # (operation type, root field names, variables)
        self.lock = threading.RLock()
        self._server = None
        fields = [*schema.query_type.fields, *schema.mutation_type.fields]
        self._root = {field: getattr(self, f"resolve_{field}") for field in fields}

    def execute(self, query: str, variables=None) -> dict:
        if isinstance(variables, str):
            variables = json.loads(variables or "null")
        with self.lock:
            result = graphql_sync(self.schema, query, root_value=self._root,
                                  variable_values=variables or {})
            if not result.errors:
                for definition in parse(query).definitions:
                    fields = [s.name.value for s in definition.selection_set.selections]
                    self.operations.append((definition.operation.value, fields, variables))
        body = {"data": result.data}
        if result.errors:
            body["errors"] = [{"message": error.message, "path": error.path} for error in result.errors]
        return body

    def serve(self, host="127.0.0.1", port=0, lifetime=600.0) -> "PrefectAPIStandIn":
        from tests.prefect_api_standin.server import serve

        self._server = serve(self, host, port, lifetime)
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # ---- queries ------------------------------------------------------------------------

    def resolve_hello(self, info):
        return "hello"

    def resolve_tenant(self, info, **args):
        return self.select("tenant", **args)

    def resolve_project(self, info, **args):
        return self.select("project", **args)

    def resolve_flow(self, info, **args):
        return self.select("flow", **args)

    def resolve_flow_run(self, info, **args):
        return self.select("flow_run", **args)

    def resolve_task_run(self, info, **args):
        return self.select("task_run", **args)

    def resolve_flow_by_pk(self, info, id):
        return self.view("flow", self.tables["flow"].get(id))

    def resolve_flow_run_by_pk(self, info, id):
        return self.view("flow_run", self.tables["flow_run"].get(id))

    def resolve_task_run_by_pk(self, info, id):
        return self.view("task_run", self.tables["task_run"].get(id))

    def resolve_get_task_run_info(self, info, task_run_id):
        return self._task_run_info(self.tables["task_run"][task_run_id])

    # ---- mutations ----------------------------------------------------------------------

    def resolve_create_tenant(self, info, input):
        return {"id": self.insert("tenant", **input)["id"]}

    def resolve_register_edges(self, info, input):
        return {"success": input["flow_id"] in self.tables["flow"]}

    def resolve_create_flow_run(self, info, input):
        return {"id": self.create_flow_run(**input)["id"]}

    def resolve_register_agent(self, info, input):
        return {"id": self.insert("agent", **input)["id"]}

    def resolve_set_flow_run_states(self, info, input):
        return self._set_states("flow_run", input["states"])

    def resolve_set_task_run_states(self, info, input):
        return self._set_states("task_run", input["states"])

    def resolve_update_flow_run_heartbeat(self, info, input):
        return self._heartbeat("flow_run", input["flow_run_id"])

    def resolve_update_task_run_heartbeat(self, info, input):
        return self._heartbeat("task_run", input["task_run_id"])

    def resolve_create_task_run_artifact(self, info, input):
        return {"id": self.insert("task_run_artifact", **input)["id"]}

    def _tenant(self, tenant_id):
        if tenant_id not in self.tables["tenant"]:
            raise GraphQLError(f"stand-in: no tenant {tenant_id}")

    def resolve_create_project(self, info, input):
        self._tenant(input["tenant_id"])
        if self.select("project", {"name": {"_eq": input["name"]}}):
            raise GraphQLError("Uniqueness violation: a project with this name exists")
        return {"id": self.insert("project", tenant_id=input["tenant_id"], name=input["name"])["id"]}

    def resolve_create_flow_from_compressed_string(self, info, input):
        from prefect.utilities.graphql import decompress

        serialized = decompress(input["serialized_flow"])
        project = self.tables["project"].get(input["project_id"])
        if project is None:
            raise GraphQLError(f"stand-in: no project {input['project_id']}")
        versions = sorted(
            (flow for flow in self.tables["flow"].values()
             if flow["name"] == serialized["name"] and flow["project_id"] == project["id"]),
            key=lambda flow: flow["version"])
        latest = versions[-1] if versions else None
        key = input.get("idempotency_key")
        if latest and key is not None and latest["idempotency_key"] == key:
            return {"id": latest["id"]}
        group = self.tables["flow_group"].get(latest["flow_group_id"]) if latest else None
        if group is None:
            group = self.insert("flow_group", labels=None, default_parameters={}, schedule=None)
        for old in versions:
            old["archived"], old["is_schedule_active"] = True, False
        flow = self.insert(
            "flow", name=serialized["name"], version=(latest["version"] + 1 if latest else 1),
            version_group_id=input.get("version_group_id"), flow_group_id=group["id"],
            project_id=project["id"], archived=False,
            is_schedule_active=bool(input.get("set_schedule_active")),
            schedule=serialized.get("schedule"),
            parameters=serialized.get("parameters"), storage=serialized.get("storage"),
            environment=serialized.get("environment"), run_config=serialized.get("run_config"),
            core_version=serialized.get("__version__"), serialized_flow=serialized,
            idempotency_key=key, settings={})
        return {"id": flow["id"]}

    def resolve_register_tasks(self, info, input):
        flow = self.tables["flow"][input["flow_id"]]
        known = {task["slug"] for task in self.tables["task"].values() if task["flow_id"] == flow["id"]}
        for task in input["serialized_tasks"]:
            if task["slug"] not in known:
                self.insert("task", flow_id=flow["id"], slug=task["slug"], name=task["name"],
                            mapped=False)
        return {"success": True}

    def resolve_set_schedule_active(self, info, input):
        self.tables["flow"][input["flow_id"]]["is_schedule_active"] = True
        return {"success": True}

    def create_flow_run(self, flow_id=None, version_group_id=None, parameters=None,
                        run_config=None, labels=None, context=None, scheduled_start_time=None,
                        idempotency_key=None, flow_run_name=None, auto_scheduled=False):
        """As the server does: Scheduled, the flow's default parameters under the given
        ones, the run config's labels, and a Pending task run for every task."""
        from prefect.engine.state import Scheduled

        flow = self.tables["flow"].get(flow_id)
        if flow is None or flow["archived"]:
            raise GraphQLError(f"stand-in: no unarchived flow {flow_id}")
        defaults = {p["name"]: p.get("default") for p in flow["parameters"] or []}
        given = parameters or {}
        unknown = set(given) - set(defaults)
        if unknown:
            raise GraphQLError(f"Extra parameters were supplied: {sorted(unknown)}")
        run_config = run_config or flow["run_config"]
        start = scheduled_start_time or now()
        state = Scheduled(message="Flow run scheduled.", start_time=pendulum.parse(start))
        run = self.insert(
            "flow_run", flow_id=flow_id, name=flow_run_name or f"run-{uuid.uuid4().hex[:8]}",
            version=1, state="Scheduled", serialized_state=state.serialize(),
            state_message=state.message, parameters={**defaults, **given},
            context=context or {}, run_config=run_config,
            labels=sorted(labels if labels is not None else (run_config or {}).get("labels") or []),
            scheduled_start_time=pendulum.parse(start).in_timezone("UTC").isoformat(),
            start_time=None, end_time=None, heartbeat=None, auto_scheduled=auto_scheduled,
            idempotency_key=idempotency_key)
        for task in self.tables["task"].values():
            if task["flow_id"] == flow_id:
                self._new_task_run(run["id"], task["id"], -1)
        return run

    def _new_task_run(self, flow_run_id, task_id, map_index):
        from prefect.engine.state import Pending

        state = Pending(message="Task run created")
        return self.insert(
            "task_run", flow_run_id=flow_run_id, task_id=task_id, map_index=map_index,
            name=None, version=1, state="Pending", serialized_state=state.serialize(),
            state_message=state.message, state_start_time=None, start_time=None,
            end_time=None, heartbeat=None)

    @staticmethod
    def _task_run_info(run):
        return {key: run[key] for key in ("id", "version", "state", "serialized_state")}

    def resolve_get_or_create_task_run_info(self, info, input):
        index = input.get("map_index")
        index = -1 if index is None else index
        for run in self.tables["task_run"].values():
            if (run["flow_run_id"], run["task_id"], run["map_index"]) == (
                    input["flow_run_id"], input["task_id"], index):
                return self._task_run_info(run)
        return self._task_run_info(self._new_task_run(input["flow_run_id"], input["task_id"], index))

    def resolve_get_runs_in_queue(self, info, input):
        """Scheduled runs due before `before` whose labels the agent's labels cover."""
        self._tenant(input["tenant_id"])
        before = as_time(input.get("before") or now())
        agent_labels = set(input.get("labels") or [])
        due = [run for run in self.tables["flow_run"].values()
               if run["state"] == "Scheduled" and as_time(run["scheduled_start_time"]) <= before
               and set(run["labels"]) <= agent_labels]
        return {"flow_run_ids": [run["id"] for run in due]}

    def _set_states(self, table, updates):
        results = []
        for update in updates:
            run = self.tables[table].get(update[f"{table}_id"])
            if run is None:
                raise GraphQLError(f"stand-in: no {table} {update[f'{table}_id']}")
            # No check of update["version"]: the real server ignores it (PrefectHQ/server
            # 0f74a9a, api/states.py), and a stricter check fails runs it would pass.
            state = update["state"]
            stamp = now()
            run.update(version=run["version"] + 1, state=state["type"], serialized_state=state,
                       state_message=state.get("message"), state_start_time=stamp)
            if state["type"] == "Running" and not run["start_time"]:
                run["start_time"] = stamp
            if state["type"] in FINISHED_TASK_STATES:
                run["end_time"] = stamp
            self.insert("state_history", run_id=run["id"], type=state["type"],
                        message=state.get("message"))
            results.append({"id": run["id"], "status": "SUCCESS", "message": None})
        return {"states": results}

    def _heartbeat(self, table, run_id):
        self.tables[table][run_id]["heartbeat"] = now()
        return {"success": True}

    def resolve_write_run_logs(self, info, input):
        for log in input["logs"]:
            if log["flow_run_id"] not in self.tables["flow_run"]:
                raise GraphQLError(f"stand-in: no flow run {log['flow_run_id']}")
            self.insert("log", **log)
        return {"success": True}

    def schedule_runs(self, count: int = 10) -> int:
        """Towel's scheduler: the next `count` runs of every active schedule, once each."""
        from prefect.serialization.schedule import ScheduleSchema

        created = 0
        with self.lock:
            for flow in list(self.tables["flow"].values()):
                if flow["archived"] or not flow["is_schedule_active"] or not flow["schedule"]:
                    continue
                schedule = ScheduleSchema().load(flow["schedule"])
                for event in schedule.next(count, after=pendulum.now("UTC").subtract(seconds=1),
                                           return_events=True):
                    key = f"auto-scheduled:{flow['id']}:{event.start_time.in_timezone('UTC').isoformat()}"
                    if any(run["idempotency_key"] == key for run in self.tables["flow_run"].values()):
                        continue
                    self.create_flow_run(
                        flow_id=flow["id"], parameters=event.parameter_defaults or None,
                        labels=event.labels, scheduled_start_time=event.start_time.isoformat(),
                        idempotency_key=key, auto_scheduled=True)
                    created += 1
        return created

