"""Hops of runs as people start them: `make smoke`, the UI's Run page and Quick Run, the
schedule, `prefect run --watch`, a bad input, the wait from the click, an agent restarted.
"""

import math
import re
import subprocess
import time

import pendulum

from tests.programs.e2e_api import FINISHED
from tests.programs.e2e_base import run
from tests.programs.e2e_stack import Stack, output
from tests.programs.load import ContainerWatch
from tests.support.ui_operations import (
    PREFECT_RUN_WATCH,
)


def smoke(stack: Stack, n_users: int = 37) -> str:
    result = stack.make("smoke", f"N_USERS={n_users}")
    assert "smoke passed: " in result.stdout and result.stdout.strip().endswith(f"has {n_users} rows")
    claimed = re.search(r"^\s*(\d+) s\s+Submitted$", result.stdout, re.M)
    return f"claimed after {claimed[1]} s, {n_users} rows" if claimed else f"{n_users} rows"


def run_wait(stack: Stack) -> str:
    """A 10-user run started as the UI starts it, with the agent idle, from the click to
    Success, in its parts, next to its floor: the same flow image running the same flow
    with no server (`docker run`, the offline users API). Figures, not bounds: make bench's
    kind, printed with the hop."""
    time.sleep(15)  # the agent, idle, is polling at its longest interval
    run_id = stack.create_run({"n_users": 10})
    (flow_run,) = stack.wait_for_runs([run_id]).values()
    assert flow_run["state"] == "Success", stack.explain(run_id)
    at = state_times(stack, run_id)
    clicked = at["created"]
    task_runs = stack.graphql(
        "query($id: uuid!) { flow_run_by_pk(id: $id) { task_runs { end_time } } }", {"id": run_id}
    )["flow_run_by_pk"]["task_runs"]
    # The mapped parent of the downloads ends Mapped, with no end time of its own.
    tasks_done = max(
        pendulum.parse(task_run["end_time"]).float_timestamp for task_run in task_runs if task_run["end_time"]
    )
    events = output(
        "docker", "events", "--since", f"{clicked - 1:.0f}", "--until", f"{time.time():.0f}",
        "--filter", f"label=io.prefect.flow-run-id={run_id}", "--format", "{{.Status}} {{.TimeNano}}",
    ).split("\n")  # fmt: skip
    container = {status: int(nanos) / 1e9 for status, nanos in (event.split() for event in events if event)}
    parts = {
        "agent's poll": at["Submitted"] - clicked,
        "container create and start": container["start"] - at["Submitted"],
        "Python, Prefect and the flow's imports": at["Running"] - container["start"],
        "the flow's tasks": tasks_done - at["Running"],
        "the final state reaching the server": at["Success"] - tasks_done,
    }
    total = at["Success"] - clicked

    flow = stack.active_flow()
    image = f"{flow['storage']['image_name']}:{flow['storage']['image_tag']}"
    begun = time.monotonic()
    run(
        "docker", "run", "--rm", "--network", stack.env["PREFECT_NETWORK"],
        "-e", "RANDOMUSER_URL=http://users-api:8999/api/", "-e", "USERS_API_LIMIT=0", "-e", "REPORTS_DIR=/tmp",
        image, "python", "-m", "flows.users_report", "--n-users", "10", stdout=subprocess.DEVNULL,
    )  # fmt: skip
    floor = time.monotonic() - begun
    split = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in parts.items())
    return f"click to Success {total:.1f} s = {total / floor:.2f}x its floor ({floor:.1f} s, docker run): {split}"


CLICKS, CLICK_EVERY = 20, 3  # runs started from the UI, seconds apart: a person's clicks
BUSY_RUNS, BUSY_USERS = 1, 5000  # another run kept going meanwhile


