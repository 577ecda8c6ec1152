"""The stack's metrics for Prometheus (docs/operations.md#what-is-watched): the server's
flows, runs and agents read through its API, the services' health, the database's and the
reports' size."""
