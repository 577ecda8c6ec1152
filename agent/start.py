"""Starts Prefect's Docker agent for every flow of the stack once Prefect Server answers.

1. builds the DockerAgent, refusing bad settings and an unreachable Docker engine at once:
   the stack's label, flow containers on the server network (so they reach
   http://apollo:4200/graphql), the host's reports folder bound into them, the locally
   built flow images not pulled, flow logs shown with the agent's; each flow's limits,
   secrets and environment as its package declares them (agent/per_flow.py);
2. waits (bounded) until the API answers `query { hello }`;
3. makes sure the server has a tenant (agents and registration need one; the UI would
   otherwise ask a person to make it), then runs the agent.
"""

# Imported before any thread: each of DockerAgent's deploy threads starts a log-streaming
# process, whose first start imports this module, and two threads importing it at once
# fail (python/cpython#83065).
import multiprocessing.popen_fork  # noqa: F401
import os
import sys
import threading
from typing import Optional

import prefect
from prefect.agent.docker import DockerAgent
from prefect.engine.state import Failed
from prefect.utilities.agent import get_flow_image
from prefect.utilities.graphql import with_args

from agent import admission, out_of_memory, per_flow
from agent.running_limit import RunningLimit
from stack.catalog import packages
from stack.server import ensure_tenant, wait_for_apollo
from stack.settings import FLOW_REPORTS_DIR, StackSettings, load_stack_settings

# The agent's own health endpoint, for the compose healthcheck.
AGENT_ADDRESS = "http://0.0.0.0:8080"
# Where HOST_CA_BUNDLE is bound, in the agent's container (agent/docker-compose.yml) and in
# the flow containers it starts.
CA_BUNDLE = "/etc/users-report/ca-bundle.pem"


class RegisteredOnlyDockerAgent(DockerAgent):
    """Prefect's DockerAgent, deploying only what this stack registered, as registered
    (agent/admission.py): a run refused fails with one line saying what and why, and
    no container is made. (Prefect's own reg_allow_list checks only the registry.) Each
    flow's runs get what its package declares (agent/per_flow.py), at most MAX_RUNNING
    at once (agent/running_limit.py); a run killed for its memory says so
    (agent/out_of_memory.py). Each override below only hands over to one of those."""

    # Prefect's agent, idle, backs off to a poll every 10 s (prefect 0.15.9 agent/agent.py
    # 111-119): a run started from the UI would wait up to 10 s to be claimed. Cut at 0.5 s,
    # a sixth of the 3 s from a click to Running (make bench), for two small queries a second.
    _loop_intervals = {0: 0.25, 1: 0.5}

    def __init__(self, allowed_images, flows, secrets_file, **kwargs):
        super().__init__(**kwargs)
        self.allowed_images = frozenset(allowed_images)
        self.flows = flows  # script in the image -> admission.Deployed
        self.secrets_file = secrets_file
        self.limit = RunningLimit()

    def package_of(self, flow_run) -> admission.Deployed:
        """What the flow's package declares, by its script (admitted: one of ours)."""
        return self.flows[admission.script_of(flow_run.flow)]

    def deploy_flow(self, flow_run) -> str:
        problem = self.refusal(flow_run)
        if problem:
            self.logger.warning(f"Flow run {flow_run.id} refused: {problem}")
            raise ValueError(problem)  # the agent marks the run Failed with it
        return super().deploy_flow(flow_run)

    def refusal(self, flow_run) -> Optional[str]:
        # The agent's own query of the run carries neither its context nor the run configs
        # of its flow and flow group.
        fields = {
            "context": True,
            "run_config": True,
            "flow": {"run_config": True, "flow_group": {"run_config"}, "project": {"name"}},
        }
        query = {"query": {with_args("flow_run_by_pk", {"id": flow_run.id}): fields}}
        stored = self.client.graphql(query).data.flow_run_by_pk
        problem = admission.run_refusal(
            flow_run, stored, self.allowed_images, self.flows, get_flow_image(flow_run)
        )
        if problem:
            return problem
        deployed = self.package_of(flow_run)
        secrets = per_flow.read_secrets(self.secrets_file)
        return per_flow.missing_secret(deployed.deployment, secrets, deployed.package)

    def _safe_write_run_log(self, flow_run, message, level) -> None:
        """Prefect's own raises when the API does not take the line, and `_deploy_flow_run`
        then marks Failed a run whose container it has started (prefect 0.15.9
        agent/agent.py 393-424). A lost line costs the agent's log a warning instead."""
        try:
            super()._safe_write_run_log(flow_run, message, level)
        except Exception as exc:
            self.logger.warning(f"Flow run {flow_run.id}: the API took no log line ({exc}): {message}")

    def _get_run_config(self, flow_run, run_config_cls):
        """The run's run config (admitted: no host config of its own) with the flow's limits."""
        run_config = super()._get_run_config(flow_run, run_config_cls)
        run_config.host_config = per_flow.host_config(self.package_of(flow_run).deployment)
        return run_config

    def populate_env_vars(self, flow_run, image, run_config=None) -> dict:
        env = super().populate_env_vars(flow_run, image, run_config=run_config)
        deployment = self.package_of(flow_run).deployment
        secrets = per_flow.read_secrets(self.secrets_file) if deployment.secrets else {}
        env.update(per_flow.flow_env(deployment, secrets))
        env.update(self.env_vars)  # the agent's own (REPORTS_DIR, the CA bundle) win over a flow's
        return env

    def _get_flow_run_metadata(self, flow_run_ids):
        """The runs due, less those over their flow's MAX_RUNNING: told why once."""
        admitted, held = self.limit.admit(
            super()._get_flow_run_metadata(flow_run_ids),
            key_of=self.limited_script,
            limit_of=lambda script: self.flows[script].deployment.max_running,
            running_of=self.running_ids,
        )
        for flow_run in held:
            if self.limit.first_wait(flow_run.id):
                deployed = self.package_of(flow_run)
                message = per_flow.waiting_message(flow_run.flow.name, deployed.package, deployed.deployment)
                self._safe_write_run_log(flow_run, message, "INFO")
        return admitted

    def limited_script(self, flow_run) -> Optional[str]:
        """The script of a run of one of our flows, whatever its state (the server hands out
        Running runs with a task run due too): the key its limit counts by."""
        script = admission.script_of(flow_run.flow)
        return script if script in self.flows else None

    def running_ids(self, flow_run) -> set:
        """The ids of the runs of this run's flow the server has as Submitted or Running."""
        where = {
            "state": {"_in": ["Submitted", "Running"]},
            "flow": {
                "name": {"_eq": flow_run.flow.name},
                "project": {"name": {"_eq": self.package_of(flow_run).deployment.project}},
            },
        }
        runs = self.client.graphql({"query": {with_args("flow_run", {"where": where}): {"id"}}})
        return {run.id for run in runs.data.flow_run}

    def _deploy_flow_run_completed_callback(self, future, flow_run_id) -> None:
        super()._deploy_flow_run_completed_callback(future, flow_run_id)
        self.limit.ended(flow_run_id)

    def on_startup(self) -> None:
        super().on_startup()
        watcher = threading.Thread(
            target=out_of_memory.watch,
            args=(self._get_docker_client, self.fail_out_of_memory, self.logger),
            name="out-of-memory",
            daemon=True,
        )
        watcher.start()

    def fail_out_of_memory(self, run_id, flow_id) -> None:
        flow = self.client.graphql(
            {"query": {with_args("flow_by_pk", {"id": flow_id}): {"storage"}}}
        ).data.flow_by_pk
        deployed = self.flows[admission.script_of(flow)]
        message = per_flow.out_of_memory_message(deployed.package, deployed.deployment)
        self.logger.warning(f"Flow run {run_id}: {message}")
        self.client.write_run_logs(
            [{"flow_run_id": run_id, "name": self.name, "message": message, "level": "ERROR"}]
        )
        self.client.set_flow_run_state(flow_run_id=run_id, version=None, state=Failed(message))


