"""What the agent deploys: only the flows this stack registered, as it registered them.

Whoever reaches the API can register a flow, set a flow group's run config or start a run
with a run config and a context of their own; Prefect 0.15.9's DockerAgent would then hand
them to the host's Docker engine. Read in prefect 0.15.9 (src/prefect/...):

- agent/docker/agent.py 427-429 merges `run_config.host_config` into the container's host
  config (binds, privileged, devices), 562-566 `run_config.env` into its environment
  (environment variables alone run code: PYTHONWARNINGS imports any module);
- utilities/agent.py get_flow_image: the image is the Docker storage's, else the run
  config's; cli/execute.py flow_run loads the flow by `storage.get_flow`: Docker storage
  executes the script at `storage.flows[name]` (storage/docker.py get_flow), Webhook or
  GitHub storage download code, and every storage's `secrets` are fetched first;
- engine/cloud/flow_runner.py 382: the run's `context` is merged into prefect.context;
- a flow with a legacy `environment` runs `environment.execute` instead of the flow runner.

The server fills a run's run config from the run's own, else the flow group's, else the
flow's (PrefectHQ/server 0f74a9a api/runs.py 155-160): the agent sees the result only.

A storage and a run config are checked as Prefect's own serializers read them (the agent's
_get_run_config, agent/agent.py 775, and the container's storage, cli/execute.py), not as
the JSON reads: marshmallow turns "false" into False and drops fields it does not know, so
what is checked is what the container gets.
"""

from typing import Iterable, NamedTuple, Optional

from marshmallow import ValidationError
from prefect.serialization.run_config import RunConfigSchema
from prefect.serialization.storage import StorageSchema
from prefect.storage import Docker

# What the UI's Run page puts into a run's env: its logging level (PrefectHQ/ui 2092e92
# src/pages/Flow/Run.vue overrideLoggingEnvironmentVariable).
UI_LOG_LEVEL = "PREFECT__LOGGING__LEVEL"
LOG_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# Run config fields that say nothing about the container.
INERT_FIELDS = {"type", "__version__", "labels"}


class Deployed(NamedTuple):
    """What the agent knows of one flow package from its own image: the flow it registers,
    the project it goes into and its current version (the flow image's tag)."""

    package: str
    deployment: object  # stack.catalog.Deployment
    flow_name: str
    version: str


def script_of(flow: dict) -> Optional[str]:
    """The script a registered flow's Docker storage loads, if it names one."""
    return next(iter(((flow.get("storage") or {}).get("flows") or {}).values()), None)


def read_storage(flow: dict) -> Docker:
    """The flow's storage as its container reads it (after flow_refusal let it through)."""
    return StorageSchema().load(flow.get("storage") or {})


