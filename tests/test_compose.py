"""The compose file, resolved by the real Compose, v2 and v1: the server's images and
commands are prefect's own template's, only the proxy is published (on loopback),
health-gated start order, secrets required, every setting documented.

The official server images cannot be pulled here, so nothing in this file starts one.
"""

import re
from pathlib import Path

import prefect
import pytest
import yaml

from tests.support import ROOT
from tests.support.compose_config import (
    HOST_REPORTS,
    NO_ENV_FILE,
    SECRETS,
    agent_compose_config,
    compose_config,
    docker_compose,
    short_syntax,
)

SERVER_SERVICES = {"postgres", "hasura", "graphql", "towel", "apollo", "ui"}
MONITORING_VOLUMES = {"prometheus-data", "alertmanager-data"}


@pytest.fixture(scope="module")
def template_config(tmp_path_factory, compose_version):
    """prefect 0.15.9's own server compose file, resolved as `prefect server start` does."""
    from prefect.cli.server import setup_compose_env

    template = Path(prefect.__file__).parent / "cli" / "docker-compose.yml"
    env = setup_compose_env(
        version=None,
        ui_version=None,
        no_upgrade=False,
        postgres_port=5432,
        hasura_port=3000,
        graphql_port=4201,
        ui_port=8080,
        server_port=4200,
        volume_path=str(tmp_path_factory.mktemp("pg")),
    )
    result = docker_compose(
        compose_version, "-f", str(template), "config", env=env, cwd=tmp_path_factory.mktemp("template")
    )
    assert result.returncode == 0, result.stderr
    return short_syntax(yaml.safe_load(result.stdout))


def test_server_services_use_the_images_of_prefects_own_template(config, template_config):
    assert set(config["services"]) == SERVER_SERVICES | {
        "agent",
        "users-api",
        "dask-scheduler",
        "dask-worker",
        "proxy",
        "door",
        "exporter",
        "prometheus",
        "alertmanager",
    }
    assert config["services"]["users-api"]["profiles"] == ["offline"]
    assert config["services"]["dask-worker"]["profiles"] == ["dask"]
    for name in SERVER_SERVICES:
        ours, theirs = config["services"][name], template_config["services"][name]
        # postgres: 11, the template's, is out of support (docs/operations.md#another-postgresql-version).
        assert ours["image"] == theirs["image"] or name == "postgres", name
        assert ours["command"] == theirs["command"] or name in {"graphql", "postgres"}, name
    assert config["services"]["apollo"]["image"] == "prefecthq/apollo:core-0.15.9"
    assert template_config["services"]["postgres"]["image"] == "postgres:11"
    assert config["services"]["postgres"]["image"] == "postgres:15.18"
    # The template's command runs whatever PREFECT_SERVER_DB_CMD says; ours upgrades.
    assert config["services"]["graphql"]["command"][:2] == ["bash", "-c"]
    assert config["services"]["graphql"]["command"][2].startswith(
        "prefect-server database upgrade -y && python src/prefect_server/services/graphql/server.py"
    )


def test_only_the_proxy_is_published_and_only_on_loopback(config, compose_version):
    """The UI and the API are reached only through the proxy's checks (docs/security.md)."""
    published = {
        name: sorted(service["ports"]) for name, service in config["services"].items() if service["ports"]
    }
    assert published == {"proxy": ["127.0.0.1:4200:4200/tcp", "127.0.0.1:8080:8080/tcp"]}
    proxy = config["services"]["proxy"]
    assert proxy["environment"]["FRONT_DOOR"] == "loopback" and "profiles" not in proxy
    assert f"{HOST_REPORTS}:/srv/reports:ro" in proxy["volumes"]  # /reports/, read-only
    assert (
        config["services"]["ui"]["environment"]["PREFECT_SERVER__APOLLO_URL"]
        == "http://localhost:8080/graphql"
    )
    moved = compose_config(
        compose_version,
        UI_PORT="9080",
        APOLLO_PORT="9200",
        APOLLO_BIND="10.0.0.5",
        STACK_HOSTNAMES="prefect.office.lan",
    )
    proxy = moved["services"]["proxy"]
    assert sorted(proxy["ports"]) == ["10.0.0.5:9200:4200/tcp", "127.0.0.1:9080:8080/tcp"]
    assert proxy["environment"]["APOLLO_BIND"] == "10.0.0.5"
    assert proxy["environment"]["STACK_HOSTNAMES"] == "prefect.office.lan"
    assert proxy["environment"]["UI_PORT"] == "9080"


