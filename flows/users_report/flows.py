"""The "Users report" flow: download random users, parse them, save them as a CSV report."""

from prefect import Flow, Parameter
from prefect.engine.results import LocalResult
from prefect.executors import DaskExecutor, LocalDaskExecutor

from flows.shared.failures import say_why
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
