"""The exporter (exporter/) against the API stand-in with the flows register.py registers,
runs in every state, a real DockerAgent that asked for work, a PostgreSQL of this machine's
and a reports folder: each metric says what the server holds."""

import os
import subprocess
import sys
import time

import pendulum
import psycopg2
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.metrics import Sources, StackCollector
from tests.support import copy_of_checkout, free_port
from tests.support.agent_runs import agent_polls, register

NOW = pendulum.now("UTC")


def samples(collector) -> dict:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def flow_labels(name="Users report", **more):
    return tuple(sorted({"flow": name, "project": "Data office", **more}.items()))


@pytest.fixture
def server(standin, stack_env, postgres_url, tmp_path):
    register(stack_env, flow=None)
    with standin.lock:
        flows = {flow["name"]: flow for flow in standin.tables["flow"].values()}
        report = flows["Users report"]["id"]
        for state, ended in [("Success", NOW.subtract(hours=3)), ("Failed", NOW.subtract(minutes=5)), ("Failed", NOW.subtract(minutes=9)), ("Success", NOW.subtract(days=2))]:  # fmt: skip
            run = standin.create_flow_run(flow_id=report)
            run.update(
                state=state,
                end_time=ended.isoformat(),
                start_time=ended.subtract(minutes=1).isoformat(),
                state_message=f"{state} at {ended.isoformat()}\n  (a second line)",
            )
        running = standin.create_flow_run(flow_id=report)
        running.update(state="Running", start_time=NOW.subtract(hours=2).isoformat())
        late = standin.create_flow_run(
            flow_id=report, scheduled_start_time=NOW.subtract(minutes=10).isoformat()
        )
        late.update(state="Scheduled", labels=["no-agent-has-this"])  # left late by the agent
    agent_polls(stack_env, polls=1)  # registers, then asks for work with its id in a header
    reports = tmp_path / "reports"
    (reports / "nested").mkdir(parents=True)
    (reports / "a.csv").write_bytes(b"x" * 1000)
    (reports / "nested" / "b.csv").write_bytes(b"y" * 24)

    connection = psycopg2.connect(postgres_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS flow_run; CREATE TABLE flow_run (id int)")
        cursor.execute("INSERT INTO flow_run SELECT generate_series(1, 1500)")
        deadline = time.monotonic() + 10  # PostgreSQL's statistics catch up within a second or so
        while True:
            cursor.execute("SELECT n_live_tup FROM pg_stat_user_tables WHERE relname = 'flow_run'")
            if cursor.fetchone()[0] == 1500:
                break
            assert time.monotonic() < deadline, "PostgreSQL's statistics never counted the rows"
            time.sleep(0.2)
    connection.close()
    return Sources(
        api_url=f"{standin.url}/graphql",
        database_url=postgres_url,
        reports_dir=str(reports),
        health={
            "apollo": f"{standin.url}/.well-known/apollo/server-health",
            "door": f"http://127.0.0.1:{free_port()}/",
        },
        run_max_seconds=3600.0,
        alerts_off=frozenset({"Server housekeeping"}),
    )


def test_each_metric_says_what_the_server_holds(server):
    got = samples(StackCollector(server, clock=lambda: NOW))
    report = flow_labels()
    assert got[("prefect_flow_runs_ended", flow_labels(state="Failed"))] == 2  # the last hour's only
    assert got[("prefect_flow_runs_ended", flow_labels(state="Success"))] == 0
    assert got[("prefect_flow_last_success_timestamp_seconds", report)] == NOW.subtract(hours=3).timestamp()
    ((last_failure, ended),) = [
        (dict(labels), value) for (name, labels), value in got.items() if name == "prefect_flow_last_failure_timestamp_seconds"
    ]  # fmt: skip
    assert ended == NOW.subtract(minutes=5).timestamp()
    assert last_failure["message"] == f"Failed at {NOW.subtract(minutes=5).isoformat()} (a second line)"
    assert last_failure["run_name"] and last_failure["run_id"]
    assert got[("prefect_flow_alerts_enabled", report)] == 1
    assert got[("prefect_flow_alerts_enabled", flow_labels("Server housekeeping"))] == 0
    assert got[("prefect_flow_schedule_interval_seconds", report)] == 86400  # daily at 06:00
    assert got[("prefect_flow_runs_late", report)] == 1
    assert got[("prefect_flow_runs_running", report)] == 1
    assert got[("prefect_flow_oldest_running_seconds", report)] == pytest.approx(7200, abs=1)
    (agent,) = [labels for name, labels in got if name == "prefect_agent_last_query_timestamp_seconds"]
    assert dict(agent)["labels"] == "users-report"
    assert (
        NOW.timestamp() - 60
        < got[("prefect_agent_last_query_timestamp_seconds", agent)]
        <= pendulum.now().timestamp()
    )
    assert got[("prefect_service_up", (("service", "apollo"),))] == 1
    assert got[("prefect_service_up", (("service", "door"),))] == 0  # nothing listens there
    assert got[("prefect_service_up", (("service", "towel"),))] == 1  # every schedule has runs ahead
    assert got[("prefect_table_rows", (("table", "flow_run"),))] == 1500
    assert got[("prefect_database_bytes", ())] > 1_000_000
    assert got[("prefect_reports_bytes", ())] == 1024
    assert 0 < got[("prefect_reports_disk_free_bytes", ())] <= got[("prefect_reports_disk_size_bytes", ())]
    assert got[("prefect_run_max_seconds", ())] == 3600
    assert not [key for key in got if key[0] == "prefect_exporter_scrape_errors_total"]


def test_a_part_that_cannot_be_read_is_counted_and_the_rest_still_served(server):
    collector = StackCollector(
        Sources(**{**server.__dict__, "api_url": f"http://127.0.0.1:{free_port()}/graphql"}),
        clock=lambda: NOW,
    )
    samples(collector)
    got = samples(collector)
    assert got[("prefect_exporter_scrape_errors_total", (("part", "server"),))] == 2
    assert got[("prefect_reports_bytes", ())] == 1024
    assert ("prefect_service_up", (("service", "towel"),)) not in got  # unknown, not down
    assert not [key for key in got if key[0].startswith("prefect_flow_")]


def test_the_flows_with_alerts_off_are_read_from_their_packages(tmp_path):
    checkout = copy_of_checkout(tmp_path / "checkout")
    deployment = checkout / "flows" / "server_housekeeping" / "deployment.py"
    deployment.write_text(deployment.read_text() + "\nALERTS = False\n")
    read = subprocess.run(
        [sys.executable, "-c", "from exporter.__main__ import alerts_off; print(sorted(alerts_off()))"],
        cwd=checkout, capture_output=True, text=True, timeout=120, env={**os.environ, "PREFECT__BACKEND": "server"},
    )  # fmt: skip
    assert read.stdout.strip() == "['Server housekeeping']", read.stderr
