"""A run whose container died: towel's zombie killer and lazarus, then the agent."""

import csv
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pendulum

from exporter import readers
from tests.support.agent_runs import (
    adhoc_run,
    agent_polls,
    run_container_here,
    start_container_here,
    task_runs,
)
from tests.support.pipeline_runs import report_names


def kill_during_download(standin, users_api, run_id, create, env, finished=0) -> None:
    """Starts the container; once it is downloading a page (its request reached the users
    API: on a busy machine the task is Running a while before it asks), with `finished`
    pages done, kills all its processes."""
    container = start_container_here(create, env)
    deadline = time.monotonic() + 60
    while True:
        downloads = [
            run["state"]
            for (slug, index), run in task_runs(standin, run_id).items()
            if slug == "download_data-1" and index >= 0
        ]
        asking = len(users_api.requests) > finished
        if "Running" in downloads and downloads.count("Success") == finished and asking:
            break
        assert container.poll() is None and time.monotonic() < deadline, container.communicate()
        time.sleep(0.1)
    os.killpg(container.pid, signal.SIGKILL)
    container.communicate()


def test_a_run_whose_container_died_is_retried_in_a_new_container(standin, stack_env, users_api):
    """The zombie killer sets the download that was running Retrying (HTTP_RETRIES=1); the
    server hands the Running run with a due retry back to the agent, which starts a new
    container: the run finishes with the pages the first container had, reading the results
    of its finished tasks from the run's staging folder."""
    users_api.faults, users_api.slow_seconds = [None, None, "slow"], 30
    env = {**stack_env, "PAGE_SIZE": "5"}
    run_id, create, _ = adhoc_run(standin, env, 12, start=False)
    kill_during_download(standin, users_api, run_id, create, env, finished=2)

    assert standin.run_towel(heartbeat_older_than=0) == {"zombie_task_runs": 1, "rescheduled_flow_runs": 0}
    assert sorted(
        run["state"]
        for (slug, index), run in task_runs(standin, run_id).items()
        if slug == "download_data-1" and index >= 0
    ) == ["Retrying", "Success", "Success"]
    time.sleep(3.5)  # the agent leaves a retry 3 s to the container that set it
    (create,) = agent_polls(env, run_id=run_id)
    result = run_container_here(create, env)

    run = standin.tables["flow_run"][run_id]
    assert run["state"] == "Success", run["state_message"] + result.stdout[-3000:] + result.stderr[-3000:]
    pages = Counter(query["page"] for query in users_api.requests)
    assert sorted(pages.values()) == [1, 1, 2]  # only the page being downloaded, again
    host_dir = Path(env["HOST_REPORTS_DIR"])
    with open(host_dir / "report.csv", newline="", encoding="utf-8") as handle:
        assert len(list(csv.reader(handle))) == 1 + 12
    names = report_names(host_dir)  # no staging folder or results left behind
    assert len(names) == 2 and names[0] == "report.csv" and names[1].endswith(f"-{run_id[:8]}.csv")


def test_a_run_whose_container_died_without_retries_left_fails_saying_why(standin, stack_env, users_api):
    """The zombie killer fails the running download (no retries left); lazarus, finding no
    task run running or waiting, schedules the run again; the new container ends it Failed,
    saying why, which the exporter reads for RunFailed's message."""
    users_api.faults, users_api.slow_seconds = ["slow"], 30
    env = {**stack_env, "HTTP_RETRIES": "0"}
    run_id, create, _ = adhoc_run(standin, env, 12, start=False)
    kill_during_download(standin, users_api, run_id, create, env)

    assert standin.run_towel(heartbeat_older_than=0) == {"zombie_task_runs": 1, "rescheduled_flow_runs": 1}
    assert standin.tables["flow_run"][run_id]["state"] == "Scheduled"
    # On the server lazarus takes a run only after 10 minutes without a heartbeat: the 30 s
    # submitted lock of its first deployment has long expired by then.
    standin.submitted_locks.clear()
    (create,) = agent_polls(env, run_id=run_id)
    run_container_here(create, env)

    run = standin.tables["flow_run"][run_id]
    assert run["state"] == "Failed"
    dead = "No heartbeat detected from the remote task; marking the run as failed."
    assert dead in run["state_message"]
    flows, _ = readers.server_state(f"{standin.url}/graphql", pendulum.now("UTC"))
    (failed,) = [flow.last_failure for flow in flows.values() if flow.last_failure]
    assert failed["id"] == run_id and dead in failed["state_message"]
    assert report_names(Path(env["HOST_REPORTS_DIR"])) == []
