"""What the agent applies to each flow's runs from the stack's side, as the flow's package
declares it (stack/catalog.py): its limits, its secrets and its environment. Never from a
run's own run config (agent/admission.py refuses those)."""

import os
import re
from typing import Dict, Optional

from stack.catalog import Deployment

LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
# Prefect 1 reads local secrets from here (configuration.py keeps the names' case), and
# PrefectSecret("NAME") finds them in prefect.context.secrets on a server backend.
SECRET_VARIABLE = "PREFECT__CONTEXT__SECRETS__"


class SecretsError(ValueError):
    """FLOW_SECRETS_FILE cannot be read, or a line of it is not NAME=value."""


def read_secrets(path: str) -> Dict[str, str]:
    """NAME=value lines (# comments, blank lines); the value is everything after the first
    `=`, as written. Read at each deployment, so an edit applies without a restart."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SecretsError(f"the flows' secrets file {path} cannot be read ({exc.strerror})") from None
    secrets = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = LINE.match(line)
        if not match:  # never the line itself: it may hold a value
            raise SecretsError(f"line {number} of the flows' secrets file is not NAME=value")
        secrets[match.group(1)] = match.group(2)
    return secrets


def missing_secret(deployment: Deployment, secrets: Dict[str, str], package: str) -> Optional[str]:
    absent = [name for name in deployment.secrets if name not in secrets]
    if absent:
        return (
            f"the secret {', '.join(absent)} of flows/{package} is not in the flows' secrets "
            f"file (FLOW_SECRETS_FILE, flow-secrets.env beside .env): add NAME=value there"
        )
    return None


def flow_env(deployment: Deployment, secrets: Dict[str, str], environ=os.environ) -> dict:
    """The variables this flow's containers get besides Prefect's own: the agent's settings
    it names (ENV) and the secrets it names (SECRETS), no others."""
    env = {name: environ[name] for name in deployment.env if environ.get(name)}
    env.update({SECRET_VARIABLE + name: secrets[name] for name in deployment.secrets})
    return env


def host_config(deployment: Deployment) -> dict:
    """Docker's memory and CPU limits for the flow's containers. No swap beyond the memory
    limit, so that a run over it is killed (and told) rather than slowed to a crawl."""
    limits = {"mem_limit": deployment.memory_bytes, "memswap_limit": deployment.memory_bytes}
    if deployment.cpu_limit:
        limits["nano_cpus"] = int(deployment.cpu_limit * 1e9)
    return limits


def waiting_message(flow_name: str, package: str, deployment: Deployment) -> str:
    return (
        f"Waiting: {flow_name} runs at most {deployment.max_running} at once "
        f"(MAX_RUNNING in flows/{package}/deployment.py); this run starts when one ends"
    )


def out_of_memory_message(package: str, deployment: Deployment) -> str:
    return (
        f"Killed: the run's container went over its memory limit of {deployment.memory_limit} "
        f"(MEMORY_LIMIT in flows/{package}/deployment.py, or FLOW_MEMORY_LIMIT in .env for "
        f"every flow, raises it)"
    )