def click_waits(stack: Stack) -> tuple:
    """CLICKS 10-user runs started from the UI, CLICK_EVERY s apart, while BUSY_RUNS runs of
    BUSY_USERS users keep the machine busy; every run must succeed. Returns the clicks'
    waits, shortest first, each (seconds from the click to Running, its parts by name), and
    how many busy runs were started."""
    busy, clicks = [], []
    watch = ContainerWatch()
    try:
        for _ in range(CLICKS):
            unfinished = [run_id for run_id, flow_run in stack.runs({"id": {"_in": busy}}).items()
                          if flow_run["state"] not in FINISHED] if busy else []  # fmt: skip
            busy += [stack.create_run({"n_users": BUSY_USERS}) for _ in range(BUSY_RUNS - len(unfinished))]
            clicks.append(stack.create_run({"n_users": 10}))
            time.sleep(CLICK_EVERY)
        runs = stack.wait_for_runs(clicks + busy, seconds=300)
    finally:
        watch.stop()
    failed = [stack.explain(run_id) for run_id, flow_run in runs.items() if flow_run["state"] != "Success"]
    assert not failed, "\n".join(failed)
    waits = []
    for run_id in clicks:
        at, start = state_times(stack, run_id), watch.started[run_id]
        parts = {
            "agent's poll": at["Submitted"] - at["created"],
            "container create and start": start - at["Submitted"],
            "Python, Prefect and the flow's imports": at["Running"] - start,
        }
        waits.append((at["Running"] - at["created"], parts))
    return sorted(waits, key=lambda wait: wait[0]), len(busy)


def percentile(seconds: list, share: float) -> float:
    """The nearest-rank percentile of sorted `seconds`."""
    return seconds[math.ceil(share * len(seconds)) - 1]


def running_when_busy(stack: Stack) -> str:
    """Click to Running on a busy stack: its percentiles, and the slowest wait in parts.
    Figures, not bounds (make bench's kind), printed with the hop."""
    waits, busy = click_waits(stack)
    seconds = [wait for wait, _ in waits]
    slowest, parts = waits[-1]
    split = ", ".join(f"{name} {took:.1f} s" for name, took in parts.items())
    return (
        f"click to Running over {CLICKS} clicks beside runs of {BUSY_USERS:,} users ({BUSY_RUNS} at a "
        f"time, {busy} in all): "
        f"p50 {percentile(seconds, 0.5):.1f} s, p95 {percentile(seconds, 0.95):.1f} s (goal <= 3 s), "
        f"max {slowest:.1f} s = {split}"
    )


def state_times(stack: Stack, run_id: str) -> dict:
    """When the run was created and entered each of its states, in epoch seconds."""
    stored = stack.graphql(
        "query($id: uuid!) { flow_run_by_pk(id: $id) { created states { state timestamp } } }", {"id": run_id}
    )["flow_run_by_pk"]
    at = {row["state"]: pendulum.parse(row["timestamp"]).float_timestamp for row in stored["states"]}
    return {**at, "created": pendulum.parse(stored["created"]).float_timestamp}


def run_page(stack: Stack) -> str:
    return stack.successful_runs(37)[0]


def quick_run(stack: Stack) -> str:
    return stack.successful_runs(10, quick_run=True)[0]


def scheduled(stack: Stack) -> str:
    """Registering made the schedule's next runs (cron: every minute here); the first one
    is claimed and delivers the schedule's users."""
    flow_id = stack.active_flow()["id"]
    runs = list(stack.runs({"flow_id": {"_eq": flow_id}, "auto_scheduled": {"_eq": True}}).values())
    assert len(runs) == 10, f"{len(runs)} runs scheduled, not the next 10"
    run_id = runs[0]["id"]
    flow_run = stack.wait_for_runs([run_id], seconds=150)[run_id]
    assert flow_run["state"] == "Success", stack.explain(run_id)
    assert flow_run["parameters"] == {"n_users": 5}
    return stack.report_of(run_id, 5)


def prefect_run_watch(stack: Stack) -> str:
    """`prefect run ... --watch` in the agent's container, as docs/pipeline.md shows it."""
    result = stack.compose(
        "exec",
        "-T",
        "agent",
        "prefect",
        *PREFECT_RUN_WATCH,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "Flow run succeeded!" in result.stdout, result.stdout[-3000:]
    run_id = re.search(r"/flow-run/([0-9a-f-]{36})", result.stdout)[1]
    return stack.report_of(run_id, 5)


def zero_users(stack: Stack) -> str:
    run_id = stack.create_run({"n_users": 0})
    assert stack.wait_for_runs([run_id])[run_id]["state"] == "Failed", stack.explain(run_id)
    messages = [
        task_run["state_message"] for task_run in stack.task_runs(run_id) if task_run["state"] == "Failed"
    ]
    reason = next((m for m in messages if m.startswith("n_users must be a whole number")), None)
    assert reason, messages
    assert not list(stack.reports.glob(f"users-report-*-{run_id[:8]}.csv"))
    return reason


def agent_restart(stack: Stack) -> str:
    run("docker", "restart", stack.container("agent"), stdout=subprocess.DEVNULL)
    stack.wait_healthy("agent")
    return stack.successful_runs(3)[0]
