"""Hops of recovery: a flow container killed mid-run, retried by the server's towel or failed
with an alert.
"""

import subprocess
import time

from tests.e2e.helpers import inside
from tests.programs.e2e_base import run
from tests.programs.e2e_stack import Stack, output
from tests.support.ui_operations import (
    post,
)

# The stand-in's towel pass is asked for with this heartbeat cutoff: above the flow runs'
# heartbeat interval (30 s), so that only a run whose container died is taken for dead.
HEARTBEAT_CUTOFF = 45


# How long the real towel may take to recover a killed run (services/towel, PrefectHQ/server
# 0f74a9a: its zombie killer looks every 2 min, lazarus every 10, both with a 10-minute
# heartbeat cutoff), plus the run's new container.
REAL_TOWEL_SECONDS = 35 * 60


def kill_while_downloading(stack: Stack, n_users: int) -> str:
    """Starts a run with the offline users API answering each page after 30 s; once a page
    is being downloaded, kills the run's container (no code of ours runs), makes the API
    quick again; returns its id."""

    def users_api(latency: str) -> None:
        stack.env["DEMO_API_LATENCY"] = latency
        stack.compose("up", "-d", "--no-deps", "users-api", capture_output=True)

    users_api("30")  # its health probe times out meanwhile: not waited for
    run_id = stack.create_run({"n_users": n_users})
    downloads = (
        f'{{ task_run(where: {{flow_run_id: {{_eq: "{run_id}"}}, map_index: {{_gte: 0}}}}) {{ state }} }}'
    )
    deadline = time.monotonic() + 180
    while "Running" not in [t["state"] for t in post(stack.api, downloads, {})["data"]["task_run"]]:
        assert time.monotonic() < deadline, stack.explain(run_id)
        time.sleep(0.5)
    run(
        "docker",
        "kill",
        output("docker", "ps", "-q", "--filter", f"label=io.prefect.flow-run-id={run_id}"),
        stdout=subprocess.DEVNULL,
    )
    users_api("0")
    stack.wait_healthy("users-api")
    return run_id


def towel(stack: Stack) -> dict:
    """One pass of the stand-in's towel, once the killed run's heartbeat is past the cutoff."""
    time.sleep(HEARTBEAT_CUTOFF + 1)
    return inside(stack, "agent", "/standin/towel", {"heartbeat_older_than": HEARTBEAT_CUTOFF})


def killed_container(stack: Stack) -> str:
    """A flow container killed mid-download. With retries left (HTTP_RETRIES=1), towel's
    zombie killer sets the running downloads Retrying and the agent starts the run again in a
    new container, which finishes it. With none (HTTP_RETRIES=0 registered), the downloads
    fail, lazarus schedules the run again, and it ends Failed saying why (RunFailed tells it)."""
    n_users, recovery = 50_000, 300 if stack.standin else REAL_TOWEL_SECONDS
    run_id = kill_while_downloading(stack, n_users)
    if stack.standin:
        reaped = towel(stack)
        assert reaped["zombie_task_runs"] >= 1 and reaped["rescheduled_flow_runs"] == 0, reaped
    assert stack.wait_for_runs([run_id], seconds=recovery)[run_id]["state"] == "Success", stack.explain(
        run_id
    )
    stack.report_of(run_id, n_users)
    agent_log = stack.compose("logs", "--no-color", "agent", capture_output=True, text=True).stdout
    assert agent_log.count(f"Deploying flow run {run_id}") == 2, stack.explain(run_id)

    with stack.flow_settings(HTTP_RETRIES="0"):
        stack.make("register")
        failing_id = kill_while_downloading(stack, n_users)
        if stack.standin:
            reaped = towel(stack)
            assert reaped["rescheduled_flow_runs"] == 1, reaped
        flow_run = stack.wait_for_runs([failing_id], seconds=recovery)[failing_id]
    stack.make("register")
    assert flow_run["state"] == "Failed", stack.explain(failing_id)
    dead = "No heartbeat detected from the remote task; marking the run as failed."
    assert dead in flow_run["state_message"], flow_run
    return f'retried in a second container, {n_users:,} rows; without retries: Failed, "{dead[:30]}..."'