def test_public_mode_publishes_only_the_proxys_https_port(compose_version):
    """`make up PUBLIC=1` takes docker-compose.public.yml instead of the override: one port,
    the proxy's, which reaches the UI and the API through the door, where a login is
    required; the proxy holds no secret."""
    config = compose_config(
        compose_version,
        public=True,
        PUBLIC_PORT="9443",
        PUBLIC_BIND="10.0.0.5",
        PUBLIC_HOST="prefect.office.example",
        API_TOKEN="machine-token",
        UI_PUBLIC_URL="https://prefect.office.example:9443",
    )
    published = {name: service["ports"] for name, service in config["services"].items() if service["ports"]}
    assert published == {"proxy": ["10.0.0.5:9443:8443/tcp"]}
    proxy = config["services"]["proxy"]
    assert proxy["image"] == "caddy:2" and list(proxy["networks"]) == ["prefect-server"]
    assert proxy["environment"] == {
        "FRONT_DOOR": "public",
        "APOLLO_BIND": "127.0.0.1",
        "STACK_HOSTNAMES": "localhost",
        "UI_PUBLIC_URL": "https://prefect.office.example:9443",
        "UI_PORT": "8080",
        "PUBLIC_HOST": "prefect.office.example",
        "PUBLIC_TLS": "internal",
    }
    assert proxy["depends_on"] == {
        "door": {"condition": "service_healthy"},
        "ui": {"condition": "service_healthy"},
    }
    door = config["services"]["door"]
    assert door["environment"]["DOOR_LOGIN"] == "required" and not door["ports"]
    assert compose_config(compose_version)["services"]["door"]["environment"]["DOOR_LOGIN"] == ""


def test_postgres_and_hasura_are_on_a_network_of_their_own(config):
    """Flow containers, Dask workers, the demo API, the UI, the proxy and the agent join
    prefect-server only: none of them reaches Hasura (no admin secret) or Postgres. The door
    joins it for its own schema, with the server's URL."""
    assert config["networks"]["prefect-db"]["internal"] is True
    on_db = sorted(
        name for name, service in config["services"].items() if "prefect-db" in service["networks"]
    )
    assert on_db == ["apollo", "door", "exporter", "graphql", "hasura", "postgres", "towel"]
    door = config["services"]["door"]["environment"]["DOOR_DATABASE_URL"]
    assert door == config["services"]["graphql"]["environment"]["PREFECT_SERVER__DATABASE__CONNECTION_URL"]
    assert (
        list(config["services"]["postgres"]["networks"])
        == list(config["services"]["hasura"]["networks"])
        == ["prefect-db"]
    )
    for service in config["services"].values():
        assert not any("HASURA" in name and "SECRET" in name for name in service.get("environment", {}))


def test_an_external_database_takes_postgres_place_reached_over_a_network_with_a_way_out(compose_version):
    """POSTGRES_HOST: no postgres service or volume; Hasura and graphql (its migrations) get
    the URL of the settings and a network out, prefect-db staying internal."""
    external = {
        "POSTGRES_HOST": "db.office.internal",
        "POSTGRES_PORT": "6432",
        "POSTGRES_DB": "prefect_office",
        "POSTGRES_USER": "office",
        "POSTGRES_SSLMODE": "verify-full",
    }
    config = compose_config(compose_version, external=True, **external)
    services = config["services"]
    assert "postgres" not in services and set(config["volumes"]) == MONITORING_VOLUMES | {"proxy-data"}
    url = "postgresql://office:pg-secret@db.office.internal:6432/prefect_office?sslmode=verify-full"
    assert services["hasura"]["environment"]["HASURA_GRAPHQL_DATABASE_URL"] == url
    assert services["graphql"]["environment"]["PREFECT_SERVER__DATABASE__CONNECTION_URL"] == url
    assert services["door"]["environment"]["DOOR_DATABASE_URL"] == url
    assert not services["hasura"].get("depends_on")
    networks = config["networks"]
    assert networks["prefect-db"]["internal"] is True and not networks["database"].get("internal")
    assert sorted(name for name, service in services.items() if "database" in service["networks"]) == [
        "door",
        "exporter",
        "graphql",
        "hasura",
    ]
    defaults = compose_config(compose_version, external=True, POSTGRES_HOST="db")["services"]["hasura"]
    assert defaults["environment"]["HASURA_GRAPHQL_DATABASE_URL"] == (
        "postgresql://prefect:pg-secret@db:5432/prefect_server?sslmode=prefer"
    )


