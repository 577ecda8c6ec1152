"""What the stand-in does with each operation, as Prefect Server 0.15.9 does it: one
`resolve_<field>` method for every query and mutation of schema.graphql."""
import json
import threading
import uuid

import pendulum
from graphql import GraphQLError, graphql_sync, parse

from tests.prefect_api_standin.schema import build_standin_schema
from tests.prefect_api_standin.tables import Tables, as_time, now

QUEUED_RUNS_RETURNED_LIMIT = 25  # prefect_server's config.toml
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

    def resolve_flow_group(self, info, **args):
        return self.select("flow_group", **args)

    def resolve_flow_group_by_pk(self, info, id):
        return self.view("flow_group", self.tables["flow_group"].get(id))

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
        """As graphql/flows.py and api/flows.py create_flow do (PrefectHQ/server 0f74a9a):
        versions are grouped by version_group_id (given, else the one of the latest flow of
        that name in the project, else a new one), which names the flow group; the group's
        settings keep the last idempotency key, and a matching key returns the current
        version; a new version archives the others."""
        from prefect.utilities.graphql import decompress

        serialized = decompress(input["serialized_flow"])
        project = self.tables["project"].get(input["project_id"])
        if project is None:
            raise GraphQLError(f"stand-in: no project {input['project_id']}")
        group_id = input.get("version_group_id")
        if not group_id:
            named = self.select("flow", {"project_id": {"_eq": project["id"]},
                                         "name": {"_eq": serialized["name"]}},
                                order_by={"created": "desc"}, limit=1)
            group_id = named[0]["version_group_id"] if named else str(uuid.uuid4())
        key = input.get("idempotency_key")
        group = next((g for g in self.tables["flow_group"].values() if g["name"] == group_id), None)
        if group is None:
            group = self.insert("flow_group", name=group_id, labels=None, default_parameters={},
                                schedule=None, run_config=None, description=None,
                                settings={"heartbeat_enabled": True, "lazarus_enabled": True,
                                          "version_locking_enabled": False,
                                          "idempotency_key": key})
        else:
            current = self.select("flow", {"version_group_id": {"_eq": group_id},
                                           "archived": {"_eq": False}},
                                  order_by={"version": "desc"}, limit=1)
            if key and group["settings"].get("idempotency_key") == key and current:
                return {"id": current[0]["id"]}
            group["settings"]["idempotency_key"] = key
        versions = [flow for flow in self.tables["flow"].values() if flow["version_group_id"] == group_id]
        flow = self.insert(
            "flow", name=serialized["name"], version=max((f["version"] for f in versions), default=0) + 1,
            version_group_id=group_id, flow_group_id=group["id"],
            project_id=project["id"], archived=False, is_schedule_active=False,
            schedule=serialized.get("schedule"),
            parameters=serialized.get("parameters"), storage=serialized.get("storage"),
            environment=serialized.get("environment"), run_config=serialized.get("run_config"),
            core_version=serialized.get("__version__"), serialized_flow=serialized,
            description=input.get("description"), settings=group["settings"])
        for old in versions:
            if not old["archived"]:
                self.archive_flow(old)
        if input.get("set_schedule_active", True):
            self.resolve_set_schedule_active(info, {"flow_id": flow["id"]})
        return {"id": flow["id"]}

    def archive_flow(self, flow):
        """As api/flows.py archive_flow: its auto-scheduled runs still Scheduled are deleted,
        its ad-hoc ones still Scheduled are cancelled."""
        from prefect.engine.state import Cancelled

        flow["archived"], flow["is_schedule_active"] = True, False
        for run in list(self.tables["flow_run"].values()):
            if run["flow_id"] != flow["id"] or run["state"] != "Scheduled":
                continue
            if run["auto_scheduled"]:
                del self.tables["flow_run"][run["id"]]
                for task_run in [t for t in self.tables["task_run"].values() if t["flow_run_id"] == run["id"]]:
                    del self.tables["task_run"][task_run["id"]]
            else:
                cancelled = Cancelled(message=f"Flow {flow['id']} was archived.")
                self._set_states("flow_run", [{"flow_run_id": run["id"], "state": cancelled.serialize()}])

    def resolve_register_tasks(self, info, input):
        flow = self.tables["flow"][input["flow_id"]]
        known = {task["slug"] for task in self.tables["task"].values() if task["flow_id"] == flow["id"]}
        for task in input["serialized_tasks"]:
            if task["slug"] not in known:
                self.insert("task", flow_id=flow["id"], slug=task["slug"], name=task["name"],
                            mapped=False)
        return {"success": True}

    def resolve_set_schedule_active(self, info, input):
        """As api/flows.py set_schedule_active: only a flow with a schedule; its next runs
        are made at once, as the scheduler would."""
        flow = self.tables["flow"][input["flow_id"]]
        if not flow["schedule"]:
            return {"success": False}
        flow["is_schedule_active"] = True
        self.schedule_runs(flow_id=flow["id"])
        return {"success": True}

    def create_flow_run(self, flow_id=None, version_group_id=None, parameters=None,
                        run_config=None, labels=None, context=None, scheduled_start_time=None,
                        idempotency_key=None, flow_run_name=None, auto_scheduled=False):
        """As api/runs.py create_flow_run (PrefectHQ/server 0f74a9a): the flow by id, or the
        latest unarchived version of the group; a run with the same idempotency key for that
        flow is returned instead of a new one; parameters are the flow's truthy defaults, then
        the group's, then the given ones, undeclared ones kept; labels and run config from the
        first of: given, the group's, the flow's run config. Then Scheduled, with a Pending
        task run for every task (a database trigger does that on the server)."""
        from prefect.engine.state import Scheduled

        if flow_id:
            flow = self.tables["flow"].get(flow_id)
        else:
            latest = self.select("flow", {"version_group_id": {"_eq": version_group_id},
                                          "archived": {"_eq": False}}, order_by={"version": "desc"})
            flow = self.tables["flow"][latest[0]["id"]] if latest else None
        if flow is None:
            raise GraphQLError(f"Flow {flow_id} not found" if flow_id else
                               f"Version group {version_group_id} has no unarchived flows.")
        if flow["archived"]:
            raise GraphQLError(f"Flow {flow['id']} is archived.")
        if idempotency_key:
            for run in self.tables["flow_run"].values():
                if run["flow_id"] == flow["id"] and run["idempotency_key"] == idempotency_key:
                    return run
        group = self.tables["flow_group"][flow["flow_group_id"]]
        if labels is None:
            if run_config is not None:
                labels = run_config.get("labels") or []
            elif group["labels"] is not None:
                labels = group["labels"]
            elif group["run_config"] is not None:
                labels = group["run_config"].get("labels") or []
            else:
                labels = (flow["run_config"] or {}).get("labels") or []
        if run_config is None:
            run_config = group["run_config"] if group["run_config"] is not None else flow["run_config"]
        run_parameters = {p["name"]: p["default"] for p in flow["parameters"] or [] if p.get("default")}
        run_parameters.update(group["default_parameters"] or {})
        run_parameters.update(parameters or {})
        start = pendulum.parse(scheduled_start_time) if scheduled_start_time else pendulum.now("UTC")
        state = Scheduled(message="Flow run scheduled.", start_time=start)
        run = self.insert(
            "flow_run", flow_id=flow["id"], name=flow_run_name or f"run-{uuid.uuid4().hex[:8]}",
            version=1, state="Scheduled", serialized_state=state.serialize(),
            state_message=state.message, parameters=run_parameters,
            context=context or {}, run_config=run_config, labels=sorted(labels),
            scheduled_start_time=start.in_timezone("UTC").isoformat(),
            start_time=None, end_time=None, heartbeat=None, auto_scheduled=auto_scheduled,
            idempotency_key=idempotency_key)
        self._flow_run_state(run, state.serialize())
        for task in self.tables["task"].values():
            if task["flow_id"] == flow["id"]:
                self._new_task_run(run["id"], task["id"], -1)
        return run

    def _flow_run_state(self, run, serialized_state):
        """A flow run's state history, as the server's flow_run_state table keeps it."""
        self.insert("flow_run_state", flow_run_id=run["id"], timestamp=now(),
                    state=serialized_state["type"], message=serialized_state.get("message"),
                    serialized_state=serialized_state)

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
        """As api/runs.py get_runs_in_queue: Scheduled runs due before `before`, oldest
        first, at most 25 (queued_runs_returned_limit); a run goes to an agent only if the
        agent has all its labels, and a run without labels never to an agent with labels."""
        self._tenant(input["tenant_id"])
        before = as_time(input.get("before") or now())
        agent_labels = set(input.get("labels") or [])
        due = sorted((run for run in self.tables["flow_run"].values()
                      if run["state"] == "Scheduled" and as_time(run["scheduled_start_time"]) <= before),
                     key=lambda run: as_time(run["scheduled_start_time"]))
        claimable = [run["id"] for run in due if set(run["labels"]) <= agent_labels
                     and (run["labels"] or not agent_labels)]
        return {"flow_run_ids": claimable[:QUEUED_RUNS_RETURNED_LIMIT]}

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
            if table == "flow_run":
                self._flow_run_state(run, state)
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

    def schedule_runs(self, count: int = 10, flow_id=None) -> int:
        """Towel's scheduler (api/flows.py schedule_flow_runs): the next `count` runs of every
        active schedule, or of one flow's, once each (by idempotency key)."""
        from prefect.serialization.schedule import ScheduleSchema

        created = 0
        with self.lock:
            for flow in list(self.tables["flow"].values()):
                if (flow_id and flow["id"] != flow_id) or flow["archived"] \
                        or not flow["is_schedule_active"] or not flow["schedule"]:
                    continue
                schedule = ScheduleSchema().load(flow["schedule"])
                for event in schedule.next(count, after=pendulum.now("UTC").subtract(seconds=1),
                                           return_events=True):
                    runs = len(self.tables["flow_run"])
                    self.create_flow_run(
                        flow_id=flow["id"], parameters=event.parameter_defaults or None,
                        labels=event.labels, scheduled_start_time=event.start_time.isoformat(),
                        idempotency_key=f"auto-scheduled:{event.start_time.in_timezone('UTC')}",
                        auto_scheduled=True)
                    created += len(self.tables["flow_run"]) - runs
        return created
