"""The settings of "Server housekeeping", read from the run's environment when it starts.

The agent hands them to this flow's containers (deployment.py); a bad value stops the
agent at start, and a run, with one line naming the variable and what is allowed.
"""

from dataclasses import dataclass

from flows.shared.settings import MAX_KEEP_DAYS, number


@dataclass(frozen=True)
class Settings:
    keep_days: float
    run_max_hours: float
    late_minutes: float


def load_settings() -> Settings:
    return Settings(
        # Ended runs older than this go, with their task runs, states, logs and artifacts
        # (0 keeps them all).
        keep_days=number("SERVER_KEEP_DAYS", 30.0, float, 0, MAX_KEEP_DAYS),
        # A run Submitted or Running longer than this is ended as Failed. The longest Users
        # report run waits at most USERS_API_MAX_WAIT (6 h) for the users API's limit.
        run_max_hours=number("RUN_MAX_HOURS", 24.0, float, 0.01, 24 * 365),
        # A scheduled run this late means no agent takes its labels: the housekeeping fails.
        late_minutes=number("LATE_MINUTES", 60.0, float, 1, 7 * 24 * 60),
    )
