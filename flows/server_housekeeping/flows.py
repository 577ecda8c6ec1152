"""The "Server housekeeping" flow: Prefect Server 1 never deletes a run, nor says when one is
stuck or late. Daily (schedules.py), one run at a time (deployment.py), it deletes the runs
that ended more than `keep_days` ago, ends stuck runs as Failed, and fails naming late ones."""

import tempfile
from pathlib import Path

import prefect
from prefect import Flow, Parameter

from flows.server_housekeeping.tasks import (
    count_rows,
    days_to_keep,
    delete_old_runs,
    end_stuck_runs,
    fail_if_late,
    find_late_runs,
    record,
)
from flows.shared.failures import say_why
from flows.shared.results import RunFolderResult


def results_folder() -> Path:
    """The run's results, in its own container: a result named anywhere else is not read."""
    return Path(tempfile.gettempdir()) / "housekeeping-results" / prefect.context.get("flow_run_id", "local")


with Flow(
    "Server housekeeping", state_handlers=[say_why], result=RunFolderResult(folder=results_folder)
) as flow:
    # Days an ended run is kept; empty: SERVER_KEEP_DAYS (30), read when the run starts.
    keep_days = Parameter("keep_days", default=None)
    days = days_to_keep(keep_days)
    before = count_rows(task_args={"name": "count_rows_before"}, upstream_tasks=[days])
    deleted = delete_old_runs(days, upstream_tasks=[before])
    ended = end_stuck_runs(upstream_tasks=[before])
    after = count_rows(task_args={"name": "count_rows_after"}, upstream_tasks=[deleted, ended])
    late = find_late_runs(upstream_tasks=[after])
    recorded = record(before, deleted, ended, late, after)
    fail_if_late(late, upstream_tasks=[recorded])
