import pytest

from flows.server_housekeeping.settings import load_settings
from flows.shared.settings import SettingsError


def test_defaults_keep_a_month_end_a_day_and_call_an_hour_late(monkeypatch):
    for name in ("SERVER_KEEP_DAYS", "RUN_MAX_HOURS", "LATE_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.keep_days, settings.run_max_hours, settings.late_minutes) == (30.0, 24.0, 60.0)


def test_a_bad_value_is_one_line(monkeypatch):
    monkeypatch.setenv("LATE_MINUTES", "never")
    with pytest.raises(
        SettingsError, match="^LATE_MINUTES='never' is not allowed: use a number from 1 to 10,080$"
    ):
        load_settings()
