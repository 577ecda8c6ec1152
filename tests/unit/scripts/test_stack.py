"""scripts/stack.py's rules: the modes checked all at once, and `make up`'s wait, which
stops on a broken service naming it (Docker's and Compose's answers given in-process)."""

import json
import subprocess

import pytest

from scripts import stack
from scripts.stack import Container


def inspected(service, restarts=0, status="running", health="healthy"):
    state = {"Status": status, **({"Health": {"Status": health}} if health != "none" else {})}
    return {"Id": f"id-{service}", "Config": {"Labels": {"com.docker.compose.service": service}},
            "RestartCount": restarts, "State": state}  # fmt: skip


def test_modes_are_checked_all_at_once_before_any_is_recorded():
    assert stack.requested_modes({"OFFLINE": "1", "DASK": "0", "PUBLIC": ""}) == [
        ("offline", True),
        ("dask", False),
    ]
    with pytest.raises(stack.StackError) as refused:
        stack.requested_modes({"OFFLINE": "1", "PUBLIC": "maybe", "DASK": "yes"})
    assert str(refused.value) == "DASK must be 0 or 1, got 'yes'; PUBLIC must be 0 or 1, got 'maybe'"
    assert refused.value.code == 2


def test_containers_are_read_from_inspects_json():
    found = stack.from_inspect([inspected("agent", 2, health="starting"), inspected("proxy", health="none")])
    assert found == [
        Container("id-agent", "agent", 2, "running", "starting"),
        Container("id-proxy", "proxy", 0, "running", "none"),
    ]


@pytest.mark.parametrize(
    "containers, strict, said",
    [
        ([Container("a", "hasura", 3, "restarting", "starting")], False, "hasura restarted 3 times (restarting)"),
        ([Container("a", "ui", 0, "running", "unhealthy")], False, "ui is unhealthy (restarted 0 times)"),
        ([Container("a", "ui", 1, "running", "healthy")], True, "ui restarted 1 times (running)"),
        ([Container("a", "agent", 0, "exited", "none")], True, "agent is exited (restarted 0 times)"),
        ([Container("a", "ui", 1, "running", "healthy"), Container("b", "hasura", 4, "running", "x")], False,
         "hasura restarted 4 times (running)"),
    ],
)  # fmt: skip
def test_a_broken_service_is_named_the_most_restarted_first(containers, strict, said):
    assert stack.broken(containers, 3, strict)[1] == said


def test_waiting_services_and_what_is_not_to_blame():
    calm = [
        Container("a", "graphql", 0, "created", "starting"),
        Container("b", "ui", 1, "running", "healthy"),
    ]
    assert stack.broken(calm, 3, strict=False) is None
    assert stack.waiting_for(calm) == ["graphql"]
    assert stack.waiting_for([Container("c", "proxy", 0, "running", "none")]) == []


class FakeCommands:
    """compose and docker as `make up` calls them: `up` runs for `polls` checks, then exits
    `exit_code`; ps and inspect answer `states`, one list per check."""

    def __init__(self, states, polls=1, exit_code=0):
        self.states, self.polls, self.exit_code, self.terminated = list(states), polls, exit_code, False

    def popen(self, argv):
        fake = self

        class Up:
            returncode = None

            def poll(self):
                if fake.polls <= 0:
                    self.returncode = fake.exit_code
                fake.polls -= 1
                return self.returncode

            def terminate(self):
                fake.terminated = True

        return Up()

    def run(self, argv, **kwargs):
        if argv[-3:] == ["ps", "-a", "-q"]:
            self.current = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            out = " ".join(item["Id"] for item in self.current)
        elif argv[:2] == ["docker", "inspect"]:
            out = json.dumps(self.current)
        else:  # docker logs
            out = "hasura: cannot start\nexiting\n"
        return subprocess.CompletedProcess(argv, 0, stdout=out)


def start_with(monkeypatch, fake, seconds=60):
    monkeypatch.setattr(stack.subprocess, "Popen", fake.popen)
    monkeypatch.setattr(stack.subprocess, "run", fake.run)
    monkeypatch.setattr(stack.time, "sleep", lambda seconds: None)
    return stack.Start(["compose"], seconds, restarts_allowed=3)


def test_a_crash_loop_stops_the_start_naming_the_service_and_its_last_lines(monkeypatch):
    fake = FakeCommands(
        [
            [inspected("hasura", 1, "restarting", "starting")],
            [inspected("hasura", 3, "restarting", "starting")],
        ],
        polls=5,
    )
    with pytest.raises(stack.StackError) as stopped:
        start_with(monkeypatch, fake).run()
    assert str(stopped.value) == (
        "hasura restarted 3 times (restarting); its last log lines:\n"
        "  hasura: cannot start\n  exiting\nmake up: stopped (see make ps, make logs)"
    )
    assert fake.terminated


def test_the_start_waits_until_every_service_is_healthy(monkeypatch):
    fake = FakeCommands(
        [[inspected("ui", health="starting")], [inspected("ui", health="starting")], [inspected("ui")]]
    )
    start_with(monkeypatch, fake).run()
    assert fake.states == [[inspected("ui")]]


