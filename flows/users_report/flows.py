"""The "Users report" flow: download random users, parse them, save them as a CSV report."""

from typing import Optional

import prefect
from prefect import Flow, Parameter
from prefect.engine.results import LocalResult
from prefect.engine.state import Failed, TriggerFailed
from prefect.executors import DaskExecutor, LocalDaskExecutor
from prefect.utilities.graphql import EnumValue, with_args

from flows.users_report.tasks import (
    SETTINGS,
    download_data,
    parse_data,
    plan_pages,
    remove_old_reports,
    remove_staging,
    save_report,
)
from flows.users_report.utils import staging_dir


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


def result_location(task_full_name: str, **_context) -> str:
    """Where a task run on a server keeps its result: in the run's staging folder. A run whose
    container died goes on in a new container (a retry, or lazarus), which reads there what
    the finished tasks returned; Prefect keeps results only in memory otherwise."""
    return f"{staging_dir(SETTINGS.reports_dir).name}/results/{task_full_name}.prefect"


with Flow(
    "Users report",
    state_handlers=[say_why],
    result=LocalResult(str(SETTINGS.reports_dir), validate_dir=False, location=result_location),
) as flow:
    n_users = Parameter("n_users", default=10)
    pages = plan_pages(n_users)
    report = save_report(parse_data(download_data.map(pages)))
    remove_staging(upstream_tasks=[report])
    remove_old_reports(upstream_tasks=[report])  # only after a successful run

# The run succeeds or fails with its report, whatever the clean-ups do.
flow.set_reference_tasks([report])


class ClusterExecutor(DaskExecutor):
    """Prefect's DaskExecutor on an existing cluster, bounded: a scheduler that does not
    answer, or no worker joining it, fails the run within DASK_WORKER_WAIT seconds, where
    Prefect would leave it Running with nothing to run its tasks."""

    def __init__(self, address: str, worker_wait: float):
        super().__init__(address=address, client_kwargs={"timeout": f"{worker_wait}s"})
        self.worker_wait = worker_wait  # not `wait`: the executor's own method has that name

    def _pre_start_yield(self) -> None:
        super()._pre_start_yield()
        try:
            self.client.wait_for_workers(1, timeout=self.worker_wait)
        except TimeoutError:
            raise RuntimeError(
                f"no Dask worker joined the scheduler at {self.address} within "
                f"{self.worker_wait:g} s (DASK_WORKER_WAIT)"
            ) from None


if SETTINGS.dask_address:
    flow.executor = ClusterExecutor(SETTINGS.dask_address, SETTINGS.dask_worker_wait)
else:  # threads suffice: the page downloads mostly wait on the network
    flow.executor = LocalDaskExecutor(scheduler="threads", num_workers=SETTINGS.download_workers)
