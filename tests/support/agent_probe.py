"""Runs the agent exactly as `agent/start.py` builds it, against a fake Docker client, and
prints what reached Docker as JSON. Run it with the agent container's environment.

    python -m tests.support.agent_probe deploy < dry-run.json   deploy one made-up run of that flow
    python -m tests.support.agent_probe poll 3                  poll the API 3 times, deploy what is due
"""

import json
import sys
from unittest import mock

from prefect.agent.docker import DockerAgent
from prefect.utilities.graphql import GraphQLResult

from agent.start import build_agent
from stack.settings import load_stack_settings
from tests.support import free_port


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
                "create_container": {"Id": f"container-{len(self.calls)}"},
                "pull": [],  # its progress lines
                "events": [],  # none: no container here goes over its memory
            }.get(name, True)

        return call


def made_up_run(registered: dict) -> GraphQLResult:
    return GraphQLResult(
        {
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
        }
    )


def main(mode: str, polls: str = "3") -> None:
    docker = FakeDockerClient()
    with (
        mock.patch.object(DockerAgent, "_get_docker_client", lambda agent: docker),
        mock.patch.object(DockerAgent, "stream_flow_logs") as stream_logs,
    ):
        agent = build_agent(load_stack_settings())
        if mode == "deploy":
            entry = json.load(sys.stdin)
            registered = entry["serialized_flow"]
            # No API here: the agent's own look-up of the run answers as the server would.
            stored = {
                "context": {},
                "run_config": registered["run_config"],
                "flow": {
                    "run_config": registered["run_config"],
                    "flow_group": {"run_config": None},
                    "project": {"name": entry["project"]},
                },
            }
            ask_api = agent.client.graphql

            def graphql(query, *args, **kwargs):
                if "flow_run_by_pk" in str(query):
                    return GraphQLResult({"data": {"flow_run_by_pk": stored}})
                return ask_api(query, *args, **kwargs)

            with mock.patch.object(agent.client, "graphql", graphql):
                agent.deploy_flow(made_up_run(registered))
        else:
            # The agent's health server on a free loopback port instead of 0.0.0.0:8080.
            agent.agent_address = f"http://127.0.0.1:{free_port()}"
            agent.max_polls = int(polls)
            agent.start()
    print(
        json.dumps(
            {
                "labels": sorted(agent.labels),
                "logs_streamed": stream_logs.called,
                "calls": docker.calls,
            },
            default=str,
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
