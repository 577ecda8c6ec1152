"""The exporter's HTTP side: /metrics for Prometheus, on port 9300 (PORT).

python -m exporter
"""

import os
import time

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY

from exporter.metrics import Sources, StackCollector
from flows.server_housekeeping.settings import load_settings as housekeeping_settings
from stack.catalog import packages
from stack.settings import load_stack_settings

PORT = 9300


def sources_from_environment() -> Sources:
    return Sources(
        api_url=os.environ.get("EXPORTER_API_URL", "http://apollo:4200/graphql"),
        database_url=os.environ["EXPORTER_DATABASE_URL"],
        reports_dir=os.environ.get("EXPORTER_REPORTS_DIR", "/reports"),
        health={
            "apollo": "http://apollo:4200/.well-known/apollo/server-health",
            "graphql": "http://graphql:4201/health",
            "hasura": "http://hasura:3000/healthz",
            "agent": "http://agent:8080/api/health",
            "door": "http://door:4300/door/health",
        },
        run_max_seconds=housekeeping_settings().run_max_hours * 3600,
        alerts_off=alerts_off(),
    )


def alerts_off() -> frozenset:
    """The flows of this image's packages that declare ALERTS = False, by flow name."""
    settings = load_stack_settings()
    return frozenset(
        package.load_flow().name for package in packages() if not package.deployment(settings).alerts
    )


def main() -> None:
    try:
        sources = sources_from_environment()
    except ValueError as exc:  # a flow package the agent would refuse to start with too
        raise SystemExit(f"error: {exc}") from None
    REGISTRY.register(StackCollector(sources))
    start_http_server(PORT)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