def build_agent(settings: StackSettings, catalog=None) -> DockerAgent:
    if not os.path.isabs(settings.host_reports_dir):
        raise SystemExit(
            "error: HOST_REPORTS_DIR must be an absolute path on the Docker host, where "
            f"reports land (`make up` sets it to ./reports); got {settings.host_reports_dir!r}"
        )
    try:
        # Each package's flow as register.py registers it, from this same image.
        flows = {
            package.script_in_image: admission.Deployed(
                package.name, package.deployment(settings), package.load_flow().name, package.version()
            )
            for package in (packages() if catalog is None else catalog)
        }
        per_flow.read_secrets(settings.secrets_file)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    env = {"REPORTS_DIR": FLOW_REPORTS_DIR, "REPORTS_URL": settings.reports_url}
    volumes = [f"{settings.host_reports_dir}:{FLOW_REPORTS_DIR}"]
    if settings.host_ca_bundle:  # a server behind the proxy's own CA (docs/scaling.md)
        os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"] = CA_BUNDLE
        volumes.append(f"{settings.host_ca_bundle}:{CA_BUNDLE}:ro")
    return RegisteredOnlyDockerAgent(
        allowed_images={settings.flow_repository, *settings.extra_allowed_images},
        flows=flows,
        secrets_file=settings.secrets_file,
        name="users-report-agent",
        labels=[settings.agent_label],
        env_vars=env,
        networks=[settings.network],
        volumes=volumes,
        # The flow images are built on this Docker host; with a registry, agents pull them.
        no_pull=not settings.registry_url,
        show_flow_logs=True,
        agent_address=AGENT_ADDRESS,
    )


def main() -> None:
    try:
        settings = load_stack_settings()
        # The flows' own settings it hands to their runs: refuse bad ones now.
        for package in packages():
            package.check_settings()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    agent = build_agent(settings)  # checks the reports folder and the Docker engine first
    wait_for_apollo(settings.apollo_wait_seconds)
    ensure_tenant(prefect.Client())
    agent.start()


if __name__ == "__main__":
    sys.exit(main())
