"""The housekeeping's tasks, through the server's own API (the one `prefect.Client` reaches).

Deleting goes through `delete_flow_run` (PrefectHQ/server 0f74a9a, api/runs.py 380-418): it
deletes the run's task run states and task runs, then the run; the database's foreign keys
take its flow run states, logs and artifacts with it (services/postgres/alembic/versions/
2020-06-24T092037_initial_database_migration.py 542-566, 2020-10-21T141127_add_artifact_api.py
49: ON DELETE CASCADE).
"""

from collections import Counter
from typing import Dict, List

import pendulum
import prefect
from prefect import task
from prefect.backend.artifacts import create_markdown_artifact
from prefect.engine import signals
from prefect.engine.state import Failed, Finished, State

from flows.server_housekeeping.settings import load_settings
from flows.shared.settings import MAX_KEEP_DAYS

FINISHED_STATES = sorted(state.__name__ for state in State.children() if issubclass(state, Finished))
STUCK_STATES = ["Submitted", "Running"]
# The big tables, counted before and after: every run adds rows to each.
TABLES = ("flow_run", "task_run", "flow_run_state", "task_run_state", "log")
# Runs per query and per request of deletes: each request stays small for the server.
BATCH = 100
# Stuck or late runs handled per run: a few in a working stack; the next run takes the rest.
AT_MOST = 1000
# Late runs named in the failure's message; the artifact lists them all.
NAMED = 5

RUNS = """
query ($where: flow_run_bool_exp, $limit: Int) {
  flow_run(where: $where, order_by: [{state_timestamp: asc}], limit: $limit) {
    id name state state_timestamp state_start_time end_time flow { name }
  }
}
"""


def _graphql(query: str, **variables):
    return prefect.Client().graphql(query, variables=variables).data


def _runs(where: dict, limit: int = BATCH) -> List[dict]:
    own = prefect.context.get("flow_run_id")
    if own:  # never this run itself
        where = {"_and": [where, {"id": {"_neq": own}}]}
    return [
        {
            "id": run.id,
            "flow": run.flow.name,
            "name": run.name,
            "state": run.state,
            "since": run.state_timestamp,
            "due": run.state_start_time,
            "ended": run.end_time,
        }
        for run in _graphql(RUNS, where=where, limit=limit).flow_run
    ]


def _ago(**interval) -> str:
    return pendulum.now("UTC").subtract(**interval).isoformat()


@task
def count_rows() -> Dict[str, int]:
    """Rows in each of the big tables (Hasura's aggregates, as the UI's dashboard counts)."""
    fields = " ".join(f"{table}: {table}_aggregate {{ aggregate {{ count }} }}" for table in TABLES)
    data = _graphql(f"query {{ {fields} }}")
    return {table: data[table].aggregate.count for table in TABLES}


@task
def days_to_keep(keep_days) -> float:
    """The run's `keep_days`, or SERVER_KEEP_DAYS when it gives none; a bad one fails the
    run before anything is touched."""
    if keep_days is None or str(keep_days).strip() == "":
        return load_settings().keep_days
    try:
        days = float(keep_days)
    except (TypeError, ValueError):
        days = -1.0
    if not 0 <= days <= MAX_KEEP_DAYS:
        raise signals.FAIL(
            f"keep_days={keep_days!r} is not allowed: use a number of days from 0 to {MAX_KEEP_DAYS:,} "
            "(0 keeps every run; empty takes SERVER_KEEP_DAYS)"
        )
    return days