def test_amd64_only_images_ask_for_amd64_and_probes_ask_127_0_0_1(config):
    """hasura v1.3.3 and the prefecthq core-0.15.9 images are published for amd64 only;
    apollo and the UI's nginx listen on IPv4 only, and BusyBox wget tries one address."""
    for name, service in config["services"].items():
        amd64_only = service["image"].startswith(("hasura/", "prefecthq/"))
        assert (service.get("platform") == "linux/amd64") == amd64_only, name
        probe = " ".join(service.get("healthcheck", {}).get("test", []))
        assert "localhost" not in probe, name
    assert "-h 127.0.0.1" in config["services"]["postgres"]["healthcheck"]["test"][1]


def test_make_up_knows_the_services_of_each_modes_profile(config):
    """scripts/dotenv.py names them for `make up` to remove once their mode is off."""
    from scripts.dotenv import PROFILE_SERVICES

    profiles = {}
    for name, service in config["services"].items():
        for profile in service.get("profiles", []):
            profiles.setdefault(profile, []).append(name)
    assert profiles == {profile: sorted(services) for profile, services in PROFILE_SERVICES.items()}


def test_postgres_keeps_its_data_in_the_named_volume_postgres_volume_chooses(config, compose_version):
    """Two, so that make upgrade-db builds a new version's cluster beside the old one."""
    unused = {"v1": {"postgres-data-2"}, "v2": set()}[compose_version]  # v2 prints only those in use
    assert set(config["volumes"]) == {"postgres-data", "proxy-data"} | MONITORING_VOLUMES | unused
    assert config["services"]["postgres"]["volumes"] == ["postgres-data:/var/lib/postgresql/data:rw"]
    moved = compose_config(compose_version, POSTGRES_VOLUME="postgres-data-2")
    assert moved["services"]["postgres"]["volumes"] == ["postgres-data-2:/var/lib/postgresql/data:rw"]
    assert "postgres-data-2" in moved["volumes"]


def test_long_running_services_have_healthchecks_and_wait_for_healthy_dependencies(config):
    for name, service in config["services"].items():
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert service["restart"] == "unless-stopped", name
        for dependency in service.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}, name
    assert config["services"]["agent"]["depends_on"] == {"apollo": {"condition": "service_healthy"}}