def repository(image: str) -> str:
    """An image's name without its tag or digest: `host:5000/flow:abc` -> `host:5000/flow`."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def flow_refusal(flow: dict, allowed_images: Iterable[str], allowed_scripts: Iterable[str]) -> Optional[str]:
    """Why a registered flow must not run here (its environment, storage or image), if so."""
    environment = flow.get("environment")
    if environment is not None:
        return (
            f"this agent does not start flows with a legacy environment "
            f"({environment.get('type')}): only flows registered with a run config (register.py)"
        )
    storage = flow.get("storage") or {}
    if storage.get("type") != "Docker":  # the field Prefect's StorageSchema picks a class by
        return (
            f"this agent does not start flows kept in {storage.get('type')} storage: "
            f"only Prefect's Docker storage of this stack's images (register.py)"
        )
    try:
        docker = read_storage(flow)
    except ValidationError as exc:
        return f"this agent does not start flows whose storage Prefect cannot read: {exc.messages}"
    scripts = sorted(allowed_scripts)
    locations = sorted(set((docker.flows or {}).values()))
    if not docker.stored_as_script or not locations or set(locations) - set(scripts):
        kept = ", ".join(locations) or "nothing"
        form = "the script" if docker.stored_as_script else "the pickled flow"
        return (
            f"this agent does not start {form} {kept}: only the flow scripts this stack puts in "
            f"its image ({', '.join(scripts)}), stored as scripts (register.py)"
        )
    if docker.secrets:
        return (
            f"this agent does not start flows whose storage asks for secrets "
            f"({', '.join(docker.secrets)}): the stack's flows take none from storage"
        )
    if not docker.image_name or not docker.image_tag:
        return "this agent does not start flows whose Docker storage names no image and tag (register.py)"
    image = docker.name  # as get_flow_image names it
    allowed = sorted(allowed_images)
    if repository(image) not in allowed:
        return (
            f"this agent does not start the image {image}: it starts only {', '.join(allowed)} "
            f"(FLOW_IMAGE, REGISTRY_URL, AGENT_IMAGE_ALLOWLIST)"
        )
    return None


def run_config_refusal(run_config: Optional[dict], image: str) -> Optional[str]:
    """What in a run's run config would change the container, if anything: a run config may
    set labels, the flow's own image, and the UI's logging level; nothing else."""
    if not run_config:
        return None  # the agent's default DockerRun()
    if run_config.get("type") not in ("DockerRun", "UniversalRun"):  # as RunConfigSchema picks
        return f"a {run_config.get('type')} run config: only DockerRun"
    schema = RunConfigSchema()
    try:
        read = schema.dump(schema.load(run_config))
    except ValidationError as exc:
        return f"a run config Prefect cannot read ({exc.messages})"
    changed = []
    for field, value in sorted(read.items()):
        if field in INERT_FIELDS or not value:
            continue
        if field == "image" and value == image:
            continue
        if (
            field == "env"
            and isinstance(value, dict)
            and set(value) == {UI_LOG_LEVEL}
            and str(value[UI_LOG_LEVEL]).upper() in LOG_LEVELS
        ):
            continue
        keys = f" ({', '.join(sorted(map(str, value)))})" if isinstance(value, dict) else f" ({value})"
        changed.append(f"{field}{keys}")
    return f"a run config that sets {'; '.join(changed)}" if changed else None


def context_refusal(context) -> Optional[str]:
    """A run's context overrides prefect.context in the flow run (secrets, config, logger):
    none, or the UI's empty one, and nothing else of any JSON type."""
    if context is None or context == {}:
        return None
    what = (
        ", ".join(sorted(map(str, context)))
        if isinstance(context, dict)
        else f"a JSON {type(context).__name__}"
    )
    return f"this agent does not start runs with a context ({what}): the stack's flows take inputs (parameters) only"


def run_refusal(flow_run, stored: dict, allowed_images, deployed: dict, image: str) -> Optional[str]:
    """Why a run must not be deployed, if so: its flow as registered and as its package
    declares it (`deployed`: script -> Deployed), its context, and its run config (as the
    agent got it) against what the server stored (`stored`: the run's context, its flow's
    project and the run configs of the run, its flow and its flow group)."""
    problem = flow_refusal(flow_run.flow, allowed_images, set(deployed))
    if problem:
        return problem
    stored_flow = stored.get("flow") or {}
    project = (stored_flow.get("project") or {}).get("name")
    problem = identity_refusal(flow_run.flow, project, deployed[script_of(flow_run.flow)])
    problem = problem or context_refusal(stored.get("context"))
    if problem:
        return problem
    setting = run_config_refusal(flow_run.run_config, image)
    if setting:
        return (
            f"this agent does not start {setting}, from {run_config_source(stored)}: "
            f"a run config may set only labels (and the UI's logging level)"
        )
    return None


def identity_refusal(flow: dict, project: Optional[str], deployed: Deployed) -> Optional[str]:
    """A flow that loads one of our scripts must be that package's flow as `make register`
    registers it: its name, its project, its storage naming that flow only, and its current
    version. A copy registered under another name or project would escape the package's
    limits and take its secrets; an older image tag would run code the stack replaced."""
    storage = read_storage(flow)
    names = sorted(storage.flows or {})
    expected = (
        f'flows/{deployed.package}/flows.py is "{deployed.flow_name}" in the project '
        f'"{deployed.deployment.project}", version {deployed.version} (make register)'
    )
    if names != [deployed.flow_name] or flow.get("name") != deployed.flow_name:
        return f'this agent does not start the flow "{flow.get("name")}" (its storage names {", ".join(names)}): {expected}'
    if project != deployed.deployment.project:
        return f'this agent does not start "{deployed.flow_name}" registered in the project "{project}": {expected}'
    if storage.image_tag != deployed.version:
        return f'this agent does not start "{deployed.flow_name}" of the image tag {storage.image_tag}: {expected}'
    return None


def run_config_source(run: dict) -> str:
    """Where the server took a run's run config from (api/runs.py 155-160)."""
    flow = run.get("flow") or {}
    group = (flow.get("flow_group") or {}).get("run_config")
    if group is not None and run.get("run_config") == group:
        return "the flow group's run config (set_flow_group_run_config)"
    if run.get("run_config") == flow.get("run_config"):
        return "the flow's registered run config"
    return "the run's own run config (create_flow_run)"
