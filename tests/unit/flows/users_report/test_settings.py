import pytest

from flows.shared.settings import SettingsError
from flows.users_report.settings import API_MAX_PAGE_SIZE, load_settings


def test_the_defaults_are_the_real_apis(monkeypatch):
    for name in ("RANDOMUSER_URL", "PAGE_SIZE", "USERS_API_LIMIT", "HTTP_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.randomuser_url == "https://randomuser.me/api/"
    assert settings.page_size == API_MAX_PAGE_SIZE == 5000 and settings.users_api_limit == 20_000
    assert settings.http_retries == 3


@pytest.mark.parametrize(
    "name, value", [("PAGE_SIZE", "5001"), ("HTTP_RETRY_DELAY", "601"), ("DOWNLOAD_WORKERS", "0")]
)
def test_values_past_what_the_api_or_prefect_allow_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^{name}='{value}' is not allowed"):
        load_settings()
