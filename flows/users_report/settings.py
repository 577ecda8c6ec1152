"""Every setting of the pipeline and its stack, read from the environment in this one place.

Each has a safe default; `.env.example` and the README document them. A bad value stops
the program at start with one line naming the variable, the value and what is allowed.
"""
import os
from dataclasses import dataclass
from pathlib import Path

# Where flow containers keep reports; the agent binds HOST_REPORTS_DIR of the Docker host here.
FLOW_REPORTS_DIR = "/reports"
# The flow's script inside the project image, which Docker storage loads at run time.
FLOW_SCRIPT_IN_IMAGE = "/app/flows/users_report/flows.py"
# The pipeline's settings, handed by the agent to every flow container it starts.
PIPELINE_VARIABLES = (
    "RANDOMUSER_URL", "HTTP_TIMEOUT", "HTTP_RETRIES", "HTTP_RETRY_DELAY", "PAGE_SIZE",
    "DOWNLOAD_WORKERS", "USERS_API_LIMIT", "USERS_API_WINDOW", "USERS_API_MAX_WAIT",
    "DASK_ADDRESS", "DASK_WORKER_WAIT", "REPORTS_KEEP_DAYS",
)
# The randomuser API serves 1 to this many users per request (outside that range: 1 user),
# and pages up to API_MAX_PAGE (later ones become page 1, the same users again).
API_MAX_PAGE_SIZE = 5000
API_MAX_PAGE = 10_000
MAX_USERS = 1_000_000


class SettingsError(ValueError):
    """A setting in the environment has a value that is not allowed."""


def _text(name, default):
    return os.environ.get(name, "").strip() or default


def _number(name, default, kind, low, high):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(
            f"{name}={raw!r} is not allowed: use "
            f"{'a whole number' if kind is int else 'a number'} from {low:g} to {high:g}"
        )
    return value


def _choice(name, default, allowed):
    value = _text(name, default).lower()
    if value not in allowed:
        raise SettingsError(f"{name}={os.environ[name]!r} is not allowed: use {' or '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Settings:
    randomuser_url: str
    reports_dir: Path
    http_timeout: float
    http_retries: int
    http_retry_delay: float
    page_size: int
    download_workers: int
    users_api_limit: int
    users_api_window: float
    users_api_max_wait: float
    dask_address: str
    dask_worker_wait: float
    reports_keep_days: int


def load_settings() -> Settings:
    return Settings(
        randomuser_url=_text("RANDOMUSER_URL", "https://randomuser.me/api/"),
        reports_dir=Path(_text("REPORTS_DIR", "reports")),
        http_timeout=_number("HTTP_TIMEOUT", 60.0, float, 0.01, 3600),
        http_retries=_number("HTTP_RETRIES", 3, int, 0, 20),
        # Prefect 0.15.9 waits in-process only for a retry due within 10 minutes; a later
        # one leaves the run Running on the server until its recovery service steps in.
        http_retry_delay=_number("HTTP_RETRY_DELAY", 10.0, float, 0, 600),
        page_size=_number("PAGE_SIZE", API_MAX_PAGE_SIZE, int, 1, API_MAX_PAGE_SIZE),
        download_workers=_number("DOWNLOAD_WORKERS", 4, int, 1, 32),
        # randomuser.me's own limit per client address (0: an API without one).
        users_api_limit=_number("USERS_API_LIMIT", 20_000, int, 0, 10_000_000),
        users_api_window=_number("USERS_API_WINDOW", 300.0, float, 1, 3600),
        # Enough for 1,000,000 users at the real limit (4 h 5 min of waiting) with room.
        users_api_max_wait=_number("USERS_API_MAX_WAIT", 6 * 3600.0, float, 0, 7 * 24 * 3600),
        # An existing Dask scheduler (tcp://host:8786) to spread a run's tasks over; empty:
        # threads in the flow run's own process.
        dask_address=_text("DASK_ADDRESS", ""),
        dask_worker_wait=_number("DASK_WORKER_WAIT", 60.0, float, 1, 3600),
        # Per-run reports older than this many days go after each successful run (0: keep).
        reports_keep_days=_number("REPORTS_KEEP_DAYS", 30, int, 0, 36_500),
    )


@dataclass(frozen=True)
class StackSettings:
    """How the flow is deployed: read by register.py and the agent's start-up."""

    project: str
    agent_label: str
    project_image: str
    flow_image: str
    registry_url: str
    schedule_cron: str
    schedule_tz: str
    schedule_n_users: int
    network: str
    host_reports_dir: str
    apollo_wait_seconds: float
    notify_webhook_url: str
    notify_on: str
    extra_allowed_images: tuple
    host_ca_bundle: str

    @property
    def flow_repository(self) -> str:
        """The flow image's name without its tag, as Prefect's Docker storage names it."""
        registry = self.registry_url.rstrip("/")
        return f"{registry}/{self.flow_image}" if registry else self.flow_image


def load_stack_settings() -> StackSettings:
    return StackSettings(
        project=_text("PREFECT_PROJECT", "Data office"),
        agent_label=_text("AGENT_LABEL", "users-report"),
        project_image=_text("PROJECT_IMAGE", "users-report:latest"),
        flow_image=_text("FLOW_IMAGE", "users-report-flow"),
        registry_url=_text("REGISTRY_URL", ""),
        schedule_cron=_text("SCHEDULE_CRON", "0 6 * * *"),
        schedule_tz=_text("SCHEDULE_TZ", "America/Sao_Paulo"),
        schedule_n_users=_number("SCHEDULE_N_USERS", 10, int, 1, MAX_USERS),
        network=_text("PREFECT_NETWORK", "prefect-server"),
        host_reports_dir=_text("HOST_REPORTS_DIR", ""),
        apollo_wait_seconds=_number("APOLLO_WAIT_SECONDS", 300.0, float, 1, 3600),
        # A Slack-format incoming webhook the server posts to when a run ends (empty: off).
        notify_webhook_url=_text("NOTIFY_WEBHOOK_URL", ""),
        notify_on=_choice("NOTIFY_ON", "failed", ("failed", "all")),
        # Images (names without tags) agents may start besides the flow image.
        extra_allowed_images=tuple(filter(None, map(str.strip, _text("AGENT_IMAGE_ALLOWLIST", "").split(",")))),
        # A remote agent's CA bundle on its Docker host (`make agent` makes it from
        # certs/ca.crt), trusted by the agent and its flow runs; empty: the public CAs only.
        host_ca_bundle=_text("HOST_CA_BUNDLE", ""),
    )