@task
def delete_old_runs(days: float) -> Dict[str, int]:
    """Deletes the runs of every flow that ended more than `days` ago, oldest first, in
    batches; returns how many of each flow went. Runs not yet finished are never touched."""
    if not days:
        return {}
    cutoff = _ago(seconds=days * 86400)
    where = {"state": {"_in": FINISHED_STATES}, "end_time": {"_lt": cutoff}}
    deleted = Counter()
    while True:
        runs = _runs(where)
        if not runs:
            break
        ids = {f"r{index}": run["id"] for index, run in enumerate(runs)}
        arguments = ", ".join(f"${name}: UUID!" for name in ids)
        deletes = " ".join(
            f"{name}: delete_flow_run(input: {{flow_run_id: ${name}}}) {{ success }}" for name in ids
        )
        answers = _graphql(f"mutation ({arguments}) {{ {deletes} }}", **ids)
        gone = [run for name, run in zip(ids, runs) if answers[name].success]
        if not gone:  # the same runs would come back forever
            raise signals.FAIL(f"the server deleted none of {len(runs)} runs ended before {cutoff}")
        deleted.update(run["flow"] for run in gone)
    prefect.context.logger.info(
        f"Deleted {sum(deleted.values())} runs that ended before {cutoff} (keep_days={days:g})"
    )
    return dict(deleted)


@task
def end_stuck_runs() -> List[dict]:
    """Ends as Failed, with a message saying why, the runs Submitted or Running for more than
    RUN_MAX_HOURS: their alerts fire, where the server would leave them so for ever."""
    hours = load_settings().run_max_hours
    where = {"state": {"_in": STUCK_STATES}, "state_timestamp": {"_lt": _ago(seconds=hours * 3600)}}
    client, runs = prefect.Client(), _runs(where, limit=AT_MOST)
    for run in runs:
        message = (
            f"Ended by Server housekeeping: {run['state']} since {run['since']}, more than "
            f"{hours:g} h (RUN_MAX_HOURS)"
        )
        client.set_flow_run_state(run["id"], Failed(message=message))
        prefect.context.logger.warning(f"{run['flow']} / {run['name']}: {message}")
    return runs


@task
def find_late_runs() -> List[dict]:
    """Scheduled runs of any flow due more than LATE_MINUTES ago: no agent takes them."""
    minutes = load_settings().late_minutes
    where = {"state": {"_eq": "Scheduled"}, "state_start_time": {"_lt": _ago(seconds=minutes * 60)}}
    return sorted(_runs(where, limit=AT_MOST), key=lambda run: run["due"])


def _late_text(runs: List[dict], named: int) -> str:
    minutes = load_settings().late_minutes
    names = ", ".join(f"{run['flow']} / {run['name']} (due {run['due']})" for run in runs[:named])
    more = f" and {len(runs) - named} more" if len(runs) > named else ""
    return (
        f"{len(runs)} scheduled runs are late by more than {minutes:g} min (LATE_MINUTES): "
        f"no agent takes them (is one up, with their labels?): {names}{more}"
    )


@task
def record(before: Dict[str, int], deleted: Dict[str, int], ended: List[dict], late: List[dict], after):
    """The run's markdown artifact: what went, what was ended, what is late, the tables' rows."""
    gone = ", ".join(f"{flow} {count}" for flow, count in sorted(deleted.items())) or "none"
    lines = [
        "## Server housekeeping",
        "",
        f"- Deleted {sum(deleted.values())} ended runs, with their task runs, states and logs: {gone}.",
        f"- Ended as Failed {len(ended)} stuck runs"
        + "".join(
            f"\n  - {run['flow']} / {run['name']}: {run['state']} since {run['since']}" for run in ended
        ),
        f"- Late: {_late_text(late, len(late)) if late else 'none'}.",
        "",
        "| table | rows before | rows after |",
        "|---|---:|---:|",
        *(f"| {table} | {before[table]:,} | {after[table]:,} |" for table in TABLES),
    ]
    markdown = "\n".join(lines)
    create_markdown_artifact(markdown)
    prefect.context.logger.info(f"\n{markdown}")
    return markdown


@task
def fail_if_late(late: List[dict]) -> None:
    """The run fails naming the late runs, so that its own alert reaches someone."""
    if late:
        raise signals.FAIL(_late_text(late, NAMED))
