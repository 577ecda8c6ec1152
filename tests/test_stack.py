"""The deployment, proved with the real tools on the resolved compose file (v2 and v1):
register.py, Prefect's Docker storage and Prefect's DockerAgent (against a fake Docker client).

The official server images cannot be pulled here, so nothing in this file starts one.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pendulum
import pytest
import yaml

from agent.start import CA_BUNDLE
from stack.catalog import FlowPackage
from stack.settings import FLOW_REPORTS_DIR
from tests.support import ROOT, run_module, users_report_entry
from tests.support.compose_config import (
    HOST_REPORTS,
    agent_compose_config,
    short_syntax,
)

FLOW_SCRIPT_IN_IMAGE = FlowPackage("users_report").script_in_image


def dry_run(env: dict) -> subprocess.CompletedProcess:
    return run_module(["register.py", "--dry-run"], env)


def deploy_through_agent(env: dict, registered: dict) -> dict:
    """What DockerAgent, started as agent/start.py starts it, asked of Docker."""
    result = run_module(["-m", "tests.support.agent_probe", "deploy"], env, stdin=json.dumps(registered))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # after the agent's own log lines


def service_env(config: dict, service: str) -> dict:
    """What compose gives the service, plus what the project image sets."""
    image_env = dict(re.findall(r"(PREFECT__BACKEND)=(\S+)", (ROOT / "Dockerfile").read_text()))
    assert image_env == {"PREFECT__BACKEND": "server"}
    return {**image_env, **{k: v or "" for k, v in config["services"][service]["environment"].items()}}


@pytest.fixture(scope="module")
def registered(config):
    result = dry_run(service_env(config, "agent"))
    assert result.returncode == 0, result.stderr
    return users_report_entry(result.stdout)


def test_agent_and_flow_runs_share_the_server_network_and_the_label(config, registered):
    network = config["networks"]["prefect-server"]["name"]
    agent = config["services"]["agent"]
    assert list(agent["networks"]) == ["prefect-server"]
    assert agent["environment"]["PREFECT_NETWORK"] == network
    assert agent["environment"]["PREFECT__SERVER__HOST"] == "http://apollo"
    assert "/var/run/docker.sock:/var/run/docker.sock:rw" in agent["volumes"]
    assert registered["serialized_flow"]["run_config"]["labels"] == ["users-report"]


def test_register_stores_the_flow_as_a_script_in_the_project_image(config, registered):
    flow = registered["serialized_flow"]
    storage = flow["storage"]
    assert registered["project"] == "Data office"
    assert storage["type"] == "Docker"
    assert storage["image_name"] == "users-report-flow"
    assert re.fullmatch(r"[0-9a-f]{12}", storage["image_tag"])
    assert storage["registry_url"] is None
    assert storage["stored_as_script"] is True
    assert (
        storage["flows"] == {"Users report": FLOW_SCRIPT_IN_IMAGE} and storage["path"] == FLOW_SCRIPT_IN_IMAGE
    )
    # The image copies flows/ into its working directory /app.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile and "COPY flows/ flows/" in dockerfile
    assert (ROOT / Path(FLOW_SCRIPT_IN_IMAGE).relative_to("/app")).is_file()
    assert flow["run_config"]["type"] == "DockerRun"
    assert [parameter["name"] for parameter in flow["parameters"]] == ["n_users"]


def test_schedule_runs_daily_at_six_in_sao_paulo_with_ten_users(registered):
    (clock,) = registered["serialized_flow"]["schedule"]["clocks"]
    assert clock["type"] == "CronClock" and clock["cron"] == "0 6 * * *"
    assert clock["start_date"]["tz"] == "America/Sao_Paulo"
    assert clock["parameter_defaults"] == {"n_users": 10}
    runs = [pendulum.parse(when) for when in registered["next_runs"]]
    assert len(runs) == 5
    for when in runs:
        assert when.utcoffset().total_seconds() == -3 * 3600  # Brazil keeps no DST now
        assert (when.hour, when.minute) == (6, 0)
    assert runs == sorted(runs) and runs[0] > pendulum.now()
    assert all((later - earlier).in_hours() == 24 for earlier, later in zip(runs, runs[1:]))


def test_schedule_and_registry_follow_the_settings(config):
    env = {
        **service_env(config, "agent"),
        "SCHEDULE_CRON": "*/15 8-17 * * 1-5",
        "SCHEDULE_TZ": "Europe/Lisbon",
        "SCHEDULE_N_USERS": "250",
        "REGISTRY_URL": "registry.office.example:5000",
        "AGENT_LABEL": "office",
    }
    result = dry_run(env)
    assert result.returncode == 0, result.stderr
    registered = users_report_entry(result.stdout)
    (clock,) = registered["serialized_flow"]["schedule"]["clocks"]
    assert clock["cron"] == "*/15 8-17 * * 1-5" and clock["start_date"]["tz"] == "Europe/Lisbon"
    assert clock["parameter_defaults"] == {"n_users": 250}
    assert registered["serialized_flow"]["storage"]["registry_url"] == "registry.office.example:5000"
    assert registered["serialized_flow"]["run_config"]["labels"] == ["office"]
    for when in map(pendulum.parse, registered["next_runs"]):
        local = when.in_timezone("Europe/Lisbon")
        assert local.day_of_week in range(1, 6) and 8 <= local.hour <= 17 and local.minute % 15 == 0


def test_registration_is_the_same_each_time(config, registered):
    again = dry_run(service_env(config, "agent"))
    assert users_report_entry(again.stdout)["serialized_flow"] == registered["serialized_flow"]


def test_the_flow_image_tag_follows_the_flows_code_not_the_demo_users_api(tmp_path):
    for part in ("flows", "demo", "requirements.txt"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, tmp_path / part)
    tag = FlowPackage("users_report", tmp_path).version()
    assert tag == FlowPackage("users_report").version()

    with open(tmp_path / "demo" / "users_api.py", "a") as fake:
        fake.write("\n# an edit to the fake users API\n")
    assert FlowPackage("users_report", tmp_path).version() == tag
    with open(tmp_path / "flows" / "users_report" / "tasks.py", "a") as tasks:
        tasks.write("\n# an edit to the flow\n")
    assert FlowPackage("users_report", tmp_path).version() != tag


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SCHEDULE_CRON", "61 * * * *", "error: SCHEDULE_CRON='61 * * * *' is not a cron expression"),
        ("SCHEDULE_CRON", "every day", "error: SCHEDULE_CRON='every day' is not a cron expression"),
        ("SCHEDULE_TZ", "Mars/Olympus", "error: SCHEDULE_TZ='Mars/Olympus' is not a timezone"),
        ("SCHEDULE_N_USERS", "0", "error: SCHEDULE_N_USERS='0' is not allowed: use a whole number from 1"),
        ("NOTIFY_ON", "sometimes", "error: NOTIFY_ON='sometimes' is not allowed: use failed or all"),
        # A flow's setting the agent would refuse to start on (make register does not wait for it)
        ("LATE_MINUTES", "never", "error: LATE_MINUTES='never' is not allowed: use a number from 1"),
    ],
)
def test_bad_deployment_settings_fail_with_one_line(config, name, value, message):
    result = dry_run({**service_env(config, "agent"), name: value})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_each_flows_image_is_the_project_image_named_by_its_version_and_runs_as_app(config, monkeypatch):
    """Docker storage names the flow's image; register.py tags the project image so (no second
    build). That image's own user is app, so flow runs are never root; the agent and the
    register step in its container, which drive the Docker engine, are root by the compose file."""
    import register
    from stack.settings import load_stack_settings

    for name, value in service_env(config, "agent").items():
        monkeypatch.setenv(name, value)
    package = FlowPackage("users_report")
    flow, _ = register.deployment(package, load_stack_settings())
    assert flow.storage.name == f"users-report-flow:{package.version()}"
    assert flow.storage.stored_as_script and flow.storage.path == FLOW_SCRIPT_IN_IMAGE  # no pickle
    users = [
        line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER ")
    ]
    assert users == ["app"]
    assert config["services"]["agent"]["user"] == "root"
    assert config["services"]["agent"]["image"] == "users-report:latest"


def test_agent_starts_flow_runs_on_the_server_network_with_reports_bound(config, registered):
    probe = deploy_through_agent(service_env(config, "agent"), registered)
    calls = {name: (args, kwargs) for name, args, kwargs in probe["calls"]}
    assert probe["labels"] == registered["serialized_flow"]["run_config"]["labels"]
    assert "pull" not in calls
    args, create = calls["create_container"]
    storage = registered["serialized_flow"]["storage"]
    assert args == [f"users-report-flow:{storage['image_tag']}"]
    assert create["command"] == "prefect execute flow-run"
    assert create["networking_config"] == {"prefect-server": {}}
    assert create["volumes"] == [FLOW_REPORTS_DIR]
    assert create["host_config"]["binds"] == {HOST_REPORTS: {"bind": FLOW_REPORTS_DIR, "mode": "rw"}}
    env = create["environment"]
    assert env["PREFECT__CLOUD__API"] == "http://apollo:4200"
    assert env["PREFECT__BACKEND"] == "server"
    assert env["REPORTS_DIR"] == FLOW_REPORTS_DIR
    assert env["PREFECT__CONTEXT__FLOW_RUN_ID"] == "flow-run-1"
    container_id = [name for name, _, _ in probe["calls"]].index("create_container") + 1
    assert calls["start"] == ([], {"container": f"container-{container_id}"})
    assert probe["logs_streamed"] is True


def test_agent_hands_the_pipeline_settings_to_flow_runs(config, registered):
    env = {
        **service_env(config, "agent"),
        "RANDOMUSER_URL": "http://users-api:8999/api/",
        "PAGE_SIZE": "1000",
        "HTTP_RETRIES": "",
    }
    probe = deploy_through_agent(env, registered)
    (create,) = [kwargs for name, _, kwargs in probe["calls"] if name == "create_container"]
    assert create["environment"]["RANDOMUSER_URL"] == "http://users-api:8999/api/"
    assert create["environment"]["PAGE_SIZE"] == "1000"
    assert "HTTP_RETRIES" not in create["environment"]  # unset: the flow's default applies


def test_an_agent_alone_pulls_from_the_registry_and_runs_flows_on_its_own_network(
    config, compose_version, tmp_path
):
    """`make agent` on another host: runs labelled for it, their image pulled from the
    registry, on its own network, talking to the API at the address it was given, with
    that host's .env's flow settings."""
    (tmp_path / "site-b.env").write_text("PAGE_SIZE=800\n")
    settings = {
        "PREFECT_API_URL": "http://10.0.0.5:4200",
        "REGISTRY_URL": "registry.office.example:5000",
        "HOST_REPORTS_DIR": "/data/site-b/reports",
        "AGENT_LABEL": "site-b",
    }
    resolved = agent_compose_config(
        compose_version, {**settings, "STACK_ENV_FILE": str(tmp_path / "site-b.env")}
    )
    assert resolved.returncode == 0, resolved.stderr
    agent_config = short_syntax(yaml.safe_load(resolved.stdout))
    registered = users_report_entry(dry_run({**service_env(config, "agent"), **settings}).stdout)

    probe = deploy_through_agent(service_env(agent_config, "agent"), registered)

    calls = {name: (args, kwargs) for name, args, kwargs in probe["calls"]}
    image = f"registry.office.example:5000/users-report-flow:{registered['serialized_flow']['storage']['image_tag']}"
    assert probe["labels"] == ["site-b"] == registered["serialized_flow"]["run_config"]["labels"]
    assert calls["pull"][0] == [image] and calls["create_container"][0] == [image]
    create = calls["create_container"][1]
    assert create["networking_config"] == {"users-report-agent": {}}
    assert create["host_config"]["binds"] == {
        "/data/site-b/reports": {"bind": FLOW_REPORTS_DIR, "mode": "rw"}
    }
    assert create["environment"]["PREFECT__CLOUD__API"] == "http://10.0.0.5:4200"
    assert create["environment"]["PAGE_SIZE"] == "800"


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("PAGE_SIZE", "0", "error: PAGE_SIZE='0' is not allowed: use a whole number from 1 to 5,000"),
        (
            "HOST_REPORTS_DIR",
            "reports",
            "error: HOST_REPORTS_DIR must be an absolute path on the Docker host",
        ),
    ],
)
def test_agent_refuses_bad_settings_before_it_starts(config, setting, value, message):
    env = {**service_env(config, "agent"), setting: value, "APOLLO_WAIT_SECONDS": "1"}
    result = run_module(["-m", "agent.start"], env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(message)


def test_an_agent_behind_the_proxy_hands_its_token_and_ca_bundle_to_flow_runs(
    config, compose_version, standin, tmp_path
):
    """`make agent` against the server's proxy (docs/scaling.md): API_TOKEN becomes
    Prefect's API key, which the agent's client sends and hands to every flow container;
    the CA bundle is bound into the agent and its flow containers, and requests trusts it."""
    standin.execute('mutation { create_tenant(input: {name: "default", slug: "default"}) { id } }')
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text("")
    settings = {
        "PREFECT_API_URL": standin.url,
        "REGISTRY_URL": "registry.office.example:5000",
        "HOST_REPORTS_DIR": "/data/site-b/reports",
        "API_TOKEN": "machine-token",
        "HOST_CA_BUNDLE": str(bundle),
    }
    resolved = agent_compose_config(compose_version, settings)
    assert resolved.returncode == 0, resolved.stderr
    agent_config = short_syntax(yaml.safe_load(resolved.stdout))
    assert f"{bundle}:{CA_BUNDLE}:ro" in agent_config["services"]["agent"]["volumes"]
    registered = users_report_entry(dry_run({**service_env(config, "agent"), **settings}).stdout)

    probe = deploy_through_agent(service_env(agent_config, "agent"), registered)

    (create,) = [kwargs for name, _, kwargs in probe["calls"] if name == "create_container"]
    env = create["environment"]
    assert env["PREFECT__CLOUD__API_KEY"] == "machine-token" == env["PREFECT__CLOUD__AUTH_TOKEN"]
    assert env["REQUESTS_CA_BUNDLE"] == CA_BUNDLE
    assert create["host_config"]["binds"][str(bundle)] == {"bind": CA_BUNDLE, "mode": "ro"}
