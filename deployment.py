"""What register.py and the agent's start-up share: reaching Prefect Server, and making sure
it has what registration and agents need (a tenant; the flow's project)."""
import time
import urllib.error
import urllib.request

import prefect
from prefect.utilities.graphql import with_args


def wait_for_apollo(seconds: float) -> None:
    """Returns once apollo answers its health check; exits with one line after `seconds`."""
    url = f"{prefect.config.server.endpoint}/.well-known/apollo/server-health"
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(
                    f"error: Prefect Server's API did not answer at {url} within "
                    f"{seconds:g} s ({exc}); see `make logs` for apollo and graphql"
                ) from None
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
