"""Helpers shared by the tasks of the "Users report" flow."""

import re
from pathlib import Path

import prefect

from flows.users_report.settings import MAX_USERS


def log(message: str) -> None:
    """Logs through the run's logger, so the line reaches the Prefect UI as well.

    As the data office's tutorial does it: the leading newline puts the message on lines
    of its own, under Prefect's timestamp and task prefix, so tables stay aligned.
    """
    prefect.context.logger.info(f"\n{message}")


# The flow's inputs: its Parameters in flows.py.
INPUTS = ("n_users",)


def check_inputs(given) -> None:
    """Raises ValueError naming any input the flow does not take. Prefect Server passes an
    undeclared one through, so a misspelt `n_user` would otherwise leave n_users at its
    default and the run would quietly make 10 users."""
    unknown = sorted(set(given) - set(INPUTS))
    if unknown:
        raise ValueError(
            f"unknown input {', '.join(map(repr, unknown))}: the flow takes "
            f"{', '.join(INPUTS)} (a whole number from 1 to {MAX_USERS:,})"
        )


def check_n_users(value) -> int:
    """Returns `n_users` as an int, or raises ValueError saying what is allowed.

    The UI sends parameters as JSON and people type "50", so a string of digits is fine;
    bools, floats and anything else are not (Prefect's Parameter checks no types).
    """
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        number = None
    if number is None or not 1 <= number <= MAX_USERS:
        raise ValueError(
            f"n_users must be a whole number from 1 to {MAX_USERS:,} "
            f"(an integer or a string of digits); got {value!r}"
        )
    return number


# A run's name, as run_name() makes it: the start of its report's and staging folder's names.
RUN_NAME = re.compile(r"users-report-\d{8}T\d{6}Z-[0-9a-f]{8}")


def run_name() -> str:
    """A name unique to this flow run: the run's scheduled start (UTC) and its id.

    Every task of the run derives the same name from the context, so a restarted run
    reuses its own staging folder and report name.
    """
    start = prefect.context.scheduled_start_time.in_timezone("UTC")
    return f"users-report-{start:%Y%m%dT%H%M%SZ}-{prefect.context.flow_run_id[:8]}"


def report_name() -> str:
    """This run's report file, in the reports folder."""
    return f"{run_name()}.csv"


def staging_dir(reports_dir: Path) -> Path:
    """Where this run keeps its downloaded pages until the report is assembled."""
    return reports_dir / f".staging-{run_name()}"


def duration(seconds: float) -> str:
    """Seconds as people read them: "45 s", "3 min 4 s", "4 h 5 min"."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    return f"{seconds} s"
