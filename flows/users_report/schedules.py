"""When the "Users report" flow runs on its own: `schedule`, read by register.py.

SCHEDULE_CRON, SCHEDULE_TZ and SCHEDULE_N_USERS come from the register step's environment;
a bad one stops registration with one line saying what is wrong.
"""

import pendulum
from pendulum.tz.zoneinfo.exceptions import ZoneinfoError
from prefect.schedules import Schedule
from prefect.schedules.clocks import CronClock

from flows.shared.settings import number, text
from flows.users_report.settings import MAX_USERS


def build_schedule() -> Schedule:
    """A cron schedule in the office's timezone, its runs with SCHEDULE_N_USERS users."""
    cron = text("SCHEDULE_CRON", "0 6 * * *")
    zone = text("SCHEDULE_TZ", "America/Sao_Paulo")
    n_users = number("SCHEDULE_N_USERS", 10, int, 1, MAX_USERS)
    try:
        timezone = pendulum.timezone(zone)
    except (ValueError, ZoneinfoError):
        raise ValueError(
            f"SCHEDULE_TZ={zone!r} is not a timezone: use an IANA name such as America/Sao_Paulo or UTC"
        ) from None
    try:
        clock = CronClock(
            cron,
            # A fixed start keeps the registered flow, and so its version, the same
            # each time it is registered; its timezone is the one cron runs in.
            start_date=pendulum.datetime(2021, 1, 1, tz=timezone),
            parameter_defaults={"n_users": n_users},
        )
    except ValueError:
        raise ValueError(
            f"SCHEDULE_CRON={cron!r} is not a cron expression: use five "
            "fields, minute hour day month weekday, such as '0 6 * * *'"
        ) from None
    return Schedule(clocks=[clock])


schedule = build_schedule()
