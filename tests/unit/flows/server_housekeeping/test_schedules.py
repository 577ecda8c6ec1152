import pendulum

from flows.server_housekeeping.schedules import schedule


def test_daily_at_three_in_sao_paulo():
    after = pendulum.datetime(2026, 6, 1, 12, tz="America/Sao_Paulo")
    first, second = schedule.next(2, after=after)
    assert (first.hour, first.minute) == (3, 0) and first.timezone_name == "America/Sao_Paulo"
    assert second - first == pendulum.duration(days=1)
