"""The stack's wiring, proved with the real tools: `docker-compose config`, register.py,
Prefect's Docker storage and Prefect's DockerAgent (against a fake Docker client).

The official server images cannot be pulled here, so nothing in this file starts one.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pendulum
import prefect
import pytest
import yaml

from flows.users_report.settings import FLOW_REPORTS_DIR, FLOW_SCRIPT_IN_IMAGE
from tests.support import ROOT, run_module
from tests.support.compose_versions import V2_BINARY, compose_v1

COMPOSE_VERSIONS = ["v2", "v1"]
SERVER_SERVICES = {"postgres", "hasura", "graphql", "towel", "apollo", "ui"}
SECRETS = {"POSTGRES_PASSWORD": "pg-secret", "HASURA_ADMIN_SECRET": "hasura-secret"}
HOST_REPORTS = "/srv/office/reports"
# Compose reads .env of the project directory unless told another file: an empty one here.
NO_ENV_FILE = Path(tempfile.mkdtemp(prefix="compose-env-")) / "empty.env"
NO_ENV_FILE.write_text("")


def compose_command(version: str) -> str:
    if version == "v2":
        return str(V2_BINARY)
    v1 = compose_v1()
    if v1 is None:
        message = "docker-compose 1.29 is not installed (Debian: apt-get install docker-compose)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return v1


def docker_compose(version, *args, env=None, cwd=ROOT) -> subprocess.CompletedProcess:
    # Only what is given: no .env or shell setting of the developer's leaks in.
    clean = {"PATH": os.environ["PATH"], **(env or {})}
    return subprocess.run(
        [compose_command(version), "--project-directory", str(cwd), *args],
        cwd=cwd, env=clean, capture_output=True, text=True,
    )


def compose_config(version="v2", **env) -> dict:
    """The resolved compose file, every profile's services included (v2 leaves out those of
    profiles not asked for)."""
    result = docker_compose(
        version, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(NO_ENV_FILE),
        "--profile", "offline", "config",
        env={**SECRETS, "HOST_REPORTS_DIR": HOST_REPORTS, **env},
    )
    assert result.returncode == 0, result.stderr
    return short_syntax(yaml.safe_load(result.stdout))


def short_syntax(config: dict) -> dict:
    """Compose v2 writes ports, volumes and commands in long syntax and adds defaults
    (`required`, volume names); v1 keeps the short one. One form for both, to compare."""
    for service in config["services"].values():
        if isinstance(service.get("command"), str):
            service["command"] = shlex.split(service["command"])
        service["ports"] = [
            port if isinstance(port, str) else
            f"{port['host_ip']}:{port['published']}:{port['target']}/{port['protocol']}"
            for port in service.get("ports", [])]
        service["volumes"] = [
            volume if isinstance(volume, str) else
            f"{volume['source']}:{volume['target']}:{'ro' if volume.get('read_only') else 'rw'}"
            for volume in service.get("volumes", [])]
        for dependency in service.get("depends_on", {}).values():
            dependency.pop("required", None)
    config["volumes"] = {name: {} for name in config.get("volumes", {})}
    return config


@pytest.fixture(scope="module", params=COMPOSE_VERSIONS)
def compose_version(request):
    return request.param


@pytest.fixture(scope="module")
def config(compose_version):
    return compose_config(compose_version)


@pytest.fixture(scope="module")
def template_config(tmp_path_factory, compose_version):
    """prefect 0.15.9's own server compose file, resolved as `prefect server start` does."""
    from prefect.cli.server import setup_compose_env

    template = Path(prefect.__file__).parent / "cli" / "docker-compose.yml"
    env = setup_compose_env(
        version=None, ui_version=None, no_upgrade=False, postgres_port=5432,
        hasura_port=3000, graphql_port=4201, ui_port=8080, server_port=4200,
        volume_path=str(tmp_path_factory.mktemp("pg")),
    )
    result = docker_compose(compose_version, "-f", str(template), "config", env=env,
                            cwd=tmp_path_factory.mktemp("template"))
    assert result.returncode == 0, result.stderr
    return short_syntax(yaml.safe_load(result.stdout))


def dry_run(env: dict) -> subprocess.CompletedProcess:
    return run_module(["register.py", "--dry-run"], env)


def deploy_through_agent(env: dict, registered: dict) -> dict:
    """What DockerAgent, started as agent/start.py starts it, asked of Docker."""
    result = run_module(["-m", "tests.support.agent_probe", "deploy"], env, stdin=json.dumps(registered))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def service_env(config: dict, service: str) -> dict:
    """What compose gives the service, plus what the project image sets."""
    image_env = dict(re.findall(r"(PREFECT__BACKEND)=(\S+)", (ROOT / "Dockerfile").read_text()))
    assert image_env == {"PREFECT__BACKEND": "server"}
    return {**image_env, **{k: v or "" for k, v in config["services"][service]["environment"].items()}}


