"""Towel's zombie killer and lazarus, as PrefectHQ/server 0f74a9a's services/towel has them,
run once when asked: the server runs them every 2 and every 10 minutes with a heartbeat
cutoff of 10 minutes; tests ask for one pass with a cutoff of their own."""

import pendulum
from prefect.engine.state import Failed, Retrying, Running, Scheduled, State

from tests.prefect_api_standin.tables import now

# Lazarus leaves a run alone while one of its task runs is running or waiting to run.
LAZARUS_EXCLUDE = sorted(
    state.__name__ for state in State.children() if issubclass(state, (Scheduled, Running))
)
RESURRECTION_ATTEMPT_LIMIT = 3  # config.toml services.lazarus.resurrection_attempt_limit
HEARTBEAT_OFF = {"settings": {"_contains": {"heartbeat_enabled": False}}}
LAZARUS_OFF = {"settings": {"_contains": {"lazarus_enabled": False}}}


class Towel:
    """Towel's services, mixed into PrefectAPIStandIn (api.py)."""

    def run_towel(self, heartbeat_older_than: float) -> dict:
        cutoff = pendulum.now("UTC").subtract(seconds=heartbeat_older_than).isoformat()
        with self.lock:
            self.changes += 1
            return {
                "zombie_task_runs": self.reap_zombie_task_runs(cutoff),
                "rescheduled_flow_runs": self.reschedule_flow_runs(cutoff),
            }

    def reap_zombie_task_runs(self, cutoff: str) -> int:
        """Task runs still Running in a flow run whose heartbeat stopped: Retrying while the
        flow run is Running and the task has retries left, else Failed."""
        zombies = self.select(
            "task_run",
            {
                "state": {"_eq": "Running"},
                "flow_run": {"heartbeat": {"_lte": cutoff}},
                "task": {"flow": {"flow_group": {"_not": HEARTBEAT_OFF}}},
            },
        )
        for zombie in zombies:
            task = self.tables["task"][zombie["task_id"]]
            flow_run = self.tables["flow_run"][zombie["flow_run_id"]]
            retries = sum(
                1
                for entry in self.tables["state_history"].values()
                if entry["run_id"] == zombie["id"] and entry["type"] == "Retrying"
            )
            if flow_run["state"] == "Running" and retries < (task["max_retries"] or 0):
                message = (
                    "No heartbeat detected from the remote task; retrying the run."
                    f"This will be retry {retries + 1} of {task['max_retries']}."
                )
                start = pendulum.now("UTC").add(seconds=task["retry_delay"] or 0)
                state = Retrying(message=message, run_count=retries + 1, start_time=start)
            else:
                message = "No heartbeat detected from the remote task; marking the run as failed."
                state = Failed(message=message)
            self.set_states("task_run", [{"task_run_id": zombie["id"], "state": state.serialize()}])
            self.towel_log(
                zombie["flow_run_id"], "ZombieKiller.TaskRun", message, "ERROR", task_run_id=zombie["id"]
            )
        return len(zombies)

    def reschedule_flow_runs(self, cutoff: str) -> int:
        """Running or Submitted flow runs whose heartbeat stopped and that have no task run
        running or waiting: Scheduled again, three times at most, then Failed."""
        runs = self.select(
            "flow_run",
            {
                "state": {"_in": ["Running", "Submitted"]},
                "heartbeat": {"_lte": cutoff},
                "_and": [
                    {"_not": {"task_runs": {"state": {"_in": LAZARUS_EXCLUDE}}}},
                    {"_not": {"flow": {"flow_group": {"_or": [HEARTBEAT_OFF, LAZARUS_OFF]}}}},
                ],
            },
            order_by={"updated": "asc"},
        )
        rescheduled = 0
        for run in runs:
            row = self.tables["flow_run"][run["id"]]
            if row["times_resurrected"] < RESURRECTION_ATTEMPT_LIMIT:
                state = Scheduled(message="Rescheduled by a Lazarus process.")
                self.set_states("flow_run", [{"flow_run_id": run["id"], "state": state.serialize()}])
                row["times_resurrected"] += 1
                self.towel_log(
                    run["id"],
                    "Lazarus.FlowRun",
                    f"Rescheduled by a Lazarus process. This is attempt {row['times_resurrected']}.",
                    "INFO",
                )
                rescheduled += 1
            else:
                message = (
                    "A Lazarus process attempted to reschedule this run "
                    f"{RESURRECTION_ATTEMPT_LIMIT} times without success. Marking as failed."
                )
                self.set_states(
                    "flow_run", [{"flow_run_id": run["id"], "state": Failed(message=message).serialize()}]
                )
                self.towel_log(run["id"], "Lazarus.FlowRun", message, "ERROR")
        return rescheduled

    def towel_log(self, flow_run_id, name, message, level, task_run_id=None):
        self.insert(
            "log",
            flow_run_id=flow_run_id,
            task_run_id=task_run_id,
            timestamp=now(),
            level=level,
            message=message,
            name=name,
            info=None,
        )
