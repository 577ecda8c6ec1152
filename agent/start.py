"""Starts Prefect's Docker agent for the "Users report" flow once Prefect Server answers.

1. builds the DockerAgent, refusing bad settings and an unreachable Docker engine at once:
   the flow's label, flow containers on the server network (so they reach
   http://apollo:4200/graphql), the host's reports folder bound into them, the locally
   built flow image not pulled, flow logs shown with the agent's;
2. waits (bounded) for apollo's health endpoint;
3. makes sure the server has a tenant (agents and registration need one; the UI would
   otherwise ask a person to make it), then runs the agent.
"""
import os
import sys

import prefect
from prefect.agent.docker import DockerAgent
from prefect.utilities.agent import get_flow_image

from deployment import ensure_tenant, wait_for_apollo
from flows.users_report.settings import (
    FLOW_REPORTS_DIR,
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


def repository(image: str) -> str:
    """An image's name without its tag or digest: `host:5000/flow:abc` -> `host:5000/flow`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


class AllowlistDockerAgent(DockerAgent):
    """Prefect's DockerAgent, starting only the images it may: whoever reaches the API can
    register a flow with any image and the agent's label, and the agent would start it with
    this host's Docker engine. Another image fails its run, with no container made.
    (Prefect's own reg_allow_list checks only the registry.)"""

    def __init__(self, allowed_images, **kwargs):
        super().__init__(**kwargs)
        self.allowed_images = frozenset(allowed_images)

    def deploy_flow(self, flow_run) -> str:
        image = get_flow_image(flow_run)
        if repository(image) not in self.allowed_images:
            message = (f"this agent does not start the image {image}: it starts only "
                       f"{', '.join(sorted(self.allowed_images))} (FLOW_IMAGE, REGISTRY_URL, "
                       f"AGENT_IMAGE_ALLOWLIST)")
            self.logger.warning(message)
            raise ValueError(message)  # the agent marks the run Failed with it
        return super().deploy_flow(flow_run)


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
    return AllowlistDockerAgent(
        allowed_images={settings.flow_repository, *settings.extra_allowed_images},
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
