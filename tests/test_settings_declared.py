"""Each setting declared once: by the reader that reads it (stack/settings.py, a flow
package's modules), documented in docs/settings.md, and for the stack's own (the ones make
and Compose read) a default in .env.example. A flow's settings reach its runs, the register
step and Dask workers from .env, with no list of them in any compose file."""

import re
import shutil
from pathlib import Path

import yaml

from flows.shared.settings import names_in_file
from scripts.check import COMPOSE_FILES
from stack.catalog import packages
from stack.settings import load_stack_settings
from tests.support import ROOT
from tests.support.compose_config import agent_compose_config, compose_config, short_syntax


def flow_settings(root: Path) -> set:
    """Every setting any module of any flow package reads."""
    return {name for path in (root / "flows").rglob("*.py") for name in names_in_file(path)}


def stack_settings(root: Path) -> set:
    """The stack's own settings: read by stack/settings.py or interpolated by Compose."""
    compose = "".join((root / name).read_text() for name in COMPOSE_FILES)
    return set(names_in_file(root / "stack" / "settings.py")) | set(re.findall(r"\$\{([A-Z_]+)", compose))


def undocumented(root: Path) -> list:
    """What a reader reads, or Compose interpolates, that docs/settings.md or (the stack's
    own) .env.example leaves out, each as one line."""
    documented = (root / "docs" / "settings.md").read_text()
    example = (root / ".env.example").read_text()
    missing = [f"{name} not in docs/settings.md" for name in sorted(flow_settings(root) | stack_settings(root))
               if f"`{name}`" not in documented]  # fmt: skip
    missing += [f"{name} not in .env.example" for name in sorted(stack_settings(root))
                if not re.search(rf"^#? ?{name}=", example, re.M)]  # fmt: skip
    return missing


def test_every_setting_read_is_documented():
    assert {"PREFECT_PROJECT", "HTTP_TIMEOUT", "SCHEDULE_CRON", "LATE_MINUTES"} <= (
        flow_settings(ROOT) | stack_settings(ROOT)
    )
    assert undocumented(ROOT) == []


def test_a_setting_added_to_a_flow_package_without_its_docs_line_is_caught(tmp_path):
    """The one edit a new flow setting takes, in a copy: its reader in settings.py."""
    for name in ("flows", "stack", "docs", "agent", *COMPOSE_FILES, ".env.example"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    settings = tmp_path / "flows" / "server_housekeeping" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            "late_minutes=number(",
            'vacuum_hours=number("VACUUM_HOURS", 24.0, float, 1, 720),\n        late_minutes=number(',
        )
    )
    assert undocumented(tmp_path) == ["VACUUM_HOURS not in docs/settings.md"]


def test_the_example_has_no_secret_of_its_own():
    example = (ROOT / ".env.example").read_text()
    for secret in ("POSTGRES_PASSWORD", "API_TOKEN"):
        assert re.search(rf"^{secret}=$", example, re.M), secret


def test_each_flow_hands_its_runs_every_setting_its_settings_module_reads():
    stack = load_stack_settings()
    for package in packages():
        declared = set(package.deployment(stack).env)
        assert declared == set(names_in_file(package.folder / "settings.py")), package.name


def test_no_compose_file_lists_a_flows_settings():
    compose = "".join((ROOT / name).read_text() for name in COMPOSE_FILES)
    listed = set(re.findall(r"\$\{([A-Z_]+)", compose)) & flow_settings(ROOT)
    assert listed == {"DOWNLOAD_WORKERS"}  # the Dask workers' threads, one per download


def test_the_flows_settings_in_env_reach_the_agent_dask_workers_and_a_remote_agent(compose_version, tmp_path):
    env_file = tmp_path / "stack.env"
    env_file.write_text("# a comment\nPAGE_SIZE=700\nLATE_MINUTES=5\nHTTP_RETRIES=\n")
    services = compose_config(compose_version, STACK_ENV_FILE=str(env_file))["services"]
    for name in ("agent", "dask-worker"):
        environment = services[name]["environment"]
        assert environment["PAGE_SIZE"] == "700" and environment["LATE_MINUTES"] == "5", name
        assert environment["HTTP_RETRIES"] in ("", None), name  # empty: the reader's default
    assert services["dask-worker"]["environment"]["REPORTS_DIR"] == "/reports"
    remote = agent_compose_config(
        compose_version,
        {
            "STACK_ENV_FILE": str(env_file),
            "PREFECT_API_URL": "http://10.0.0.5:4200",
            "REGISTRY_URL": "registry.example:5000",
            "HOST_REPORTS_DIR": "/srv/reports",
        },
    )
    assert remote.returncode == 0, remote.stderr
    (agent,) = short_syntax(yaml.safe_load(remote.stdout))["services"].values()
    assert agent["environment"]["PAGE_SIZE"] == "700"
