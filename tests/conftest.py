"""The tests' fixtures (their helpers live in tests/support/): the fake users API on
loopback, the API stand-in, the stack's environment, a runner of the real `make run`
entry, and the compose files resolved by Compose v2 and v1."""

import os

import pytest

from demo.users_api import DemoUsersAPI
from tests.prefect_api_standin import PrefectAPIStandIn
from tests.support import ROOT, free_port
from tests.support.compose_config import compose_config
from tests.support.compose_versions import COMPOSE_VERSIONS
from tests.support.pipeline_runs import closed_port_url, finish, start_run
from tests.support.postgres import temporary_postgres
from tests.support.webhook_receiver import WebhookReceiver


def pytest_configure(config):
    # Nothing imported in-process may reach the internet: neither the users API nor,
    # through a Prefect Client left on its defaults, Prefect Cloud.
    os.environ["RANDOMUSER_URL"] = closed_port_url()
    os.environ["PREFECT__BACKEND"] = "server"
    os.environ["PREFECT__SERVER__HOST"] = "http://127.0.0.1"
    os.environ["PREFECT__SERVER__PORT"] = str(free_port())


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of this machine's, for what the stack keeps in its database."""
    with temporary_postgres() as url:
        yield url


@pytest.fixture
def people(postgres_url):
    """The door's tables (door/people.py), empty at each test's start."""
    from door.people import People

    store = People(postgres_url)
    with store.cursor() as cursor:
        cursor.execute("TRUNCATE door.person, door.audit")
    yield store
    store.close()


@pytest.fixture
def users_api():
    """The fake users API with the real one's limit: 20,000 users per client per 5 min."""
    with DemoUsersAPI(lifetime=120, limit=20_000, window=300) as api:
        yield api


@pytest.fixture
def reports_dir(tmp_path):
    path = tmp_path / "reports"
    path.mkdir()
    return path


@pytest.fixture
def standin():
    api = PrefectAPIStandIn().serve(lifetime=300)
    yield api
    api.stop()


@pytest.fixture
def stack_env(standin, users_api, tmp_path):
    """What compose gives the agent and the register step, pointed at the stand-in."""
    (tmp_path / "host-reports").mkdir()
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "PREFECT__BACKEND": "server",
        "PREFECT__SERVER__HOST": "http://127.0.0.1",
        "PREFECT__SERVER__PORT": standin.url.rsplit(":", 1)[1],
        "HOST_REPORTS_DIR": str(tmp_path / "host-reports"),
        "RANDOMUSER_URL": users_api.url,
        "HTTP_RETRIES": "1",
        "HTTP_RETRY_DELAY": "0.05",
    }


@pytest.fixture
def receiver():
    """A webhook receiver on loopback, standing in for Slack's."""
    hooks = WebhookReceiver()
    yield hooks
    hooks.stop()


@pytest.fixture
def run_pipeline(users_api, reports_dir):
    def run(n_users=None, url=None, extra_args=(), **settings):
        return finish(start_run(url or users_api.url, reports_dir, n_users, extra_args, **settings))

    return run


@pytest.fixture(scope="module", params=COMPOSE_VERSIONS)
def compose_version(request):
    return request.param


@pytest.fixture(scope="module")
def config(compose_version):
    return compose_config(compose_version)