def test_too_slow_names_the_services_still_waited_for(monkeypatch):
    fake = FakeCommands([[inspected("ui", health="starting"), inspected("agent")]])
    with pytest.raises(stack.StackError, match=r"^not healthy after 0 s: ui \(START_SECONDS allows longer"):
        start_with(monkeypatch, fake, seconds=0).run()


V2_CONFIG = """name: stack
services:
  agent:
    build:
      args:
        BASE_IMAGE: python:3.9-slim
    image: users-report:latest
  hasura:
    image: hasura/graphql-engine:v1.3.3
    networks:
      prefect-db: null
    platform: linux/amd64
  proxy:
    image: "caddy:2"
networks:
  prefect-db:
    internal: true
x-dask:
  env_file: .env
  image: users-report:latest
"""


def test_the_images_named_are_each_services_with_its_platform_and_the_builds_base():
    assert stack.images_named(V2_CONFIG) == [
        ("caddy:2", None),
        ("hasura/graphql-engine:v1.3.3", "linux/amd64"),
        ("python:3.9-slim", None),
        ("users-report:latest", None),
    ]


def test_the_images_to_pull_are_those_named_and_missing_but_the_project_image(monkeypatch):
    have = {"caddy:2"}

    def run(argv, **kwargs):
        if argv[-1] == "config":
            return subprocess.CompletedProcess(argv, 0, stdout=V2_CONFIG)
        return subprocess.CompletedProcess(argv, 0 if argv[-1] in have else 1)

    monkeypatch.setattr(stack.subprocess, "run", run)
    monkeypatch.delenv("PROJECT_IMAGE", raising=False)
    assert stack.images_to_pull(["compose"]) == [
        ("hasura/graphql-engine:v1.3.3", "linux/amd64"),
        ("python:3.9-slim", None),
    ]


def test_a_pull_that_cannot_happen_names_the_image_its_setting_and_what_to_do(monkeypatch):
    monkeypatch.setattr(stack, "images_to_pull", lambda compose: [("python:3.9-slim", None)])
    monkeypatch.delenv("BASE_IMAGE", raising=False)
    asked = []

    def run(argv, **kwargs):
        asked.append(argv)
        return subprocess.CompletedProcess(
            argv, 1, stderr="Error response from daemon: lookup registry-1.docker.io: no such host\n"
        )

    monkeypatch.setattr(stack.subprocess, "run", run)
    with pytest.raises(stack.StackError) as refused:
        stack.pull_missing(["compose"])
    first, *docker = str(refused.value).splitlines()
    assert first.startswith(
        "cannot pull python:3.9-slim (BASE_IMAGE chooses it): the first make up downloads"
    )
    assert "registry-mirrors" in first and first.endswith("docs/troubleshooting.md#no-pull. Docker said:")
    assert docker == ["Error response from daemon: lookup registry-1.docker.io: no such host"]
    assert asked == [["docker", "pull", "python:3.9-slim"]]


def test_an_amd64_only_image_is_pulled_for_its_platform(monkeypatch):
    """hasura v1.3.3 has no arm64 image: on Apple Silicon a plain pull would fail."""
    monkeypatch.setattr(
        stack, "images_to_pull", lambda compose: [("hasura/graphql-engine:v1.3.3", "linux/amd64")]
    )
    asked = []
    monkeypatch.setattr(
        stack.subprocess,
        "run",
        lambda argv, **kwargs: asked.append(argv) or subprocess.CompletedProcess(argv, 0),
    )
    stack.pull_missing(["compose"])
    assert asked == [["docker", "pull", "--platform", "linux/amd64", "hasura/graphql-engine:v1.3.3"]]


@pytest.mark.parametrize(
    "said, majors",
    [
        ("13\n\npostgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", (13, 15)),
        ("\npostgres (PostgreSQL) 11.22 (Debian 11.22-1.pgdg90+1)\n", (None, 11)),
        ("11\n\n", (11, None)),
    ],
)
def test_the_probe_tells_the_datas_major_version_and_the_servers(said, majors):
    assert stack.postgres_majors(said) == majors


def test_postgres_on_an_older_major_versions_data_is_refused_naming_make_upgrade_db():
    assert stack.major_refusal(13, 15, "postgres:15.18") == (
        "the database volume holds PostgreSQL 13 data and POSTGRES_IMAGE (postgres:15.18) is "
        "PostgreSQL 15, which cannot start on it; nothing started. Move the data to 15 with: "
        "make upgrade-db (a backup first; docs/operations.md#another-postgresql-version)"
    )
    assert stack.major_refusal(15, 11, "postgres:11").endswith(
        "is the older PostgreSQL 11, which cannot start on it; nothing started. "
        "Set POSTGRES_IMAGE to a PostgreSQL 15 image in .env"
    )
    for same_or_unknown in ((11, 11), (None, 15), (11, None)):
        assert stack.major_refusal(*same_or_unknown, "postgres:11") is None
