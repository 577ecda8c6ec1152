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

# Imported before any thread: DockerAgent deploys runs in threads, and each deployment
# starts a log-streaming process, whose start imports this module the first time. Two
# threads doing so at once made one fail on Debian's Python 3.9 ("cannot import name
# 'Popen' from partially initialized module": python/cpython#83065, as in
# apache/buildstream#1463): its run ended Failed while its container went on.
import multiprocessing.popen_fork  # noqa: F401
import os
import sys
import threading
import time
from collections import Counter
from typing import Optional

import prefect
from prefect.agent.docker import DockerAgent
from prefect.engine.state import Failed
from prefect.utilities.agent import get_flow_image
from prefect.utilities.graphql import with_args

from agent import admission, per_flow
from stack.catalog import packages
from stack.server import ensure_tenant, wait_for_apollo
from stack.settings import FLOW_REPORTS_DIR, StackSettings, load_stack_settings

# The agent's own health endpoint, for the compose healthcheck.
AGENT_ADDRESS = "http://0.0.0.0:8080"
# Where HOST_CA_BUNDLE is bound, in the agent's container (agent/docker-compose.yml) and in
# the flow containers it starts.
CA_BUNDLE = "/etc/users-report/ca-bundle.pem"


def script_of(flow) -> Optional[str]:
    """The script a registered flow's Docker storage loads, if it names one."""
    return next(iter(((flow.storage or {}).get("flows") or {}).values()), None)


