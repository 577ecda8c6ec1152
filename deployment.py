"""What register.py and the agent's start-up share: reaching Prefect Server, and making sure
it has what registration and agents need (a tenant; the flow's project)."""
import json
import time
import urllib.error
import urllib.request

import prefect
from prefect.utilities.graphql import with_args


def wait_for_apollo(seconds: float) -> None:
    """Returns once the API answers `query { hello }` at its address (apollo in the stack,
    PREFECT_API_URL for an agent elsewhere); exits with one line after `seconds`."""
    url = prefect.config.cloud.api
    request = urllib.request.Request(url, data=json.dumps({"query": "query { hello }"}).encode(),
                                     headers={"Content-Type": "application/json"})
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                if json.load(answer).get("data", {}).get("hello"):
                    return
                problem = "it answered without data"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            problem = str(exc)
        if time.monotonic() >= deadline:
            raise SystemExit(
                f"error: Prefect Server's API did not answer at {url} within {seconds:g} s "
                f"({problem}); see `make logs` for apollo and graphql"
            )
        time.sleep(2)


def ensure_tenant(client: prefect.Client) -> None:
    """A fresh server has no tenant; without one the UI would ask a person to make it."""
    if not client.get_available_tenants():
        client.create_tenant(name="default")


def ensure_project(client: prefect.Client, name: str) -> None:
    ensure_tenant(client)
    query = {"query": {with_args("project", {"where": {"name": {"_eq": name}}}): {"id"}}}
    if not client.graphql(query).data.project:
        client.create_project(project_name=name)
