"""Deploys one flow run through the agent exactly as `agent/start.py` builds it, against a
fake Docker client, and prints what reached Docker as JSON.

Run with the agent container's environment; reads the flow as `register.py --dry-run`
prints it on stdin.
"""
import json
import sys
from unittest import mock

from prefect.agent.docker import DockerAgent
from prefect.utilities.graphql import GraphQLResult

from agent.start import build_agent
from flows.users_report.settings import load_stack_settings


class FakeDockerClient:
    """The calls of docker.APIClient that DockerAgent makes, recorded."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append([name, args, kwargs])
            return {
                "version": {"Version": "20.10.24"},
                "create_host_config": kwargs,
                "create_networking_config": args[0] if args else None,
                "create_endpoint_config": {},
                "create_container": {"Id": "container-1"},
            }.get(name, True)

        return call


def main() -> None:
    registered = json.load(sys.stdin)["serialized_flow"]
    docker = FakeDockerClient()
    with mock.patch.object(DockerAgent, "_get_docker_client", lambda agent: docker), \
            mock.patch.object(DockerAgent, "stream_flow_logs") as stream_logs:
        agent = build_agent(load_stack_settings())
        agent.deploy_flow(GraphQLResult({
            "id": "flow-run-1",
            "name": "ad-hoc-run",
            "version": 1,
            "run_config": registered["run_config"],
            "flow": {
                "id": "flow-1",
                "name": registered["name"],
                "storage": registered["storage"],
                "core_version": "0.15.9",
            },
        }))
    print(json.dumps({
        "labels": sorted(agent.labels),
        "logs_streamed": stream_logs.called,
        "calls": docker.calls,
    }, default=str))


if __name__ == "__main__":
    main()
