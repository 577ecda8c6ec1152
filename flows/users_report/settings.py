"""The settings of the "Users report" pipeline, read from the environment in this one place.

Each has a safe default; `.env.example` and docs/settings.md document them. A bad value stops
the program at start with one line naming the variable, the value and what is allowed.
"""

from dataclasses import dataclass
from pathlib import Path

from flows.shared.settings import MAX_KEEP_DAYS, number, text, url

# The randomuser API serves 1 to this many users per request (outside that range: 1 user),
# and pages up to API_MAX_PAGE (later ones become page 1, the same users again).
API_MAX_PAGE_SIZE = 5000
API_MAX_PAGE = 10_000
MAX_USERS = 1_000_000


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
    reports_url: str


def load_settings() -> Settings:
    return Settings(
        randomuser_url=url("RANDOMUSER_URL", "https://randomuser.me/api/"),
        reports_dir=Path(text("REPORTS_DIR", "reports")),
        http_timeout=number("HTTP_TIMEOUT", 60.0, float, 0.01, 3600),
        http_retries=number("HTTP_RETRIES", 3, int, 0, 20),
        # Prefect 0.15.9 waits in-process only for a retry due within 10 minutes; a later
        # one leaves the run Running on the server until its recovery service steps in.
        http_retry_delay=number("HTTP_RETRY_DELAY", 10.0, float, 0, 600),
        page_size=number("PAGE_SIZE", API_MAX_PAGE_SIZE, int, 1, API_MAX_PAGE_SIZE),
        download_workers=number("DOWNLOAD_WORKERS", 4, int, 1, 32),
        # randomuser.me's own limit per client address (0: an API without one).
        users_api_limit=number("USERS_API_LIMIT", 20_000, int, 0, 10_000_000),
        users_api_window=number("USERS_API_WINDOW", 300.0, float, 1, 3600),
        # Enough for 1,000,000 users at the real limit (4 h 5 min of waiting) with room.
        users_api_max_wait=number("USERS_API_MAX_WAIT", 6 * 3600.0, float, 0, 7 * 24 * 3600),
        # An existing Dask scheduler (tcp://host:8786) to spread a run's tasks over; empty:
        # threads in the flow run's own process.
        dask_address=text("DASK_ADDRESS", ""),
        dask_worker_wait=number("DASK_WORKER_WAIT", 60.0, float, 1, 3600),
        # Per-run reports older than this many days go after each successful run (0: keep).
        reports_keep_days=number("REPORTS_KEEP_DAYS", 30, int, 0, MAX_KEEP_DAYS),
        # Where people open the reports folder (the agent sets it: the front door's
        # /reports/); each run's artifact links its report there. Empty: no link.
        reports_url=url("REPORTS_URL", ""),
    )
