"""When the "Users report" flow runs on its own."""
import pendulum
from pendulum.tz.zoneinfo.exceptions import ZoneinfoError
from prefect.schedules import Schedule
from prefect.schedules.clocks import CronClock

from flows.users_report.settings import StackSettings


def build_schedule(settings: StackSettings) -> Schedule:
    """A cron schedule in the office's timezone, its runs with `n_users` of the settings.

    Raises ValueError saying what is wrong with a bad cron or timezone.
    """
    try:
        timezone = pendulum.timezone(settings.schedule_tz)
    except (ValueError, ZoneinfoError):
        raise ValueError(
            f"SCHEDULE_TZ={settings.schedule_tz!r} is not a timezone: use an IANA name "
            "such as America/Sao_Paulo or UTC"
        ) from None
    try:
        clock = CronClock(
            settings.schedule_cron,
            # A fixed start keeps the registered flow, and so its version, the same
            # each time it is registered; its timezone is the one cron runs in.
            start_date=pendulum.datetime(2021, 1, 1, tz=timezone),
            parameter_defaults={"n_users": settings.schedule_n_users},
        )
    except ValueError:
        raise ValueError(
            f"SCHEDULE_CRON={settings.schedule_cron!r} is not a cron expression: use five "
            "fields, minute hour day month weekday, such as '0 6 * * *'"
        ) from None
    return Schedule(clocks=[clock])
