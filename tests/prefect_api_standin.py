"""A stand-in for Prefect Server's GraphQL API (apollo), for tests on machines that cannot
pull the server's images.

It answers the part of the API that prefect 0.15.9's Client, Docker agent and flow/task
runners use to register a flow, schedule it, claim runs and report their states and logs.
Every request is parsed and validated by graphql-core against the schema below: an
operation, field or argument it does not declare is an error, and so is a filter it cannot
honour, so a change in what Prefect sends fails a test instead of passing silently.
State is kept in memory; every operation is recorded in `operations`.

    python -m tests.prefect_api_standin --host 0.0.0.0 --port 4200 --lifetime 900

Besides GraphQL at any POST path, it serves apollo's health check
(GET /.well-known/apollo/server-health) and, for tests in other processes, GET
/standin/state (the tables and operations as JSON) and POST /standin/schedule?count=N (a
scheduler pass, as towel's scheduler makes).
"""
import argparse
import json
import signal
import threading
import uuid
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pendulum
from graphql import (
    EnumValueNode, GraphQLError, GraphQLScalarType, ObjectValueNode, build_schema, graphql_sync,
    parse,
)
from graphql.utilities import value_from_ast_untyped

SCHEMA_SDL = """
scalar JSON
scalar UUID
scalar timestamptz
scalar tenant_bool_exp
scalar project_bool_exp
scalar flow_bool_exp
scalar flow_run_bool_exp
scalar task_run_bool_exp
scalar tenant_order_by
scalar flow_order_by
scalar flow_run_order_by
scalar task_run_order_by

type Query {
  hello: String
  tenant(where: tenant_bool_exp, order_by: [tenant_order_by!], limit: Int): [tenant!]!
  project(where: project_bool_exp, limit: Int): [project!]!
  flow(where: flow_bool_exp, order_by: [flow_order_by!], limit: Int, offset: Int): [flow!]!
  flow_by_pk(id: UUID!): flow
  flow_run(where: flow_run_bool_exp, order_by: [flow_run_order_by!], limit: Int, offset: Int): [flow_run!]!
  flow_run_by_pk(id: UUID!): flow_run
  task_run(where: task_run_bool_exp, order_by: [task_run_order_by!], limit: Int): [task_run!]!
  task_run_by_pk(id: UUID!): task_run
  get_task_run_info(task_run_id: UUID!): task_run_info_payload
}

type Mutation {
  create_tenant(input: create_tenant_input!): id_payload
  create_project(input: create_project_input!): id_payload
  create_flow_from_compressed_string(input: create_flow_from_compressed_string_input!): id_payload
  register_tasks(input: register_tasks_input!): success_payload
  register_edges(input: register_edges_input!): success_payload
  set_schedule_active(input: set_schedule_active_input!): success_payload
  create_flow_run(input: create_flow_run_input!): id_payload
  register_agent(input: register_agent_input!): id_payload
  get_runs_in_queue(input: get_runs_in_queue_input!): runs_in_queue_payload
  set_flow_run_states(input: set_flow_run_states_input!): set_states_payload
  set_task_run_states(input: set_task_run_states_input!): set_states_payload
  get_or_create_task_run_info(input: get_or_create_task_run_info_input!): task_run_info_payload
  update_flow_run_heartbeat(input: update_flow_run_heartbeat_input!): success_payload
  update_task_run_heartbeat(input: update_task_run_heartbeat_input!): success_payload
  write_run_logs(input: write_run_logs_input!): success_payload
  create_task_run_artifact(input: create_task_run_artifact_input!): id_payload
}

input create_tenant_input { name: String!, slug: String! }
input create_project_input { tenant_id: String!, name: String!, description: String }
input create_flow_from_compressed_string_input {
  serialized_flow: String!, project_id: UUID!, version_group_id: String,
  set_schedule_active: Boolean, description: String, idempotency_key: String
}
input register_tasks_input { flow_id: UUID!, serialized_tasks: JSON! }
input register_edges_input { flow_id: UUID!, serialized_edges: JSON! }
input set_schedule_active_input { flow_id: UUID! }
input create_flow_run_input {
  flow_id: UUID, version_group_id: String, parameters: JSON, run_config: JSON,
  labels: [String!], context: JSON, scheduled_start_time: timestamptz,
  idempotency_key: String, flow_run_name: String
}
input register_agent_input {
  tenant_id: UUID, labels: [String!], agent_config_id: UUID, type: String!, name: String
}
input get_runs_in_queue_input { tenant_id: UUID!, before: timestamptz, labels: [String!] }
input set_flow_run_state_input { flow_run_id: UUID!, version: Int, state: JSON! }
input set_flow_run_states_input { states: [set_flow_run_state_input!]! }
input set_task_run_state_input {
  task_run_id: UUID!, version: Int, state: JSON!, flow_run_version: Int
}
input set_task_run_states_input { states: [set_task_run_state_input!]! }
input get_or_create_task_run_info_input { flow_run_id: UUID!, task_id: UUID!, map_index: Int }
input update_flow_run_heartbeat_input { flow_run_id: UUID! }
input update_task_run_heartbeat_input { task_run_id: UUID! }
input write_run_log_input {
  flow_run_id: UUID!, task_run_id: UUID, timestamp: timestamptz, message: String,
  name: String, level: String, info: JSON
}
input write_run_logs_input { logs: [write_run_log_input!]! }
input create_task_run_artifact_input {
  task_run_id: UUID!, kind: String!, data: JSON!, tenant_id: UUID
}

type id_payload { id: UUID }
type success_payload { success: Boolean }
type runs_in_queue_payload { flow_run_ids: [String!] }
type set_state_payload { id: UUID, status: String, message: String }
type set_states_payload { states: [set_state_payload!] }
type task_run_info_payload { id: UUID, version: Int, state: String, serialized_state: JSON }

type tenant { id: UUID!, name: String!, slug: String! }
type project { id: UUID!, name: String!, tenant_id: UUID! }
type flow_group { id: UUID!, labels: JSON, default_parameters: JSON, schedule: JSON }
type flow {
  id: UUID!, name: String!, version: Int!, version_group_id: String, flow_group_id: UUID!,
  flow_group: flow_group!, project_id: UUID!, project: project!, archived: Boolean!,
  is_schedule_active: Boolean!, schedule: JSON, parameters: JSON, storage: JSON,
  environment: JSON, run_config: JSON, core_version: String, serialized_flow: JSON,
  idempotency_key: String, settings: JSON, tasks: [task!]!
}
type task { id: UUID!, flow_id: UUID!, slug: String!, name: String, mapped: Boolean }
type flow_run {
  id: UUID!, name: String, flow_id: UUID!, flow: flow!, version: Int!, state: String,
  serialized_state: JSON, state_message: String, parameters: JSON, context: JSON,
  labels: JSON, run_config: JSON, scheduled_start_time: timestamptz!,
  start_time: timestamptz, end_time: timestamptz, heartbeat: timestamptz,
  auto_scheduled: Boolean!,
  task_runs(where: task_run_bool_exp, order_by: [task_run_order_by!]): [task_run!]!
}
type task_run {
  id: UUID!, flow_run_id: UUID!, flow_run: flow_run!, task_id: UUID!, task: task!,
  map_index: Int!, name: String, version: Int!, state: String, serialized_state: JSON,
  state_message: String, state_start_time: timestamptz, start_time: timestamptz,
  end_time: timestamptz, heartbeat: timestamptz
}
"""

