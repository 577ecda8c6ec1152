"""`make bench`'s door figure: what the door (door/app.py, under uvicorn, with its people and
record in a PostgreSQL of this machine's) adds to a GraphQL request next to the same request
straight to the API stand-in, the two asked in turn so that the machine's drift counts for
both. A read as the UI's pages send them, and a run started as the Run page starts it (read,
checked against the flow, written on record)."""

import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

from tests.prefect_api_standin import PrefectAPIStandIn
from tests.support import ROOT, free_port
from tests.support.agent_runs import users_report_registered
from tests.support.postgres import temporary_postgres

READ = "query { flow_run(order_by: {scheduled_start_time: desc}, limit: 10) { id state parameters } }"
CREATE = "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }"
ROUNDS = 300


def timed(client: httpx.Client, url: str, body: dict) -> float:
    start = time.perf_counter()
    answer = client.post(url, json=body)
    elapsed = time.perf_counter() - start
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    return elapsed


def medians(client: httpx.Client, direct: str, door: str, body: dict) -> tuple:
    pairs = [(timed(client, direct, body), timed(client, door, body)) for _ in range(ROUNDS)]
    return statistics.median(d for d, _ in pairs), statistics.median(g for _, g in pairs)


def door_overhead() -> str:
    standin = PrefectAPIStandIn().serve(lifetime=600)
    port = free_port()
    with temporary_postgres() as database, tempfile.TemporaryDirectory() as reports:
        flow_id = users_report_registered(standin, reports)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DOOR_APOLLO_URL": standin.url,
            "DOOR_DATABASE_URL": database,
            "DOOR_LOGIN": "",
        }
        door = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "door.app:app", "--port", str(port), "--no-access-log"],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(timeout=10) as client:
                deadline = time.monotonic() + 30
                while True:
                    try:
                        client.get(f"http://127.0.0.1:{port}/door/health")
                        break
                    except httpx.TransportError:
                        assert time.monotonic() < deadline and door.poll() is None, "the door did not start"
                        time.sleep(0.1)
                direct, through = f"{standin.url}/graphql", f"http://127.0.0.1:{port}/graphql"
                read = medians(client, direct, through, {"query": READ})
                lines = [
                    f"a read: {read[0] * 1000:.1f} ms straight, {read[1] * 1000:.1f} ms through the door"
                ]
                start = {
                    "query": CREATE,
                    "variables": {"input": {"flow_id": flow_id, "parameters": {"n_users": 5}}},
                }
                run = medians(client, direct, through, start)
                lines.append(
                    f"a run started: {run[0] * 1000:.1f} ms straight, {run[1] * 1000:.1f} ms through"
                )
        finally:
            door.terminate()
            door.wait(timeout=30)
            standin.stop()
    added = (read[1] - read[0]) * 1000
    return f"the door adds {added:.1f} ms to the median read (goal <= 5 ms); " + "; ".join(lines)
