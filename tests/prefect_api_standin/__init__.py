"""A stand-in for Prefect Server's GraphQL API (apollo), for tests on machines that cannot
pull the server's images.

It answers the part of the API that prefect 0.15.9's Client, Docker agent and flow/task
runners use to register a flow, schedule it, claim runs and report their states and logs.
Every request is parsed and validated by graphql-core against schema.graphql: an
operation, field or argument it does not declare is an error, and so is a filter it cannot
honour, so a change in what Prefect sends fails a test instead of passing silently.
State is kept in memory (tables.py); every operation is recorded in `operations`. The
server's rules are methods of PrefectAPIStandIn (api.py, from flows.py, runs.py, hooks.py
and towel.py), which tests call too; resolvers.py maps the schema's fields to them; the
HTTP side is server.py.

    python -m tests.prefect_api_standin --host 0.0.0.0 --port 4200 --lifetime 900
"""

from tests.prefect_api_standin.api import PrefectAPIStandIn

__all__ = ["PrefectAPIStandIn"]