# How rows of one table reach rows of another, for nested results and nested filters.
RELATIONS = {
    ("flow", "project"): ("project", "project_id", "id", False),
    ("flow", "flow_group"): ("flow_group", "flow_group_id", "id", False),
    ("flow", "tasks"): ("task", "id", "flow_id", True),
    ("flow_run", "flow"): ("flow", "flow_id", "id", False),
    ("flow_run", "task_runs"): ("task_run", "id", "flow_run_id", True),
    ("task_run", "flow_run"): ("flow_run", "flow_run_id", "id", False),
    ("task_run", "task"): ("task", "task_id", "id", False),
}
COMPARISONS = {
    "_eq": lambda a, b: a == b,
    "_neq": lambda a, b: a != b,
    "_in": lambda a, b: a in b,
    "_nin": lambda a, b: a not in b,
    "_lt": lambda a, b: a is not None and a < b,
    "_lte": lambda a, b: a is not None and a <= b,
    "_gt": lambda a, b: a is not None and a > b,
    "_gte": lambda a, b: a is not None and a >= b,
    "_is_null": lambda a, b: (a is None) == b,
}
TIME_COLUMNS = {"scheduled_start_time", "start_time", "end_time", "heartbeat",
                "state_start_time", "timestamp", "created"}


def _order_by_literal(node, variables=None):
    """Hasura's order_by takes the enums asc/desc; a quoted "asc" is an error there too."""
    if not isinstance(node, ObjectValueNode) or not all(
            isinstance(field.value, EnumValueNode) for field in node.fields):
        raise GraphQLError("stand-in: order_by takes {column: asc|desc} with enum values")
    return value_from_ast_untyped(node, variables)


