import pytest

from flows.users_report.schedules import build_schedule


def test_the_default_schedule_is_daily_at_six_in_sao_paulo_with_ten_users(monkeypatch):
    for name in ("SCHEDULE_CRON", "SCHEDULE_TZ", "SCHEDULE_N_USERS"):
        monkeypatch.delenv(name, raising=False)
    (clock,) = build_schedule().clocks
    assert clock.cron == "0 6 * * *" and clock.start_date.timezone_name == "America/Sao_Paulo"
    assert clock.parameter_defaults == {"n_users": 10}


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("SCHEDULE_CRON", "every day", "SCHEDULE_CRON='every day' is not a cron expression"),
        ("SCHEDULE_TZ", "Mars/Olympus", "SCHEDULE_TZ='Mars/Olympus' is not a timezone"),
        ("SCHEDULE_N_USERS", "0", "SCHEDULE_N_USERS='0' is not allowed"),
    ],
)
def test_a_bad_schedule_setting_is_one_line(monkeypatch, name, value, words):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"^{words}"):
        build_schedule()
