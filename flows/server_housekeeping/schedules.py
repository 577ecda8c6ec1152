"""When "Server housekeeping" runs: daily at 03:00 in São Paulo, when the office sleeps."""

import pendulum
from prefect.schedules import Schedule
from prefect.schedules.clocks import CronClock

# A fixed start keeps the registered flow, and so its version, the same on every register.
schedule = Schedule(
    clocks=[CronClock("0 3 * * *", start_date=pendulum.datetime(2021, 1, 1, tz="America/Sao_Paulo"))]
)
