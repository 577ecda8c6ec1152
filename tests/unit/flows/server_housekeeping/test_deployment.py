import pytest

from flows.server_housekeeping import deployment
from flows.shared.settings import SettingsError


def test_one_run_at_a_time_with_its_own_settings():
    assert deployment.MAX_RUNNING == 1
    assert {"SERVER_KEEP_DAYS", "RUN_MAX_HOURS", "LATE_MINUTES"} <= set(deployment.ENV)
    assert not {"RANDOMUSER_URL", "PAGE_SIZE"} & set(deployment.ENV)  # another flow's


def test_a_bad_setting_stops_the_agent(monkeypatch):
    monkeypatch.setenv("SERVER_KEEP_DAYS", "-1")
    with pytest.raises(SettingsError, match="^SERVER_KEEP_DAYS='-1'"):
        deployment.check_settings()
