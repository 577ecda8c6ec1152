"""What the exporter reads at each scrape: one GraphQL request to apollo for the flows, runs
and agents (aggregates the server computes, not one request per run), the health endpoints
of the stack's services, PostgreSQL's own statistics, and the reports folder."""

import os
import shutil
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import pendulum
import psycopg2
import requests
from prefect.serialization.schedule import ScheduleSchema

FINAL_STATES = ("Success", "Failed", "Cancelled", "TimedOut")
# A scheduled run this late is late; the agent asks every 10 s or so when idle.
LATE_SECONDS = 60
# Runs ended this long ago or less are counted by state (a gauge over a window: the
# housekeeping flow deletes old runs, and a counter kept here would restart with the exporter).
ENDED_WINDOW = pendulum.duration(hours=1)
SERVER_QUERY = """
query($ended_since: timestamptz, $late_before: timestamptz) {
  flow(where: {archived: {_eq: false}}) {
    id name created is_schedule_active schedule project { name }
  }
  running: flow_run(where: {state: {_in: ["Submitted", "Running"]}}) { flow_id start_time }
  ended: flow_run(where: {end_time: {_gte: $ended_since}, state: {_in: ["Success", "Failed", "Cancelled", "TimedOut"]}}) {
    flow_id state
  }
  late: flow_run(where: {state: {_eq: "Scheduled"}, scheduled_start_time: {_lt: $late_before}}) { flow_id }
  upcoming: flow_run(where: {state: {_eq: "Scheduled"}, auto_scheduled: {_eq: true}, scheduled_start_time: {_gte: $late_before}}, distinct_on: flow_id) {
    flow_id
  }
  last_success: flow_run(where: {state: {_eq: "Success"}}, distinct_on: flow_id, order_by: [{flow_id: asc}, {end_time: desc}]) {
    flow_id end_time
  }
  last_failure: flow_run(where: {state: {_in: ["Failed", "TimedOut"]}}, distinct_on: flow_id, order_by: [{flow_id: asc}, {end_time: desc}]) {
    flow_id id name end_time state_message
  }
  agent { id name labels last_queried }
}
"""
# The server's biggest tables, by PostgreSQL's own count of live rows.
BIG_TABLES = ("flow_run", "flow_run_state", "task_run", "task_run_state", "log", "task_run_artifact")


@dataclass
class Flow:
    name: str
    project: str
    registered: float
    interval: Optional[float]  # seconds between two runs of its active schedule
    running_since: List[float] = field(default_factory=list)
    ended: Dict[str, int] = field(default_factory=dict)
    late: int = 0
    upcoming: bool = False
    last_success: Optional[float] = None
    last_failure: Optional[dict] = None  # the run: id, name, end_time, state_message


def timestamp(text: Optional[str]) -> Optional[float]:
    return pendulum.parse(text).timestamp() if text else None


def schedule_interval(schedule: Optional[dict]) -> Optional[float]:
    """The seconds between a schedule's next two runs, as the server's scheduler makes them."""
    if not schedule:
        return None
    upcoming = ScheduleSchema().load(schedule).next(2)
    return (upcoming[1] - upcoming[0]).total_seconds() if len(upcoming) == 2 else None


def server_state(api_url: str, now: pendulum.DateTime, timeout: float = 10) -> tuple:
    """The flows (by id) and agents, from one request to the API."""
    answer = requests.post(
        api_url,
        json={
            "query": SERVER_QUERY,
            "variables": {
                "ended_since": (now - ENDED_WINDOW).isoformat(),
                "late_before": now.subtract(seconds=LATE_SECONDS).isoformat(),
            },
        },
        timeout=timeout,
    )
    answer.raise_for_status()
    body = answer.json()
    if body.get("errors"):
        raise RuntimeError(f"the API answered: {body['errors'][0].get('message')}")
    data = body["data"]
    flows = {
        row["id"]: Flow(
            name=row["name"],
            project=(row.get("project") or {}).get("name", ""),
            registered=timestamp(row["created"]),
            interval=schedule_interval(row["schedule"]) if row["is_schedule_active"] else None,
        )
        for row in data["flow"]
    }
    for row in data["running"]:
        if row["flow_id"] in flows and row["start_time"]:
            flows[row["flow_id"]].running_since.append(timestamp(row["start_time"]))
    for row in data["ended"]:
        if row["flow_id"] in flows:
            ended = flows[row["flow_id"]].ended
            ended[row["state"]] = ended.get(row["state"], 0) + 1
    for row in data["late"]:
        if row["flow_id"] in flows:
            flows[row["flow_id"]].late += 1
    for row in data["upcoming"]:
        if row["flow_id"] in flows:
            flows[row["flow_id"]].upcoming = True
    for row in data["last_success"]:
        if row["flow_id"] in flows:
            flows[row["flow_id"]].last_success = timestamp(row["end_time"])
    for row in data["last_failure"]:
        if row["flow_id"] in flows:
            flows[row["flow_id"]].last_failure = row
    return flows, data["agent"]


def healthy(url: str, timeout: float = 4) -> bool:
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def database_sizes(database_url: str) -> tuple:
    """The big tables' live rows and the database's bytes, from PostgreSQL's statistics."""
    with psycopg2.connect(database_url, connect_timeout=5) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE schemaname = 'public' AND relname = ANY(%s)",
            (list(BIG_TABLES),),
        )
        rows = dict(cursor.fetchall())
        cursor.execute("SELECT pg_database_size(current_database())")
        (size,) = cursor.fetchone()
    connection.close()
    return rows, size


def folder_bytes(folder: str) -> int:
    """The bytes of the files under `folder` (the reports and their staging)."""
    total, pending = 0, [folder]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def disk(folder: str) -> tuple:
    usage = shutil.disk_usage(folder)
    return usage.free, usage.total
