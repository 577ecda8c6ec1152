import pytest

from flows.shared.settings import SettingsError
from stack.settings import load_stack_settings


def test_defaults_are_the_stacks(monkeypatch):
    for name in ("PREFECT_PROJECT", "REGISTRY_URL", "NOTIFY_ON", "FLOW_CPU_LIMIT", "AGENT_IMAGE_ALLOWLIST"):
        monkeypatch.delenv(name, raising=False)
    settings = load_stack_settings()
    assert settings.project == "Data office" and settings.notify_on == "failed"
    assert settings.flow_cpu_limit == 2.0 and settings.extra_allowed_images == ()
    assert settings.flow_repository == "users-report-flow"


def test_the_registry_prefixes_the_flow_repository_and_the_allowlist_splits(monkeypatch):
    monkeypatch.setenv("REGISTRY_URL", "registry.local:5000/")
    monkeypatch.setenv("AGENT_IMAGE_ALLOWLIST", " a/b , ,c ")
    settings = load_stack_settings()
    assert settings.flow_repository == "registry.local:5000/users-report-flow"
    assert settings.extra_allowed_images == ("a/b", "c")


@pytest.mark.parametrize(
    "name, value, line",
    [
        ("NOTIFY_ON", "never", "NOTIFY_ON='never' is not allowed: use failed or all"),
        ("APOLLO_WAIT_SECONDS", "0", "APOLLO_WAIT_SECONDS='0' is not allowed: use a number from 1 to 3,600"),
        ("FLOW_CPU_LIMIT", "lots", "FLOW_CPU_LIMIT='lots' is not allowed: use a number from 0 to 1,024"),
    ],
)
def test_a_bad_value_is_one_line_naming_it(monkeypatch, name, value, line):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_stack_settings()
    assert str(error.value) == line


def test_reports_are_opened_beside_the_ui(monkeypatch):
    monkeypatch.delenv("UI_PUBLIC_URL", raising=False)
    monkeypatch.setenv("UI_PORT", "9090")
    assert load_stack_settings().reports_url == "http://localhost:9090/reports/"
    monkeypatch.setenv("UI_PUBLIC_URL", "https://prefect.office.example:8443/")
    assert load_stack_settings().reports_url == "https://prefect.office.example:8443/reports/"
