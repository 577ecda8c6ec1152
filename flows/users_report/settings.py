"""Every setting of the pipeline, read from the environment in this one place.

Each has a safe default; `.env.example` and the README document them. A bad value stops
the program at start with one line naming the variable, the value and what is allowed.
"""
import os
from dataclasses import dataclass
from pathlib import Path

# The randomuser API serves at most this many users per request (more are silently capped).
API_MAX_PAGE_SIZE = 5000
MAX_USERS = 1_000_000


class SettingsError(ValueError):
    """A setting in the environment has a value that is not allowed."""


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


@dataclass(frozen=True)
class Settings:
    randomuser_url: str
    reports_dir: Path
    http_timeout: float
    http_retries: int
    http_retry_delay: float
    page_size: int
    download_workers: int


def load_settings() -> Settings:
    return Settings(
        randomuser_url=os.environ.get("RANDOMUSER_URL", "").strip()
        or "https://randomuser.me/api/",
        reports_dir=Path(os.environ.get("REPORTS_DIR", "").strip() or "reports"),
        http_timeout=_number("HTTP_TIMEOUT", 60.0, float, 0.01, 3600),
        http_retries=_number("HTTP_RETRIES", 3, int, 0, 20),
        http_retry_delay=_number("HTTP_RETRY_DELAY", 10.0, float, 0, 3600),
        page_size=_number("PAGE_SIZE", API_MAX_PAGE_SIZE, int, 1, API_MAX_PAGE_SIZE),
        download_workers=_number("DOWNLOAD_WORKERS", 4, int, 1, 32),
    )
