"""Hops of load: many runs at once, and one run spread over a Dask cluster."""

import subprocess
import time

from tests.programs.e2e_base import run
from tests.programs.e2e_stack import Stack
from tests.programs.load import ContainerWatch, batch

LOAD_RUNS, LOAD_USERS = 50, 1000


def load(stack: Stack) -> str:
    """LOAD_RUNS runs at once, the first a freshly started agent deploys: each deployment,
    in its own thread, starts its first log-streaming process at the same moment (one of
    20 runs was lost so: agent/start.py)."""
    run("docker", "restart", stack.container("agent"), stdout=subprocess.DEVNULL)
    stack.wait_healthy("agent")
    begun = time.monotonic()
    watch = ContainerWatch(stack.dir.parent / "containers")
    try:
        lost, explained = batch(stack, watch, LOAD_RUNS, LOAD_USERS)
    finally:
        watch.stop()
    assert not lost, f"{lost} of {LOAD_RUNS} runs lost:\n" + "\n".join(explained)
    return f"{LOAD_RUNS} runs of {LOAD_USERS:,} users, all Success in {time.monotonic() - begun:.0f} s"


def dask_cluster(stack: Stack) -> str:
    """`make up DASK=1 DASK_WORKERS=2`: a run's downloads spread over both workers (pages of
    500 here), its report whole; the workers write as the app user into the same folder.
    `make up DASK=0` takes the cluster away."""
    stack.make("up", "DASK=1", "DASK_WORKERS=2")
    assert (
        "\nDASK_ADDRESS=tcp://dask-scheduler:8786\nDASK_WORKERS=2\nCOMPOSE_PROFILES=offline,dask\n"
        in (stack.dir / ".env").read_text()
    )
    stack.wait_healthy("dask-scheduler")
    stack.wait_healthy("dask-worker")
    workers = stack.containers("dask-worker")
    assert len(workers) == 2, workers
    report = stack.successful_runs(6000)[0]
    logs = [
        run("docker", "logs", worker, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
        for worker in workers
    ]
    downloads = [log.count("Task 'download_data[") for log in logs]
    assert all(downloads), f"download task runs per worker: {downloads}"
    stack.make("up", "DASK=0")
    assert not stack.containers("dask-worker"), "make up DASK=0 left the workers"
    return f"{report}; download task runs per worker: {downloads}"