def build_standin_schema():
    """The SDL above; its own scalars take any JSON value, checked by the resolvers."""
    schema = build_schema(SCHEMA_SDL)
    for name, type_ in schema.type_map.items():
        if isinstance(type_, GraphQLScalarType) and name not in {"String", "Int", "Float", "Boolean", "ID"}:
            type_.serialize = type_.parse_value = lambda value: value
            type_.parse_literal = (
                _order_by_literal if name.endswith("_order_by")
                else lambda node, variables=None: value_from_ast_untyped(node, variables))
    return schema


def now() -> str:
    return pendulum.now("UTC").isoformat()


def _time(value):
    return pendulum.parse(value) if isinstance(value, str) else value


class PrefectAPIStandIn:
    """The API's state and resolvers; `serve()` puts it on HTTP."""

    def __init__(self):
        self.schema = build_standin_schema()
        self.tables = {name: {} for name in (
            "tenant", "project", "flow_group", "flow", "task", "flow_run", "task_run",
            "log", "agent", "task_run_artifact", "state_history")}
        self.operations = []  # (operation type, root field names, variables)
        self.lock = threading.RLock()
        self._server = None

    # ---- GraphQL over HTTP ----------------------------------------------------------

    def execute(self, query: str, variables=None) -> dict:
        if isinstance(variables, str):
            variables = json.loads(variables or "null")
        with self.lock:
            result = graphql_sync(self.schema, query, root_value=self._root(),
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
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def reply(self, status, payload):
                data = json.dumps(payload, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.startswith("/.well-known/apollo/server-health"):
                    return self.reply(200, {"status": "pass"})
                if self.path.startswith("/standin/state"):
                    with standin.lock:
                        return self.reply(200, {"tables": standin.tables, "operations": standin.operations})
                self.reply(404, {"error": "not here"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                if self.path.startswith("/standin/schedule"):
                    count = int(parse_qs(urlparse(self.path).query).get("count", ["10"])[0])
                    return self.reply(200, {"created": standin.schedule_runs(count)})
                self.reply(200, standin.execute(payload.get("query", ""), payload.get("variables")))

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        deadline = threading.Timer(lifetime, self.stop)
        deadline.daemon = True
        deadline.start()
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    # ---- rows, views and filters -------------------------------------------------------

    def insert(self, table: str, **row) -> dict:
        row.setdefault("id", str(uuid.uuid4()))
        row.setdefault("created", now())
        self.tables[table][row["id"]] = row
        return row

    def _related(self, table, field, row):
        target, own_key, their_key, many = RELATIONS[(table, field)]
        if their_key == "id":
            return self.tables[target].get(row[own_key])
        rows = [other for other in self.tables[target].values() if other[their_key] == row[own_key]]
        return rows if many else (rows[0] if rows else None)

    def view(self, table: str, row):
        """A row as GraphQL resolves it: relations become callables taking arguments."""
        if row is None:
            return None
        result = dict(row)
        for (owner, field), (target, _, _, many) in RELATIONS.items():
            if owner != table:
                continue
            if many:
                result[field] = (lambda info, where=None, order_by=None, _t=target, _f=field:
                                 self.select(_t, where, order_by, rows=self._related(table, _f, row)))
            else:
                result[field] = (lambda info, _t=target, _f=field:
                                 self.view(_t, self._related(table, _f, row)))
        return result

    def check_filter(self, table: str, where) -> None:
        """Refuses a filter on a column the table does not have or with an unknown operator,
        whether or not there are rows to apply it to."""
        for key, condition in (where or {}).items():
            if key in {"_and", "_or"}:
                for part in condition:
                    self.check_filter(table, part)
            elif key == "_not":
                self.check_filter(table, condition)
            elif (table, key) in RELATIONS:
                self.check_filter(RELATIONS[(table, key)][0], condition)
            elif key in self.schema.type_map[table].fields:
                unknown = set(condition) - set(COMPARISONS)
                if unknown:
                    raise GraphQLError(f"stand-in: cannot honour the operator {sorted(unknown)[0]!r} on {key}")
            else:
                raise GraphQLError(f"stand-in: no column {key!r} to filter {table} on")

    def matches(self, table: str, row: dict, where) -> bool:
        for key, condition in (where or {}).items():
            if key == "_and":
                ok = all(self.matches(table, row, part) for part in condition)
            elif key == "_or":
                ok = any(self.matches(table, row, part) for part in condition)
            elif key == "_not":
                ok = not self.matches(table, row, condition)
            elif (table, key) in RELATIONS:
                target, _, _, many = RELATIONS[(table, key)]
                related = self._related(table, key, row)
                related = related if many else [related] if related else []
                ok = any(self.matches(target, other, condition) for other in related)
            else:
                ok = all(self._compare(key, row.get(key), op, value) for op, value in condition.items())
            if not ok:
                return False
        return True

    @staticmethod
    def _compare(column, actual, op, expected):
        if column in TIME_COLUMNS and op in {"_lt", "_lte", "_gt", "_gte"}:
            actual, expected = _time(actual), _time(expected)
        return COMPARISONS[op](actual, expected)

    def select(self, table, where=None, order_by=None, limit=None, offset=None, rows=None):
        self.check_filter(table, where)
        rows = [row for row in (self.tables[table].values() if rows is None else rows)
                if self.matches(table, row, where)]
        orders = order_by if isinstance(order_by, list) else [order_by] if order_by else []
        for order in reversed(orders):
            for column, direction in reversed(list(order.items())):
                if direction not in {"asc", "desc"}:
                    raise GraphQLError(f"stand-in: cannot order by {column} {direction}")
                rows.sort(key=lambda row: (row[column] is None, row[column]), reverse=direction == "desc")
        rows = rows[offset or 0:]
        rows = rows[:limit] if limit is not None else rows
        return [self.view(table, row) for row in rows]

    # ---- the server's behaviour ---------------------------------------------------------

    def _root(self) -> dict:
        by_pk = lambda table: lambda info, id: self.view(table, self.tables[table].get(id))  # noqa: E731
        lists = lambda table: lambda info, **args: self.select(table, **args)  # noqa: E731
        return {
            "hello": lambda info: "hello",
            "tenant": lists("tenant"), "project": lists("project"), "flow": lists("flow"),
            "flow_run": lists("flow_run"), "task_run": lists("task_run"),
            "flow_by_pk": by_pk("flow"), "flow_run_by_pk": by_pk("flow_run"),
            "task_run_by_pk": by_pk("task_run"),
            "get_task_run_info": lambda info, task_run_id: self._task_run_info(self.tables["task_run"][task_run_id]),
            "create_tenant": lambda info, input: {"id": self.insert("tenant", **input)["id"]},
            "create_project": self._create_project,
            "create_flow_from_compressed_string": self._create_flow,
            "register_tasks": self._register_tasks,
            "register_edges": lambda info, input: {"success": input["flow_id"] in self.tables["flow"]},
            "set_schedule_active": self._set_schedule_active,
            "create_flow_run": lambda info, input: {"id": self.create_flow_run(**input)["id"]},
            "register_agent": lambda info, input: {"id": self.insert("agent", **input)["id"]},
            "get_runs_in_queue": self._runs_in_queue,
            "set_flow_run_states": lambda info, input: self._set_states("flow_run", input["states"]),
            "set_task_run_states": lambda info, input: self._set_states("task_run", input["states"]),
            "get_or_create_task_run_info": self._get_or_create_task_run,
            "update_flow_run_heartbeat": lambda info, input: self._heartbeat("flow_run", input["flow_run_id"]),
            "update_task_run_heartbeat": lambda info, input: self._heartbeat("task_run", input["task_run_id"]),
            "write_run_logs": self._write_logs,
            "create_task_run_artifact": lambda info, input: {
                "id": self.insert("task_run_artifact", **input)["id"]},
        }

    def _tenant(self, tenant_id):
        if tenant_id not in self.tables["tenant"]:
            raise GraphQLError(f"stand-in: no tenant {tenant_id}")

    def _create_project(self, info, input):
        self._tenant(input["tenant_id"])
        if self.select("project", {"name": {"_eq": input["name"]}}):
            raise GraphQLError("Uniqueness violation: a project with this name exists")
        return {"id": self.insert("project", tenant_id=input["tenant_id"], name=input["name"])["id"]}

    def _create_flow(self, info, input):
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

    def _register_tasks(self, info, input):
        flow = self.tables["flow"][input["flow_id"]]
        known = {task["slug"] for task in self.tables["task"].values() if task["flow_id"] == flow["id"]}
        for task in input["serialized_tasks"]:
            if task["slug"] not in known:
                self.insert("task", flow_id=flow["id"], slug=task["slug"], name=task["name"],
                            mapped=False)
        return {"success": True}

    def _set_schedule_active(self, info, input):
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

    def _get_or_create_task_run(self, info, input):
        index = input.get("map_index")
        index = -1 if index is None else index
        for run in self.tables["task_run"].values():
            if (run["flow_run_id"], run["task_id"], run["map_index"]) == (
                    input["flow_run_id"], input["task_id"], index):
                return self._task_run_info(run)
        return self._task_run_info(self._new_task_run(input["flow_run_id"], input["task_id"], index))

    def _runs_in_queue(self, info, input):
        """Scheduled runs due before `before` whose labels the agent's labels cover."""
        self._tenant(input["tenant_id"])
        before = _time(input.get("before") or now())
        agent_labels = set(input.get("labels") or [])
        due = [run for run in self.tables["flow_run"].values()
               if run["state"] == "Scheduled" and _time(run["scheduled_start_time"]) <= before
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
            if state["type"] in {"Success", "Failed", "Cancelled", "TimedOut", "Skipped",
                                 "TriggerFailed", "Mapped", "Cached"}:
                run["end_time"] = stamp
            self.insert("state_history", run_id=run["id"], type=state["type"],
                        message=state.get("message"))
            results.append({"id": run["id"], "status": "SUCCESS", "message": None})
        return {"states": results}

    def _heartbeat(self, table, run_id):
        self.tables[table][run_id]["heartbeat"] = now()
        return {"success": True}

    def _write_logs(self, info, input):
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


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Prefect API stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--lifetime", type=float, default=900.0, help="seconds before it stops")
    parser.add_argument("--state-file", type=Path,
                        help="keep the tables here across restarts, as the real server keeps "
                             "them in Postgres: loaded at start, written when stopped")
    args = parser.parse_args()
    standin = PrefectAPIStandIn()
    if args.state_file and args.state_file.exists():
        standin.tables = json.loads(args.state_file.read_text())
    standin.serve(args.host, args.port, args.lifetime)
    print(f"Prefect API stand-in at {standin.url} for {args.lifetime:g} s", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())  # `docker stop`, `compose down`
    stopped.wait(args.lifetime)
    if args.state_file:
        with standin.lock:
            args.state_file.write_text(json.dumps(standin.tables, default=str))


if __name__ == "__main__":
    main()
