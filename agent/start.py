"""Starts Prefect's Docker agent for the "Users report" flow once Prefect Server answers.

1. builds the DockerAgent, refusing bad settings and an unreachable Docker engine at once:
   the flow's label, flow containers on the server network (so they reach
   http://apollo:4200/graphql), the host's reports folder bound into them, the locally
   built flow image not pulled, flow logs shown with the agent's;
2. waits (bounded) until the API answers `query { hello }`;
3. makes sure the server has a tenant (agents and registration need one; the UI would
   otherwise ask a person to make it), then runs the agent.
"""
import os
import sys
from typing import Optional

import prefect
from prefect.agent.docker import DockerAgent
from prefect.utilities.agent import get_flow_image
from prefect.utilities.graphql import with_args

from agent import admission
from deployment import ensure_tenant, wait_for_apollo
from flows.users_report.settings import (
    FLOW_REPORTS_DIR,
    FLOW_SCRIPT_IN_IMAGE,
    PIPELINE_VARIABLES,
    StackSettings,
    load_settings,
    load_stack_settings,
)

# The agent's own health endpoint, for the compose healthcheck.
AGENT_ADDRESS = "http://0.0.0.0:8080"
# Where HOST_CA_BUNDLE is bound, in the agent's container (agent/docker-compose.yml) and in
# the flow containers it starts.
CA_BUNDLE = "/etc/users-report/ca-bundle.pem"


class RegisteredOnlyDockerAgent(DockerAgent):
    """Prefect's DockerAgent, deploying only what this stack registered, as registered
    (agent/admission.py): a run refused fails with one line saying what and why, and
    no container is made. (Prefect's own reg_allow_list checks only the registry.)"""

    def __init__(self, allowed_images, allowed_scripts, **kwargs):
        super().__init__(**kwargs)
        self.allowed_images = frozenset(allowed_images)
        self.allowed_scripts = frozenset(allowed_scripts)

    def deploy_flow(self, flow_run) -> str:
        problem = self.refusal(flow_run)
        if problem:
            self.logger.warning(f"Flow run {flow_run.id} refused: {problem}")
            raise ValueError(problem)  # the agent marks the run Failed with it
        return super().deploy_flow(flow_run)

    def refusal(self, flow_run) -> Optional[str]:
        problem = admission.flow_refusal(flow_run.flow, self.allowed_images, self.allowed_scripts)
        if problem:
            return problem
        # The agent's own query of the run carries neither its context nor the run configs
        # of its flow and flow group.
        query = {"query": {with_args("flow_run_by_pk", {"id": flow_run.id}): {
            "context": True, "run_config": True,
            "flow": {"run_config": True, "flow_group": {"run_config"}}}}}
        stored = self.client.graphql(query).data.flow_run_by_pk
        problem = admission.context_refusal(stored.context)
        if problem:
            return problem
        setting = admission.run_config_refusal(flow_run.run_config, get_flow_image(flow_run))
        return setting and (f"this agent does not start {setting}, from "
                            f"{admission.run_config_source(stored)}: a run config may set only "
                            f"labels (and the UI's logging level)")


def build_agent(settings: StackSettings) -> DockerAgent:
    if not os.path.isabs(settings.host_reports_dir):
        raise SystemExit(
            "error: HOST_REPORTS_DIR must be an absolute path on the Docker host, where "
            f"reports land (`make up` sets it to ./reports); got {settings.host_reports_dir!r}"
        )
    flow_env = {"REPORTS_DIR": FLOW_REPORTS_DIR}
    flow_env.update({name: os.environ[name] for name in PIPELINE_VARIABLES if os.environ.get(name)})
    volumes = [f"{settings.host_reports_dir}:{FLOW_REPORTS_DIR}"]
    if settings.host_ca_bundle:  # a server behind the proxy's own CA (README: Team access)
        os.environ["REQUESTS_CA_BUNDLE"] = flow_env["REQUESTS_CA_BUNDLE"] = CA_BUNDLE
        volumes.append(f"{settings.host_ca_bundle}:{CA_BUNDLE}:ro")
    return RegisteredOnlyDockerAgent(
        allowed_images={settings.flow_repository, *settings.extra_allowed_images},
        allowed_scripts={FLOW_SCRIPT_IN_IMAGE},
        name="users-report-agent",
        labels=[settings.agent_label],
        env_vars=flow_env,
        networks=[settings.network],
        volumes=volumes,
        # The flow image is built on this Docker host; with a registry, agents pull it.
        no_pull=not settings.registry_url,
        show_flow_logs=True,
        agent_address=AGENT_ADDRESS,
    )


def main() -> None:
    try:
        settings = load_stack_settings()
        load_settings()  # the pipeline's settings it hands to flow runs: refuse bad ones now
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    agent = build_agent(settings)  # checks the reports folder and the Docker engine first
    wait_for_apollo(settings.apollo_wait_seconds)
    ensure_tenant(prefect.Client())
    agent.start()


if __name__ == "__main__":
    sys.exit(main())
