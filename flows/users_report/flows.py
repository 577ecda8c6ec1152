"""The "Users report" flow: download random users, parse them, save them as a CSV report."""

from contextlib import contextmanager
from pathlib import Path

from prefect import Flow, Parameter
from prefect.executors import DaskExecutor, Executor, LocalDaskExecutor

from flows.shared.failures import say_why
from flows.shared.results import RunFolderResult
from flows.users_report.settings import load_settings
from flows.users_report.tasks import (
    download_data,
    parse_data,
    plan_pages,
    remove_old_reports,
    remove_staging,
    save_report,
)
from flows.users_report.utils import staging_dir


def results_folder() -> Path:
    """Where a task run on a server keeps its result: in the run's staging folder. A run whose
    container died goes on in a new container (a retry, or lazarus), which reads there what
    the finished tasks returned; Prefect keeps results only in memory otherwise."""
    return staging_dir(load_settings().reports_dir) / "results"


with Flow(
    "Users report",
    state_handlers=[say_why],
    result=RunFolderResult(folder=results_folder),
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


class PipelineExecutor(Executor):
    """The Dask cluster at DASK_ADDRESS, else threads in the run's own process (enough: the
    page downloads mostly wait on the network), chosen from the settings as the run starts."""

    @contextmanager
    def start(self):
        settings = load_settings()
        if settings.dask_address:
            self.chosen = ClusterExecutor(settings.dask_address, settings.dask_worker_wait)
        else:
            self.chosen = LocalDaskExecutor(scheduler="threads", num_workers=settings.download_workers)
        with self.chosen.start():
            yield

    def submit(self, fn, *args, extra_context=None, **kwargs):
        return self.chosen.submit(fn, *args, extra_context=extra_context, **kwargs)

    def wait(self, futures):
        return self.chosen.wait(futures)


flow.executor = PipelineExecutor()
