"""One run across a Dask cluster (DASK_ADDRESS): a real `dask-scheduler` and two
`dask-worker` processes on loopback, from the pinned distributed, each stopping by itself."""

import time

import pytest

from tests.support import free_port, run_module
from tests.support.dask_cluster import local_cluster
from tests.support.pipeline_runs import finish, pipeline_env, read_csv, start_run


@pytest.fixture
def cluster(request, users_api, reports_dir, tmp_path):
    """A scheduler and `request.param` workers with the pipeline's settings; yields the
    scheduler's address and the workers' logs."""
    with local_cluster(request.param, pipeline_env(users_api.url, reports_dir), tmp_path) as cluster:
        yield cluster


@pytest.mark.parametrize("cluster", [2], indirect=True)
def test_a_run_spreads_its_downloads_over_the_clusters_workers(cluster, users_api, reports_dir):
    address, worker_logs = cluster

    result = finish(start_run(users_api.url, reports_dir, 12_345, PAGE_SIZE=500, DASK_ADDRESS=address))

    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Connecting to an existing Dask cluster at {address}" in result.stdout + result.stderr
    header, rows = read_csv(reports_dir / "report.csv")
    assert len(rows) == 12_345 and len({row[header.index("login.uuid")] for row in rows}) == 12_345
    downloads = [log.read_text().count("Task 'download_data[") for log in worker_logs]
    assert all(downloads), f"download task runs per worker: {downloads}"


@pytest.mark.parametrize("cluster", [0], indirect=True)
def test_a_cluster_without_workers_fails_the_run_in_one_line(cluster, users_api, reports_dir):
    address, _ = cluster
    begun = time.monotonic()

    result = finish(start_run(users_api.url, reports_dir, 10, DASK_ADDRESS=address, DASK_WORKER_WAIT=2))

    assert result.returncode == 1 and time.monotonic() - begun < 60
    # The run's own line; on a loaded machine distributed's closing client may log a
    # timeout of its own after it.
    said = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert said == [
        f"error: no Dask worker joined the scheduler at {address} within 2 s (DASK_WORKER_WAIT)"
    ], result.stderr[-3000:]
    assert users_api.requests == []


def test_an_unreachable_scheduler_fails_the_run_in_one_line(run_pipeline, users_api):
    address = f"tcp://127.0.0.1:{free_port()}"
    begun = time.monotonic()

    result = run_pipeline(10, DASK_ADDRESS=address, DASK_WORKER_WAIT=2)

    assert result.returncode == 1 and time.monotonic() - begun < 60
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: Timed out trying to connect to {address} after 2 s"), error
    assert users_api.requests == []


@pytest.mark.parametrize(
    "address, executor",
    [
        ("", "LocalDaskExecutor threads {'num_workers': 3}"),
        ("tcp://127.0.0.1:PORT", "ClusterExecutor tcp://127.0.0.1:PORT 5.0"),
    ],
)
def test_the_runs_settings_choose_the_executor_as_it_starts_not_the_import(address, executor):
    port = free_port()
    describe = f"""
import os
from unittest import mock
from flows.users_report import flows
os.environ.update(DASK_ADDRESS={address.replace("PORT", str(port))!r}, DOWNLOAD_WORKERS="3", DASK_WORKER_WAIT="5")
with mock.patch.object(flows.ClusterExecutor, "start"), flows.flow.executor.start():
    e = flows.flow.executor.chosen
    print(type(e).__name__, *(getattr(e, k) for k in ("scheduler", "dask_config", "address", "worker_wait") if getattr(e, k, None)))
"""
    result = run_module(["-c", describe], {"DASK_ADDRESS": "", "DOWNLOAD_WORKERS": "4"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == executor.replace("PORT", str(port))
