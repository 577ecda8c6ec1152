import pytest

from flows.shared.settings import SettingsError
from flows.users_report import deployment


def test_its_runs_get_the_pipelines_settings():
    assert {"RANDOMUSER_URL", "PAGE_SIZE", "HTTP_RETRIES", "REPORTS_KEEP_DAYS"} <= set(deployment.ENV)
    assert "SCHEDULE_CRON" not in deployment.ENV  # the register step's, not a run's


def test_a_bad_pipeline_setting_stops_the_agent_at_start(monkeypatch):
    monkeypatch.setenv("HTTP_TIMEOUT", "soon")
    with pytest.raises(SettingsError, match="^HTTP_TIMEOUT='soon'"):
        deployment.check_settings()
