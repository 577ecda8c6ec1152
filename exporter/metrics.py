"""The exporter's metrics, made anew at each scrape from what exporter/readers.py reads (a
prometheus_client collector). A part that cannot be read is left out of that scrape and
counted in prefect_exporter_scrape_errors_total, so the rest still reaches Prometheus."""

import time
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Iterator

import pendulum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exporter import readers

FLOW_LABELS = ["flow", "project"]
# A failure's message is a label of the last failure's series: one line, kept short.
MESSAGE_CHARACTERS = 300


@dataclass(frozen=True)
class Sources:
    api_url: str
    database_url: str
    reports_dir: str
    # Service name -> its health URL (towel has none: its health is the upcoming runs it makes).
    health: Dict[str, str]
    run_max_seconds: float
    # Flows whose package says ALERTS = False (stack/catalog.py): no RunFailed for them.
    alerts_off: FrozenSet[str] = frozenset()


class StackCollector:
    def __init__(self, sources: Sources, clock: Callable[[], pendulum.DateTime] = pendulum.now):
        self.sources = sources
        self.clock = clock
        self.errors: Dict[str, int] = {}
        # Towel serves nothing to probe; its scheduler keeps the next runs of every active
        # schedule made, so an active schedule with none ahead means it is not working.
        self.towel_up = None

    def collect(self) -> Iterator:
        started = time.perf_counter()
        families, self.towel_up = [], None
        for part in (self.server, self.services, self.database, self.reports):
            try:
                families += list(part())
            except Exception:  # noqa: BLE001 - any failure of one part is counted, not fatal
                self.errors[part.__name__] = self.errors.get(part.__name__, 0) + 1
        errors = CounterMetricFamily(
            "prefect_exporter_scrape_errors", "Parts of the scrapes that could not be read", labels=["part"]
        )
        for part, count in sorted(self.errors.items()):
            errors.add_metric([part], count)
        families.append(errors)
        families.append(
            GaugeMetricFamily(
                "prefect_exporter_scrape_seconds",
                "How long this scrape took",
                value=time.perf_counter() - started,
            )
        )
        return iter(families)

    def server(self):
        moment = self.clock()  # one time for the whole scrape: the query's windows and the ages
        flows, agents = readers.server_state(self.sources.api_url, moment)
        now = moment.timestamp()
        gauge = {
            name: GaugeMetricFamily(name, text, labels=labels)
            for name, text, labels in [
                ("prefect_flow_registered_timestamp_seconds", "When the flow's current version was registered", FLOW_LABELS),
                ("prefect_flow_last_success_timestamp_seconds", "When the flow's last successful run ended", FLOW_LABELS),
                ("prefect_flow_schedule_interval_seconds", "Seconds between two runs of the flow's active schedule", FLOW_LABELS),
                ("prefect_flow_runs_late", "Scheduled runs more than a minute past their start time", FLOW_LABELS),
                ("prefect_flow_runs_running", "Runs Submitted or Running", FLOW_LABELS),
                ("prefect_flow_oldest_running_seconds", "Age of the oldest run Running", FLOW_LABELS),
                ("prefect_flow_runs_ended", "Runs ended in the last hour, by final state", FLOW_LABELS + ["state"]),
                ("prefect_flow_last_failure_timestamp_seconds", "When the flow's last failed run ended; the run and its message in labels", FLOW_LABELS + ["run_id", "run_name", "message"]),
                ("prefect_flow_alerts_enabled", "0 when the flow's package turns its failure alerts off (ALERTS)", FLOW_LABELS),
                ("prefect_agent_last_query_timestamp_seconds", "When the agent last asked the server for work", ["agent", "name", "labels"]),
            ]
        }  # fmt: skip
        towel_working = True
        for flow in flows.values():
            key = [flow.name, flow.project]
            gauge["prefect_flow_registered_timestamp_seconds"].add_metric(key, flow.registered)
            if flow.last_success is not None:
                gauge["prefect_flow_last_success_timestamp_seconds"].add_metric(key, flow.last_success)
            if flow.interval:
                gauge["prefect_flow_schedule_interval_seconds"].add_metric(key, flow.interval)
                towel_working = towel_working and flow.upcoming
            gauge["prefect_flow_runs_late"].add_metric(key, flow.late)
            gauge["prefect_flow_runs_running"].add_metric(key, len(flow.running_since))
            gauge["prefect_flow_oldest_running_seconds"].add_metric(
                key, now - min(flow.running_since) if flow.running_since else 0
            )
            for state in readers.FINAL_STATES:
                gauge["prefect_flow_runs_ended"].add_metric(key + [state], flow.ended.get(state, 0))
            if flow.last_failure:
                run = flow.last_failure
                message = " ".join((run.get("state_message") or "").split())[:MESSAGE_CHARACTERS]
                gauge["prefect_flow_last_failure_timestamp_seconds"].add_metric(
                    key + [run["id"], run.get("name") or "", message],
                    readers.timestamp(run["end_time"]) or now,
                )
            gauge["prefect_flow_alerts_enabled"].add_metric(
                key, 0 if flow.name in self.sources.alerts_off else 1
            )
        for agent in agents:
            if agent.get("last_queried"):
                gauge["prefect_agent_last_query_timestamp_seconds"].add_metric(
                    [agent["id"], agent.get("name") or "", ",".join(sorted(agent.get("labels") or []))],
                    readers.timestamp(agent["last_queried"]),
                )
        yield from gauge.values()
        self.towel_up = towel_working
        yield GaugeMetricFamily(
            "prefect_run_max_seconds",
            "RUN_MAX_HOURS: a run Running longer is stuck",
            value=self.sources.run_max_seconds,
        )

    def services(self):
        up = GaugeMetricFamily(
            "prefect_service_up", "1 when the service answers its health check", labels=["service"]
        )
        for service, url in sorted(self.sources.health.items()):
            up.add_metric([service], 1 if readers.healthy(url) else 0)
        if self.towel_up is not None:
            up.add_metric(["towel"], 1 if self.towel_up else 0)
        yield up

    def database(self):
        rows, size = readers.database_sizes(self.sources.database_url)
        tables = GaugeMetricFamily(
            "prefect_table_rows", "Live rows of the server's big tables", labels=["table"]
        )
        for table, count in sorted(rows.items()):
            tables.add_metric([table], count)
        yield tables
        yield GaugeMetricFamily("prefect_database_bytes", "The server's database's size", value=size)

    def reports(self):
        free, total = readers.disk(self.sources.reports_dir)
        yield GaugeMetricFamily(
            "prefect_reports_bytes",
            "Bytes of the reports folder",
            value=readers.folder_bytes(self.sources.reports_dir),
        )
        yield GaugeMetricFamily(
            "prefect_reports_disk_free_bytes", "Free bytes of the reports' disk", value=free
        )
        yield GaugeMetricFamily("prefect_reports_disk_size_bytes", "Size of the reports' disk", value=total)
