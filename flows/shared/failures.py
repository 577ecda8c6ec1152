"""A failed run's own message says why: the first task that failed by itself."""

from typing import Optional

import prefect
from prefect import Flow
from prefect.engine.state import Failed, TriggerFailed
from prefect.utilities.graphql import EnumValue, with_args


def first_failure(flow: Flow, task_states: dict) -> Optional[str]:
    """The message of the first task that failed by itself (not because an upstream did)."""
    for task in flow.sorted_tasks():
        task_state = task_states.get(task)
        if task_state is None:
            continue
        for attempt in task_state.map_states if task_state.is_mapped() else [task_state]:
            if attempt.is_failed() and not isinstance(attempt, TriggerFailed):
                return attempt.message
    return None


def first_failure_on_server() -> Optional[str]:
    """The same, asked of the server: a run it started keeps no task states in its result.
    The first to fail by end time (the server keeps no start time for a Failed state)."""
    where = {"flow_run_id": {"_eq": prefect.context.flow_run_id}, "state": {"_eq": "Failed"}}
    query = {
        "query": {
            with_args("task_run", {"where": where, "order_by": {"end_time": EnumValue("asc")}, "limit": 1}): {
                "state_message"
            }
        }
    }
    try:
        failed = prefect.Client().graphql(query).data.task_run
    except Exception:  # the API is down: the run ends with Prefect's own message
        return None
    return failed[0].state_message if failed else None


def say_why(flow: Flow, old_state, new_state):
    """A failed run's own message says why (its page in the UI, alerts, `make run`), where
    Prefect would say "Some reference tasks failed."."""
    if not new_state.is_failed() or not isinstance(new_state.result, dict):
        return new_state
    if new_state.result:  # a local run (flow.run) returns every task's state
        reason = first_failure(flow, new_state.result)
    else:
        reason = first_failure_on_server()
    return Failed(reason, result=new_state.result) if reason else new_state