def test_secrets_come_from_env_and_a_missing_one_is_refused(config, compose_version):
    services = config["services"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "pg-secret"
    assert services["graphql"]["environment"]["PREFECT_SERVER__DATABASE__CONNECTION_URL"] == (
        "postgresql://prefect:pg-secret@postgres:5432/prefect_server"
    )
    # Towel fails runs from its own process: its alerts link to the UI as graphql's do.
    assert services["towel"]["environment"]["PREFECT_SERVER__API__URL"] == "http://localhost:8080"
    for missing in SECRETS:
        result = docker_compose(
            compose_version,
            "-f",
            str(ROOT / "docker-compose.yml"),
            "-f",
            str(ROOT / "docker-compose.database.yml"),
            "--env-file",
            str(NO_ENV_FILE),
            "config",
            env={**SECRETS, missing: "", "HOST_REPORTS_DIR": HOST_REPORTS},
        )
        assert result.returncode != 0
        assert f"{missing} is not set - run `make up`" in result.stderr


def test_compose_and_dockerfile_agree_on_the_base_image(config):
    dockerfile_default = re.search(r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert config["services"]["agent"]["build"]["args"]["BASE_IMAGE"] == dockerfile_default[1]
    assert dockerfile_default[1] == "python:3.9-slim"


def test_dask_workers_run_the_tasks_as_flow_runs_do(compose_version):
    """Same image, settings and reports folder as flow runs, as the app user, without the
    Docker socket; as many as DASK_WORKERS says."""
    services = compose_config(compose_version, DASK_WORKERS="3")["services"]
    worker, agent = services["dask-worker"], services["agent"]
    assert worker["image"] == agent["image"] and worker["user"] == "app"
    assert worker["scale"] == 3
    assert worker["environment"]["REPORTS_DIR"] == "/reports"
    assert worker["volumes"] == [f"{HOST_REPORTS}:/reports:rw"]
    assert worker["command"][:2] == ["dask-worker", "tcp://dask-scheduler:8786"]
    assert services["dask-scheduler"]["command"][:3] == ["dask-scheduler", "--port", "8786"]
    assert not services["dask-scheduler"].get("ports") and not services["dask-scheduler"]["volumes"]


def test_the_agent_alone_has_its_own_network_and_needs_the_api_and_registry(compose_version, tmp_path):
    """`make agent`'s compose file: the API's address and the registry are required (no
    default can be right on another host)."""
    needed = {
        "PREFECT_API_URL": "http://10.0.0.5:4200",
        "REGISTRY_URL": "registry.example:5000",
        "HOST_REPORTS_DIR": HOST_REPORTS,
    }
    for missing in needed:
        result = agent_compose_config(compose_version, {**needed, missing: ""})
        assert result.returncode != 0 and f"{missing} is not set - " in result.stderr, result.stderr
    result = agent_compose_config(compose_version, {**needed, "AGENT_PROJECT": "office-agent"})
    assert result.returncode == 0, result.stderr
    config = short_syntax(yaml.safe_load(result.stdout))
    (name,) = config["services"]
    agent = config["services"][name]
    assert agent["environment"]["PREFECT__CLOUD__API"] == "http://10.0.0.5:4200"
    assert agent["environment"]["PREFECT_NETWORK"] == "office-agent"
    assert config["networks"]["agent"]["name"] == "office-agent" and not agent["ports"]
    assert agent["user"] == "root"  # the image's own user, app, is its flow runs'
    assert {"REGISTRY_URL", "AGENT_LABEL"} <= set(agent["environment"])


def test_e2e_on_real_images_pulls_every_image_the_stack_runs(config):
    """`make e2e` picks the real images only where all of these can be pulled (E2E_IMAGES)."""
    from tests.programs.e2e_base import upstream_images

    ran = {service["image"] for service in config["services"].values()} - {"users-report:latest"}
    assert upstream_images() == sorted(ran | {config["services"]["agent"]["build"]["args"]["BASE_IMAGE"]})


def test_the_hosted_ci_workflow_runs_ci_on_the_real_images():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    run = job["steps"][-1]
    assert job["steps"][0]["uses"].startswith("actions/checkout@")
    assert run["env"] == {"E2E_IMAGES": "upstream"} and run["run"].endswith("bash .ci/run")


def test_make_up_pulls_the_images_compose_names_each_for_its_platform(compose_version):
    """scripts/stack.py reads `compose config` as text (it runs before any package is
    installed): the same images and platforms as the resolved files, under v2 and v1."""
    from scripts.stack import images_named
    from tests.support.compose_config import NO_ENV_FILE

    files = [
        arg
        for name in ("docker-compose.yml", "docker-compose.database.yml")
        for arg in ("-f", str(ROOT / name))
    ]
    text = docker_compose(
        compose_version, *files, "--env-file", str(NO_ENV_FILE), "config",
        env={**SECRETS, "HOST_REPORTS_DIR": HOST_REPORTS, "STACK_ENV_FILE": str(NO_ENV_FILE)},
    ).stdout  # fmt: skip
    config = yaml.safe_load(text)
    expected = {(service["image"], service.get("platform")) for service in config["services"].values()}
    expected.add((config["services"]["agent"]["build"]["args"]["BASE_IMAGE"], None))
    assert set(images_named(text)) == expected
    assert ("hasura/graphql-engine:v1.3.3", "linux/amd64") in expected
