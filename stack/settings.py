"""The stack's settings (register.py and the agent), read from the environment in this one
place: a bad value stops the program with one line naming it and what is allowed."""

from dataclasses import dataclass

from flows.shared.settings import choice, number, text, url

# Where flow containers keep reports; the agent binds HOST_REPORTS_DIR of the Docker host here.
FLOW_REPORTS_DIR = "/reports"
# Where the agent's container finds the flows' secrets (FLOW_SECRETS_FILE on its host).
SECRETS_IN_AGENT = "/etc/users-report/flow-secrets.env"


@dataclass(frozen=True)
class StackSettings:
    project: str
    agent_label: str
    project_image: str
    flow_image: str
    registry_url: str
    network: str
    host_reports_dir: str
    apollo_wait_seconds: float
    notify_webhook_url: str
    notify_on: str
    extra_allowed_images: tuple
    host_ca_bundle: str
    flow_memory_limit: str
    flow_cpu_limit: float
    secrets_file: str
    ui_address: str

    @property
    def reports_url(self) -> str:
        """Where people open the reports folder: the front door's /reports/ (proxy/)."""
        return f"{self.ui_address.rstrip('/')}/reports/"

    @property
    def flow_repository(self) -> str:
        """The flow images' name without a tag, as Prefect's Docker storage names it."""
        registry = self.registry_url.rstrip("/")
        return f"{registry}/{self.flow_image}" if registry else self.flow_image


def load_stack_settings() -> StackSettings:
    return StackSettings(
        # Flows go into this project unless their package names another (deployment.py).
        project=text("PREFECT_PROJECT", "Data office"),
        agent_label=text("AGENT_LABEL", "users-report"),
        project_image=text("PROJECT_IMAGE", "users-report:latest"),
        # One repository for every flow's image; each flow's tag is its version.
        flow_image=text("FLOW_IMAGE", "users-report-flow"),
        registry_url=text("REGISTRY_URL", ""),
        network=text("PREFECT_NETWORK", "prefect-server"),
        host_reports_dir=text("HOST_REPORTS_DIR", ""),
        apollo_wait_seconds=number("APOLLO_WAIT_SECONDS", 300.0, float, 1, 3600),
        # A Slack-format incoming webhook the server posts to when a run ends (empty: off).
        notify_webhook_url=url("NOTIFY_WEBHOOK_URL", ""),
        notify_on=choice("NOTIFY_ON", "failed", ("failed", "all")),
        # Images (names without tags) agents may start besides the flow images.
        extra_allowed_images=tuple(
            filter(None, map(str.strip, text("AGENT_IMAGE_ALLOWLIST", "").split(",")))
        ),
        # A remote agent's CA bundle on its Docker host (`make agent` makes it from
        # certs/ca.crt), trusted by the agent and its flow runs; empty: the public CAs only.
        host_ca_bundle=text("HOST_CA_BUNDLE", ""),
        # Each flow container's limits, unless its package sets its own (deployment.py).
        flow_memory_limit=text("FLOW_MEMORY_LIMIT", "2g"),
        flow_cpu_limit=number("FLOW_CPU_LIMIT", 2.0, float, 0, 1024),
        secrets_file=text("FLOW_SECRETS_FILE", SECRETS_IN_AGENT),
        # The UI's address as people open it: UI_PUBLIC_URL, else the loopback port's.
        ui_address=url("UI_PUBLIC_URL", "") or f"http://localhost:{number('UI_PORT', 8080, int, 1, 65535)}",
    )