@pytest.fixture(scope="module")
def registered(config):
    result = dry_run(service_env(config, "register"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_server_services_use_the_images_of_prefects_own_template(config, template_config):
    assert set(config["services"]) == SERVER_SERVICES | {"agent", "register", "users-api"}
    assert config["services"]["users-api"]["profiles"] == ["offline"]
    for name in SERVER_SERVICES:
        ours, theirs = config["services"][name], template_config["services"][name]
        assert ours["image"] == theirs["image"], name
        assert ours["command"] == theirs["command"] or name in {"graphql", "postgres"}, name
    assert config["services"]["apollo"]["image"] == "prefecthq/apollo:core-0.15.9"
    # The template's command runs whatever PREFECT_SERVER_DB_CMD says; ours upgrades.
    assert config["services"]["graphql"]["command"][:2] == ["bash", "-c"]
    assert config["services"]["graphql"]["command"][2].startswith(
        "prefect-server database upgrade -y && python src/prefect_server/services/graphql/server.py"
    )


def test_only_the_ui_and_the_api_are_published_and_only_on_loopback(config, compose_version):
    published = {
        name: [str(port) for port in service.get("ports", [])]
        for name, service in config["services"].items() if service.get("ports")
    }
    assert published == {"ui": ["127.0.0.1:8080:8080/tcp"], "apollo": ["127.0.0.1:4200:4200/tcp"]}
    moved = compose_config(compose_version, UI_PORT="9080", APOLLO_PORT="9200")
    assert moved["services"]["ui"]["ports"] == ["127.0.0.1:9080:8080/tcp"]


def test_postgres_keeps_its_data_in_a_named_volume(config):
    assert config["volumes"] == {"postgres-data": {}}
    assert config["services"]["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data:rw"]


def test_long_running_services_have_healthchecks_and_wait_for_healthy_dependencies(config):
    for name, service in config["services"].items():
        if name != "register":
            assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
            assert service["restart"] == "unless-stopped", name
        for dependency in service.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}, name
    assert config["services"]["register"]["depends_on"] == {"agent": {"condition": "service_healthy"}}
    assert config["services"]["register"]["restart"] == "no"


def test_secrets_come_from_env_and_a_missing_one_is_refused(config, compose_version):
    services = config["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-secret"
    assert services["graphql"]["environment"]["PREFECT_SERVER__DATABASE__CONNECTION_URL"] == (
        "postgresql://prefect:pg-secret@postgres:5432/prefect_server"
    )
    assert services["towel"]["environment"]["PREFECT_SERVER__HASURA__ADMIN_SECRET"] == "hasura-secret"
    for missing in SECRETS:
        result = docker_compose(
            compose_version, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(NO_ENV_FILE), "config",
            env={**SECRETS, missing: "", "HOST_REPORTS_DIR": HOST_REPORTS},
        )
        assert result.returncode != 0
        assert f"{missing} is not set - run `make up`" in result.stderr


def test_compose_and_dockerfile_agree_on_the_base_image(config):
    dockerfile_default = re.search(r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert config["services"]["agent"]["build"]["args"]["BASE_IMAGE"] == dockerfile_default[1]
    assert dockerfile_default[1] == "python:3.9-slim"


def test_env_example_has_no_secret_and_documents_every_setting():
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.M)
    assert re.search(r"^HASURA_ADMIN_SECRET=$", example, re.M)
    settings = (ROOT / "flows" / "users_report" / "settings.py").read_text()
    compose = (ROOT / "docker-compose.yml").read_text()
    read = set(re.findall(r'_(?:text|number)\("([A-Z_]+)"', settings))
    interpolated = set(re.findall(r"\$\{([A-Z_]+)", compose))
    readme = (ROOT / "README.md").read_text()
    for name in read | interpolated:
        assert re.search(rf"^#? ?{name}=", example, re.M), f"{name} not in .env.example"
        assert f"`{name}`" in readme, f"{name} not in the README"


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
    assert storage["flows"] == {"Users report": FLOW_SCRIPT_IN_IMAGE} and storage["path"] == FLOW_SCRIPT_IN_IMAGE
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
    env = {**service_env(config, "register"), "SCHEDULE_CRON": "*/15 8-17 * * 1-5",
           "SCHEDULE_TZ": "Europe/Lisbon", "SCHEDULE_N_USERS": "250",
           "REGISTRY_URL": "registry.office.example:5000", "AGENT_LABEL": "office"}
    result = dry_run(env)
    assert result.returncode == 0, result.stderr
    registered = json.loads(result.stdout)
    (clock,) = registered["serialized_flow"]["schedule"]["clocks"]
    assert clock["cron"] == "*/15 8-17 * * 1-5" and clock["start_date"]["tz"] == "Europe/Lisbon"
    assert clock["parameter_defaults"] == {"n_users": 250}
    assert registered["serialized_flow"]["storage"]["registry_url"] == "registry.office.example:5000"
    assert registered["serialized_flow"]["run_config"]["labels"] == ["office"]
    for when in map(pendulum.parse, registered["next_runs"]):
        local = when.in_timezone("Europe/Lisbon")
        assert local.day_of_week in range(1, 6) and 8 <= local.hour <= 17 and local.minute % 15 == 0


def test_registration_is_the_same_each_time(config, registered):
    again = dry_run(service_env(config, "register"))
    assert json.loads(again.stdout)["serialized_flow"] == registered["serialized_flow"]


def test_the_flow_image_tag_follows_the_flows_code_not_the_demo_users_api(tmp_path):
    from register import code_version

    for part in ("flows", "demo", "requirements.txt"):
        copy = shutil.copytree if (ROOT / part).is_dir() else shutil.copy
        copy(ROOT / part, tmp_path / part)
    tag = code_version(tmp_path)
    assert tag == code_version(ROOT)

    with open(tmp_path / "demo" / "users_api.py", "a") as fake:
        fake.write("\n# an edit to the fake users API\n")
    assert code_version(tmp_path) == tag
    with open(tmp_path / "flows" / "users_report" / "tasks.py", "a") as tasks:
        tasks.write("\n# an edit to the flow\n")
    assert code_version(tmp_path) != tag


@pytest.mark.parametrize("name, value, message", [
    ("SCHEDULE_CRON", "61 * * * *", "error: SCHEDULE_CRON='61 * * * *' is not a cron expression"),
    ("SCHEDULE_CRON", "every day", "error: SCHEDULE_CRON='every day' is not a cron expression"),
    ("SCHEDULE_TZ", "Mars/Olympus", "error: SCHEDULE_TZ='Mars/Olympus' is not a timezone"),
    ("SCHEDULE_N_USERS", "0", "error: SCHEDULE_N_USERS='0' is not allowed: use a whole number from 1"),
])
def test_bad_schedule_settings_fail_with_one_line(config, name, value, message):
    result = dry_run({**service_env(config, "register"), name: value})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_flow_image_dockerfile_from_prefects_docker_storage(config, tmp_path, monkeypatch):
    """The Dockerfile Prefect's Docker storage builds the flow image from."""
    import register
    from flows.users_report.settings import load_stack_settings

    for name, value in service_env(config, "register").items():
        monkeypatch.setenv(name, value)
    flow = register.deployment(load_stack_settings())
    flow.storage.add_flow(flow)
    dockerfile = Path(flow.storage.create_dockerfile_object(directory=str(tmp_path))).read_text()
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip()]
    # FROM the image compose builds for the agent and the register step
    assert lines[0] == f"FROM {config['services']['agent']['image']}" == "FROM users-report:latest"
    assert not any(line.startswith("COPY") and ".flow" in line for line in lines)  # a script, no pickle
    user_at = lines.index("USER app")
    healthcheck_at = next(i for i, line in enumerate(lines) if "healthcheck.py '[" in line)
    assert user_at < healthcheck_at and all("pip" not in line for line in lines[user_at:])
    assert f'"{FLOW_SCRIPT_IN_IMAGE}"' in lines[healthcheck_at]
    assert flow.storage.local_image is True  # never pulled
    assert flow.storage.build_kwargs == {"rm": True, "forcerm": True}


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
    env = {**service_env(config, "agent"), "RANDOMUSER_URL": "http://users-api:8999/api/",
           "PAGE_SIZE": "1000", "HTTP_RETRIES": ""}
    probe = deploy_through_agent(env, registered)
    (create,) = [kwargs for name, _, kwargs in probe["calls"] if name == "create_container"]
    assert create["environment"]["RANDOMUSER_URL"] == "http://users-api:8999/api/"
    assert create["environment"]["PAGE_SIZE"] == "1000"
    assert "HTTP_RETRIES" not in create["environment"]  # unset: the flow's default applies


@pytest.mark.parametrize("setting, value, message", [
    ("PAGE_SIZE", "0", "error: PAGE_SIZE='0' is not allowed: use a whole number from 1 to 5000"),
    ("HOST_REPORTS_DIR", "reports", "error: HOST_REPORTS_DIR must be an absolute path on the Docker host"),
])
def test_agent_refuses_bad_settings_before_it_starts(config, setting, value, message):
    env = {**service_env(config, "agent"), setting: value, "APOLLO_WAIT_SECONDS": "1"}
    result = run_module(["-m", "agent.start"], env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(message)
