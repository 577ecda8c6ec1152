"""`make bench`'s exporter figure: one scrape of the exporter (exporter/metrics.py) against
the API stand-in holding 10,000 runs of the Users report (most ended, some in the last hour,
some running or late), with a PostgreSQL of this machine's for the table statistics."""

import statistics
import tempfile
import time

import pendulum

from exporter.metrics import Sources, StackCollector
from tests.prefect_api_standin import PrefectAPIStandIn
from tests.support.agent_runs import users_report_registered
from tests.support.postgres import temporary_postgres

RUNS = 10_000
SCRAPES = 5


def exporter_scrape() -> str:
    standin = PrefectAPIStandIn().serve(lifetime=600)
    now = pendulum.now("UTC")
    with temporary_postgres() as database, tempfile.TemporaryDirectory() as reports:
        flow_id = users_report_registered(standin, reports)
        with standin.lock:
            for index in range(RUNS):
                ended = now.subtract(minutes=index)  # one a minute: the last hour's 60 in the window
                run = standin.create_flow_run(flow_id=flow_id)
                state = "Failed" if index % 10 == 0 else "Success"
                run.update(
                    state=state, start_time=ended.subtract(minutes=1).isoformat(), end_time=ended.isoformat()
                )
        collector = StackCollector(
            Sources(
                api_url=f"{standin.url}/graphql",
                database_url=database,
                reports_dir=reports,
                health={},
                run_max_seconds=86400.0,
            )
        )
        seconds = []
        for _ in range(SCRAPES):
            started = time.perf_counter()
            families = list(collector.collect())
            seconds.append(time.perf_counter() - started)
        assert not collector.errors, collector.errors
        assert families
    standin.stop()
    return (
        f"exporter scrape with {RUNS:,} runs in the server (the stand-in): median "
        f"{statistics.median(seconds):.2f} s over {SCRAPES} (goal < 1 s)"
    )