class RegisteredOnlyDockerAgent(DockerAgent):
    """Prefect's DockerAgent, deploying only what this stack registered, as registered
    (agent/admission.py): a run refused fails with one line saying what and why, and
    no container is made. (Prefect's own reg_allow_list checks only the registry.) Each
    flow's runs get what its package declares: limits, secrets, environment."""

    # Prefect's agent, idle, backs off to a poll every 10 s (prefect 0.15.9 agent/agent.py
    # 111-119), so a run started from the UI waited up to 10 s to be claimed. Its intervals
    # cut at 1 s: idle, one small `get_runs_in_queue` query a second, 60 a minute, not 6.
    _loop_intervals = {0: 0.25, 1: 0.5, 2: 1.0}

    def __init__(self, allowed_images, flows, secrets_file, **kwargs):
        super().__init__(**kwargs)
        self.allowed_images = frozenset(allowed_images)
        self.flows = flows  # script in the image -> (package name, Deployment)
        self.secrets_file = secrets_file
        self.told_to_wait = set()
        self.deploying = {}  # run id -> script, while this agent deploys it

    def package_of(self, flow_run):
        """The flow's package name and Deployment, by its script (admitted: one of ours)."""
        return self.flows[script_of(flow_run.flow)]

    def deploy_flow(self, flow_run) -> str:
        problem = self.refusal(flow_run)
        if problem:
            self.logger.warning(f"Flow run {flow_run.id} refused: {problem}")
            raise ValueError(problem)  # the agent marks the run Failed with it
        return super().deploy_flow(flow_run)

    def refusal(self, flow_run) -> Optional[str]:
        problem = admission.flow_refusal(flow_run.flow, self.allowed_images, set(self.flows))
        if problem:
            return problem
        # The agent's own query of the run carries neither its context nor the run configs
        # of its flow and flow group.
        query = {
            "query": {
                with_args("flow_run_by_pk", {"id": flow_run.id}): {
                    "context": True,
                    "run_config": True,
                    "flow": {"run_config": True, "flow_group": {"run_config"}},
                }
            }
        }
        stored = self.client.graphql(query).data.flow_run_by_pk
        problem = admission.context_refusal(stored.context)
        if problem:
            return problem
        setting = admission.run_config_refusal(flow_run.run_config, get_flow_image(flow_run))
        if setting:
            return (
                f"this agent does not start {setting}, from "
                f"{admission.run_config_source(stored)}: a run config may set only "
                f"labels (and the UI's logging level)"
            )
        package, deployment = self.package_of(flow_run)
        return per_flow.missing_secret(deployment, per_flow.read_secrets(self.secrets_file), package)

    def _safe_write_run_log(self, flow_run, message, level) -> None:
        """Prefect's own raises when the API does not take the line, and `_deploy_flow_run`
        then marks a run Failed whose container it has started (prefect 0.15.9
        agent/agent.py 393-424): under load, a 15 s timeout on "Submitted for execution"
        ended a run that was running fine. A lost line costs the agent's log a warning."""
        try:
            super()._safe_write_run_log(flow_run, message, level)
        except Exception as exc:
            self.logger.warning(f"Flow run {flow_run.id}: the API took no log line ({exc}): {message}")

    def _get_run_config(self, flow_run, run_config_cls):
        """The run's run config (admitted: no host config of its own) with the flow's limits."""
        run_config = super()._get_run_config(flow_run, run_config_cls)
        run_config.host_config = per_flow.host_config(self.package_of(flow_run)[1])
        return run_config

    def populate_env_vars(self, flow_run, image, run_config=None) -> dict:
        env = super().populate_env_vars(flow_run, image, run_config=run_config)
        deployment = self.package_of(flow_run)[1]
        secrets = per_flow.read_secrets(self.secrets_file) if deployment.secrets else {}
        env.update(per_flow.flow_env(deployment, secrets))
        return env

    def _get_flow_run_metadata(self, flow_run_ids):
        """The runs due, less those of a flow already running MAX_RUNNING runs: they stay
        Scheduled, told why once, and are taken at a later poll once one has ended. Counted
        on the server, plus what this agent is deploying; two agents polling at the same
        moment may each start one (Server has no lock to take)."""
        admitted, started = [], Counter(self.deploying.values())
        for flow_run in super()._get_flow_run_metadata(flow_run_ids):
            script = script_of(flow_run.flow)
            if script in self.flows and flow_run.state == "Scheduled":
                package, deployment = self.flows[script]
                limit = deployment.max_running
                if limit and self.running(flow_run.flow.name, deployment) + started[script] >= limit:
                    if flow_run.id not in self.told_to_wait:
                        self.told_to_wait.add(flow_run.id)
                        self._safe_write_run_log(
                            flow_run,
                            per_flow.waiting_message(flow_run.flow.name, package, deployment),
                            "INFO",
                        )
                    continue
                started[script] += 1
                self.deploying[flow_run.id] = script
            admitted.append(flow_run)
        return admitted

    def running(self, flow_name, deployment) -> int:
        """Runs of the flow the server has as Submitted or Running, but those this agent is
        deploying (counted apart: they may still read as Scheduled)."""
        where = {
            "state": {"_in": ["Submitted", "Running"]},
            "flow": {"name": {"_eq": flow_name}, "project": {"name": {"_eq": deployment.project}}},
        }
        runs = self.client.graphql({"query": {with_args("flow_run", {"where": where}): {"id"}}})
        return len({run.id for run in runs.data.flow_run} - set(self.deploying))

    def _deploy_flow_run_completed_callback(self, future, flow_run_id) -> None:
        super()._deploy_flow_run_completed_callback(future, flow_run_id)
        self.deploying.pop(flow_run_id, None)

    def on_startup(self) -> None:
        super().on_startup()
        threading.Thread(target=self.tell_out_of_memory, name="out-of-memory", daemon=True).start()

    def tell_out_of_memory(self) -> None:
        """A flow container the kernel killed for its memory limit: the run ends Failed
        saying so (its alert fires), where it would wait for the server's zombie killer.
        Docker's events are watched again after their stream ends (the engine restarted)."""
        while True:
            try:
                events = self._get_docker_client().events(
                    decode=True,
                    filters={"type": "container", "event": "oom", "label": "io.prefect.flow-run-id"},
                )
                for event in events:
                    labels = event.get("Actor", {}).get("Attributes", {})
                    try:
                        self.fail_out_of_memory(
                            labels["io.prefect.flow-run-id"], labels.get("io.prefect.flow-id")
                        )
                    except Exception:  # the API is down: the zombie killer still ends the run
                        self.logger.error("Could not fail an out-of-memory run", exc_info=True)
            except Exception:
                self.logger.warning(
                    "Lost Docker's events: out-of-memory kills are told again in 10 s", exc_info=True
                )
            time.sleep(10)

    def fail_out_of_memory(self, run_id, flow_id) -> None:
        flow = self.client.graphql(
            {"query": {with_args("flow_by_pk", {"id": flow_id}): {"storage"}}}
        ).data.flow_by_pk
        package, deployment = self.flows[script_of(flow)]
        message = per_flow.out_of_memory_message(package, deployment)
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
        flows = {
            package.script_in_image: (package.name, package.deployment(settings))
            for package in (packages() if catalog is None else catalog)
        }
        per_flow.read_secrets(settings.secrets_file)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    env = {"REPORTS_DIR": FLOW_REPORTS_DIR}
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
