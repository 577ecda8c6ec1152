"""What the stand-in does with flow runs and task runs, as PrefectHQ/server 0f74a9a's
api/runs.py and api/states.py do: creating them, the agents' queue, states, heartbeats, logs."""

import json
import sys
import time
import uuid

import pendulum
from graphql import GraphQLError
from prefect.engine.state import Queued, Scheduled, State

from tests.prefect_api_standin.tables import now

QUEUED_RUNS_RETURNED_LIMIT = 25  # prefect_server's config.toml
# api/states.py submitted_state_lock: a run can be Submitted once in this many seconds.
SUBMITTED_LOCK_SECONDS = 30
# graphql/states.py and graphql/artifacts.py: 1 MB at most per state and per artifact.
PAYLOAD_LIMIT = 1_000_000
SCHEDULED_STATES = sorted(
    state.__name__ for state in State.children() if issubclass(state, (Scheduled, Queued))
)
# The states that set a run's end time (the server's state triggers name them exactly).
END_STATES = {"Success", "Failed", "Cached", "TimedOut", "Looped", "Cancelled"}


class Runs:
    """The rules of flow runs and task runs, mixed into PrefectAPIStandIn (api.py)."""

    def create_artifact(self, **artifact) -> dict:
        """As graphql/artifacts.py and api/artifacts.py: at most 1 MB, of a task run that exists."""
        if sys.getsizeof(json.dumps(artifact.get("data"))) > PAYLOAD_LIMIT:
            raise GraphQLError("Artifact data payload exceedes 1Mb limit.")
        if artifact["task_run_id"] not in self.tables["task_run"]:
            raise GraphQLError(f"Task run {artifact['task_run_id']} not found")
        return self.insert("task_run_artifact", **artifact)

    def create_flow_run(
        self,
        flow_id=None,
        version_group_id=None,
        parameters=None,
        run_config=None,
        labels=None,
        context=None,
        scheduled_start_time=None,
        idempotency_key=None,
        flow_run_name=None,
        auto_scheduled=False,
    ):
        """As api/runs.py create_flow_run (PrefectHQ/server 0f74a9a): the flow by id, or the
        latest unarchived version of the group; a run with the same idempotency key for that
        flow is returned instead of a new one; parameters are the flow's truthy defaults, then
        the group's, then the given ones, undeclared ones kept; labels and run config from the
        first of: given, the group's, the flow's run config (labels last from its environment).
        Then Scheduled, with a Pending task run for every task (a database trigger does that
        on the server)."""
        if flow_id:
            flow = self.tables["flow"].get(flow_id)
        else:
            latest = self.select(
                "flow",
                {"version_group_id": {"_eq": version_group_id}, "archived": {"_eq": False}},
                order_by={"version": "desc"},
            )
            flow = self.tables["flow"][latest[0]["id"]] if latest else None
        if flow is None:
            raise GraphQLError(
                f"Flow {flow_id} not found"
                if flow_id
                else f"Version group {version_group_id} has no unarchived flows."
            )
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
            elif flow["run_config"] is not None:
                labels = flow["run_config"].get("labels") or []
            else:
                labels = (flow["environment"] or {}).get("labels") or []
        if run_config is None:
            run_config = group["run_config"] if group["run_config"] is not None else flow["run_config"]
        run_parameters = {p["name"]: p["default"] for p in flow["parameters"] or [] if p.get("default")}
        run_parameters.update(group["default_parameters"] or {})
        run_parameters.update(parameters or {})
        start = pendulum.parse(scheduled_start_time) if scheduled_start_time else pendulum.now("UTC")
        state = Scheduled(message="Flow run scheduled.", start_time=start)
        run = self.insert(
            "flow_run",
            flow_id=flow["id"],
            name=flow_run_name or f"run-{uuid.uuid4().hex[:8]}",
            version=1,
            state="Scheduled",
            serialized_state=state.serialize(),
            state_message=state.message,
            parameters=run_parameters,
            context=context or {},
            run_config=run_config,
            labels=sorted(labels),
            scheduled_start_time=start.in_timezone("UTC").isoformat(),
            start_time=None,
            end_time=None,
            heartbeat=None,
            auto_scheduled=auto_scheduled,
            idempotency_key=idempotency_key,
            state_start_time=start.in_timezone("UTC").isoformat(),
            state_timestamp=now(),
            times_resurrected=0,
        )
        self.record_state("flow_run", run, state.serialize())
        for task in self.tables["task"].values():
            if task["flow_id"] == flow["id"]:
                self.new_task_run(run["id"], task["id"], -1)
        return run

    def record_state(self, table, run, serialized_state):
        """A run's state history, as the server's flow_run_state and task_run_state tables
        keep it (`table`: flow_run or task_run)."""
        self.insert(
            f"{table}_state",
            **{f"{table}_id": run["id"]},
            timestamp=now(),
            state=serialized_state["type"],
            message=serialized_state.get("message"),
            serialized_state=serialized_state,
        )

    def new_task_run(self, flow_run_id, task_id, map_index):
        from prefect.engine.state import Pending

        state = Pending(message="Task run created")
        return self.insert(
            "task_run",
            flow_run_id=flow_run_id,
            task_id=task_id,
            map_index=map_index,
            name=None,
            version=1,
            state="Pending",
            serialized_state=state.serialize(),
            state_message=state.message,
            state_start_time=None,
            start_time=None,
            end_time=None,
            heartbeat=None,
        )

    @staticmethod
    def task_run_info(run):
        return {key: run[key] for key in ("id", "version", "state", "serialized_state")}

    def get_or_create_task_run(self, flow_run_id, task_id, map_index=None) -> dict:
        index = -1 if map_index is None else map_index
        for run in self.tables["task_run"].values():
            if (run["flow_run_id"], run["task_id"], run["map_index"]) == (flow_run_id, task_id, index):
                return run
        return self.new_task_run(flow_run_id, task_id, index)

    def runs_in_queue(self, tenant_id, before=None, labels=None) -> list:
        """As api/runs.py get_runs_in_queue: runs in a scheduled state due before `before`,
        and Running runs with a task run in a scheduled state due (a retry, e.g. one the
        zombie killer set after the run's container died), oldest first, at most 25
        (queued_runs_returned_limit), picked from the 75 oldest before labels are looked at
        (api/runs.py 486-489: one label's backlog can hide another's runs); a run goes to an
        agent only if the agent has all its labels, and a run without labels never to an
        agent with labels."""
        self.check_tenant(tenant_id)
        scheduled, due = {"_in": SCHEDULED_STATES}, {"_lte": before or now()}
        queued = self.select(
            "flow_run",
            {
                "_or": [
                    {"state": scheduled, "state_start_time": due},
                    {"state": {"_eq": "Running"}, "task_runs": {"state": scheduled, "state_start_time": due}},
                ]
            },
            order_by={"state_start_time": "asc"},
            limit=QUEUED_RUNS_RETURNED_LIMIT * 3,
        )
        agent_labels = set(labels or [])
        claimable = [
            run["id"]
            for run in queued
            if set(run["labels"]) <= agent_labels and (run["labels"] or not agent_labels)
        ]
        return claimable[:QUEUED_RUNS_RETURNED_LIMIT]

    def set_states(self, table, updates) -> list:
        """As graphql/states.py and api/states.py: a state of at most 1 MB; a flow run
        Submitted once in 30 s (the lock that keeps two agents from deploying one run); a
        task run Running only while its flow run is."""
        results = []
        for update in updates:
            run = self.tables[table].get(update[f"{table}_id"])
            if run is None:
                raise GraphQLError(f"stand-in: no {table} {update[f'{table}_id']}")
            if sys.getsizeof(json.dumps(update["state"])) > PAYLOAD_LIMIT:
                raise GraphQLError("State payload is too large.")
            if table == "flow_run" and update["state"]["type"] == "Submitted":
                locked_until = self.submitted_locks.get(run["id"], 0)
                if time.monotonic() < locked_until:
                    raise GraphQLError("State update failed: this run has already been submitted.")
                self.submitted_locks[run["id"]] = time.monotonic() + self.submitted_lock_seconds
            if table == "task_run" and update["state"]["type"] == "Running":
                flow_run = self.tables["flow_run"][run["flow_run_id"]]
                if flow_run["state"] != "Running":
                    raise GraphQLError(
                        f"State update failed for task run ID {run['id']}: provided a running state "
                        f"but associated flow run {flow_run['id']} is not in a running state."
                    )
            # No check of update["version"]: the real server ignores it (PrefectHQ/server
            # 0f74a9a, api/states.py), and a stricter check fails runs it would pass.
            state = update["state"]
            stamp = now()
            # state_start_time is the state's own start time (scheduled states have one),
            # as the server's state tables' triggers copy it.
            run.update(
                version=run["version"] + 1,
                state=state["type"],
                serialized_state=state,
                state_message=state.get("message"),
                state_start_time=state.get("start_time"),
                state_timestamp=stamp,
            )
            if state["type"] == "Running" and not run["start_time"]:
                run["start_time"] = stamp
            if state["type"] in END_STATES:
                run["end_time"] = stamp
            self.insert("state_history", run_id=run["id"], type=state["type"], message=state.get("message"))
            self.record_state(table, run, state)
            if table == "flow_run":
                if state["type"] in {"Running", "Submitted"}:
                    run["heartbeat"] = stamp
                self.call_hooks(run, state)
            results.append({"id": run["id"], "status": "SUCCESS", "message": None})
        return results

    def delete_flow_run(self, flow_run_id) -> bool:
        """As api/runs.py delete_flow_run: the run's task run states, task runs, then the run;
        the database's ON DELETE CASCADE keys take its flow run states, logs and artifacts
        (the initial migration 542-566, add_artifact_api 49). False for a run not there."""
        if flow_run_id not in self.tables["flow_run"]:
            return False
        task_runs = {id for id, run in self.tables["task_run"].items() if run["flow_run_id"] == flow_run_id}
        for table, key, gone in (
            ("task_run_state", "task_run_id", task_runs),
            ("task_run_artifact", "task_run_id", task_runs),
            ("log", "flow_run_id", {flow_run_id}),
            ("flow_run_state", "flow_run_id", {flow_run_id}),
        ):
            self.tables[table] = {id: row for id, row in self.tables[table].items() if row[key] not in gone}
        for id in task_runs:
            del self.tables["task_run"][id]
        del self.tables["flow_run"][flow_run_id]
        return True

    def heartbeat(self, table, run_id) -> None:
        self.tables[table][run_id]["heartbeat"] = now()

    def write_logs(self, logs) -> None:
        """As api/logs.py create_logs: a log sent without a timestamp (the agent's own) is
        stamped now."""
        for log in logs:
            if log["flow_run_id"] not in self.tables["flow_run"]:
                raise GraphQLError(f"stand-in: no flow run {log['flow_run_id']}")
            self.insert("log", **{**log, "timestamp": log.get("timestamp") or now()})
