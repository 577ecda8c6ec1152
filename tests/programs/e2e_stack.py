"""The compose project `make e2e` makes with the Makefile, in its own copy of the checkout,
and what it asks of it: make, compose, flows, runs and logs through the API, reports."""

import contextlib
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from scripts import dotenv
from tests.programs.e2e_api import ServerQueries
from tests.programs.e2e_base import ensure_command, run
from tests.support import ROOT, free_port
from tests.support.compose_versions import compose_v1, docker_config_with_v2

# A second flow package, added to the stack's copy before `make up` deploys every package:
# it holds `mebibytes` of memory for a moment, under a limit of its own.
MEMORY_CHECK = {
    "__init__.py": "",
    "flows.py": '''"""Holds `mebibytes` of memory for a moment (make e2e: the memory limit)."""
import time

from prefect import Flow, Parameter, task


@task
def hold(mebibytes):
    block = b"x" * (int(mebibytes) * 2 ** 20)  # written, so the memory is really taken
    time.sleep(1)
    return len(block)


with Flow("Memory check") as flow:
    hold(Parameter("mebibytes", default=10))
''',
    "deployment.py": 'MEMORY_LIMIT = "400m"\nALERTS = False\n',
}
# The flows' settings of every e2e stack, in its .env.
FLOW_SETTINGS = {
    "SCHEDULE_CRON": "* * * * *",
    "SCHEDULE_N_USERS": "5",
    "HTTP_RETRIES": "1",
    "HTTP_RETRY_DELAY": "1",
    # Small pages: a run of a few thousand users has enough for two Dask workers.
    "PAGE_SIZE": "500",
}


# The rules' and Alertmanager's times, shortened in the e2e's copy of the checkout: what
# fires after minutes fires after seconds, through the same rules.
COMPRESSED = {
    "monitoring/prometheus.yml": [("scrape_interval: 30s", "scrape_interval: 2s"), ("evaluation_interval: 30s", "evaluation_interval: 2s")],
    "monitoring/rules.yml": [("> 300", "> 15"), ("for: 1m", "for: 4s"), ("for: 5m", "for: 4s"), ("for: 2m", "for: 4s")],
    "monitoring/alertmanager.yml": [("group_wait: 30s", "group_wait: 2s"), ("group_interval: 5m", "group_interval: 5s")],
}  # fmt: skip


def compress_time(checkout) -> None:
    for name, changes in COMPRESSED.items():
        path = checkout / name
        text = path.read_text()
        for old, new in changes:
            assert old in text, (name, old)
            text = text.replace(old, new)
        path.write_text(text)


def output(*args, **kwargs) -> str:
    return run(*args, capture_output=True, text=True, **kwargs).stdout.strip()


def fresh_copy(destination: Path) -> Path:
    """This checkout's files as they are now, tracked or new, without what git ignores."""
    listed = output("git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)  # mtimes kept: make sees the venv as fresh
    return destination


PLACEHOLDERS = [
    "tests/programs/docker-compose.placeholders.yml",
    "tests/programs/docker-compose.placeholders-postgres.yml",
]


class Stack(ServerQueries):
    """One compose project made with the Makefile, in its own copy of the checkout."""

    def __init__(self, version: str, local_images: dict, work: Path, name: str = "users-report-e2e"):
        """`local_images`: BASE_IMAGE, E2E_POSTGRES_IMAGE (the default's major version; and
        E2E_POSTGRES_OLD_IMAGE, an older one) and PROXY_IMAGE for the placeholders of
        docker-compose.placeholders.yml; empty: the real images. `name`: of the compose
        project (with the version), its network and images."""
        self.version, self.name = version, f"{name}-{version}"
        self.failed_hop = None  # once one failed, the stack is as it left it: the rest do not run
        self.dir = fresh_copy(work / "checkout")
        compress_time(self.dir)
        for name, text in MEMORY_CHECK.items():
            (self.dir / "flows" / "memory_check").mkdir(exist_ok=True)
            (self.dir / "flows" / "memory_check" / name).write_text(text)
        self.reports = self.dir / "reports"
        self.app_uid = os.getuid() or 1000  # what `make up` writes into .env
        self.apollo_port, self.ui_port = free_port(), free_port()
        self.flow_image = f"{self.name}-flow"
        self.agent_project = f"{self.name}-agent"  # `make agent`'s, beside the stack
        self.agent_settings = {}  # what `make agent` was given, for compose on its project
        self.registry = self.registry_address = None  # one registry, started when a hop needs it
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            # Where Docker looks for CLI plugins: Compose v2 for v2, none for v1.
            "DOCKER_CONFIG": str(
                docker_config_with_v2(work / "docker") if version == "v2" else work / "docker"
            ),
            "COMPOSE_PROJECT_NAME": self.name,
            # As `make up` writes it (scripts/dotenv.py), the placeholders after it.
            "COMPOSE_FILE": ":".join(
                ["docker-compose.yml", "docker-compose.database.yml", "docker-compose.override.yml"]
                + (PLACEHOLDERS if local_images else [])
            ),
            "PREFECT_NETWORK": self.name,
            "PROJECT_IMAGE": f"{self.name}:latest",
            "FLOW_IMAGE": self.flow_image,
            **local_images,
            "UI_PORT": str(self.ui_port),
            "APOLLO_PORT": str(self.apollo_port),
            "AGENT_PROJECT": self.agent_project,
        }
        # The stand-in in apollo's place (local images) answers towel's passes on request.
        self.standin = bool(local_images)
        self.base_image = local_images.get("BASE_IMAGE", "python:3.9-slim")
        (work / "docker").mkdir(exist_ok=True)
        if "DOCKER_HOST" in os.environ:
            self.env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        # v2 through the Makefile's own detection; v1 named, as a user without v2 has it.
        self.compose_command = ["docker", "compose"] if version == "v2" else [compose_v1()]
        self.make_args = [] if version == "v2" else [f"COMPOSE={self.compose_command[0]}"]
        # The flows' settings reach the agent from .env only, as a user sets them; so does
        # the database's image. The v1 stack starts on an older major version than the
        # default's, for make upgrade-db to move (tests/e2e/database.py upgrade_db).
        self.make(".env")
        self.write_env(FLOW_SETTINGS)
        self.postgres_image = (
            local_images.get("E2E_POSTGRES_IMAGE")
            or dotenv.parse(ROOT / ".env.example", commented=True)["POSTGRES_IMAGE"]
        )
        older = local_images.get("E2E_POSTGRES_OLD_IMAGE", "postgres:11") if version == "v1" else None
        if older or local_images:
            self.write_env({"POSTGRES_IMAGE": older or self.postgres_image})

    @property
    def api(self) -> str:
        return f"http://{self.env.get('APOLLO_BIND', '127.0.0.1')}:{self.apollo_port}"

    def refuse_if_in_use(self) -> None:
        """Two stacks must not share a project, network or volume: stop rather than join one."""
        containers = [
            output("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={name}")
            for name in (self.name, self.agent_project)
        ]
        networks = [
            run("docker", "network", "inspect", name, check=False, capture_output=True).returncode
            for name in (self.name, self.agent_project)
        ]
        volume = run(
            "docker", "volume", "inspect", f"{self.name}_postgres-data", check=False, capture_output=True
        )
        if any(containers) or 0 in networks or volume.returncode == 0:
            raise SystemExit(
                f"e2e: the compose project {self.name} is in use (its containers, "
                f"network or volume exist): is another make e2e running? If not, "
                f"remove them: docker compose -p {self.name} down --volumes"
            )

    @contextlib.contextmanager
    def settings(self, **settings):
        """`settings` in the environment of the Makefile's commands inside the block; after
        it, what was there before, so that a later hop does not inherit them."""
        before = {name: self.env.get(name) for name in settings}
        self.env.update(settings)
        try:
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    self.env.pop(name, None)
                else:
                    self.env[name] = value

    def write_env(self, settings: dict) -> None:
        """NAME=value lines in the checkout's .env, each in the place of its line or last."""
        lines = (self.dir / ".env").read_text().splitlines()
        for name, value in settings.items():
            at = next((i for i, line in enumerate(lines) if line.startswith(f"{name}=")), None)
            if at is None:
                lines.append(f"{name}={value}")
            else:
                lines[at] = f"{name}={value}"
        (self.dir / ".env").write_text("".join(f"{line}\n" for line in lines))

    @contextlib.contextmanager
    def flow_settings(self, **settings):
        """The flows' `settings` in .env inside the block; after it, what was there before."""
        before = dict(FLOW_SETTINGS, **{name: "" for name in settings if name not in FLOW_SETTINGS})
        self.write_env(settings)
        try:
            yield
        finally:
            self.write_env({name: before[name] for name in settings})

    def make(self, *args, check=True, **settings) -> subprocess.CompletedProcess:
        """`make args` in the checkout, with `settings` in its environment as well."""
        result = run(
            "make",
            "--no-print-directory",
            "-C",
            self.dir,
            *args,
            f"VENV={ROOT / '.venv'}",
            *self.make_args,
            env={**self.env, **settings},
            check=False,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"make {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result

    def compose(self, *args, agent=False, **kwargs) -> subprocess.CompletedProcess:
        """Compose on the stack, every profile on; or (`agent`) on `make agent`'s project."""
        where = (
            ["--project-directory", ".", "-f", "agent/docker-compose.yml", "-p", self.agent_project]
            if agent
            else []
        )
        env = {
            **self.env,
            **(self.agent_settings if agent else {}),
            "COMPOSE_PROFILES": "offline,dask,public",
        }
        return run(*self.compose_command, *where, *args, cwd=self.dir, env=env, **kwargs)

    def up(self, registry: bool = False) -> None:
        """The stack as `make up OFFLINE=1` leaves it, or (`registry`) with REGISTRY_URL set
        to a registry here, as agents on other hosts need it; `make up` only where it is not
        so already (not running, or the other way): what a hop run alone builds on."""
        wanted = self.start_registry() if registry else None
        running = output(
            "docker", "ps", "-q", "--filter", f"label=com.docker.compose.project={self.name}",
            "--filter", "label=com.docker.compose.service=agent",
        )  # fmt: skip
        if running and self.env.get("REGISTRY_URL") == wanted:
            return
        if wanted:
            self.env["REGISTRY_URL"] = wanted
        else:
            self.env.pop("REGISTRY_URL", None)
        self.make("up", "OFFLINE=1")

    def containers(self, service: str, agent=False) -> list:
        return self.compose("ps", "-q", service, agent=agent, capture_output=True, text=True).stdout.split()

    def container(self, service: str, agent=False) -> str:
        (container,) = self.containers(service, agent)
        return container

    def wait_healthy(self, service: str, seconds: float = 120, agent=False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            statuses = [
                output("docker", "inspect", "-f", "{{.State.Health.Status}}", container)
                for container in self.containers(service, agent)
            ]
            if statuses and set(statuses) == {"healthy"}:
                return
            time.sleep(1)
        raise AssertionError(f"{service} is not healthy after {seconds:g} s ({statuses})")

    def start_registry(self) -> str:
        """A registry on loopback (Debian's docker-registry here, the CNCF distribution that
        registry:2 runs), stopping by itself, one for the stack; returns its address for
        REGISTRY_URL."""
        if self.registry:
            return self.registry_address
        ensure_command("docker-registry", "docker-registry")
        port = free_port()
        config = self.dir.parent / "registry.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {self.dir.parent / 'registry'}\n"
            f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: warn\n"
        )
        self.registry = subprocess.Popen(
            ["timeout", "3600", "docker-registry", "serve", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        address = self.registry_address = f"127.0.0.1:{port}"
        for _ in range(50):
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=2).close()
                return address
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"the registry did not answer at {address}")

    def tear_down(self) -> None:
        """Everything it made. The agents stop first, so that they start no flow container
        while the rest goes; the flow containers they started carry no compose label, only
        Prefect's, and keep their project's network busy until they are removed (a hop that
        failed with runs going left them, and the next `make e2e` refused that project)."""
        quiet = {"check": False, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        self.compose("stop", "--timeout", "5", "agent", **quiet)
        self.compose("stop", "--timeout", "5", "agent", agent=True, **quiet)
        for network in (self.name, self.agent_project):  # each project's network has its name
            flow_runs = output(
                "docker",
                "ps",
                "-aq",
                "--filter",
                f"network={network}",
                "--filter",
                "label=io.prefect.flow-run-id",
            ).split()
            if flow_runs:
                run("docker", "rm", "--force", *flow_runs, **quiet)
        run("docker", "rm", "--force", f"{self.agent_project}-users-api", f"{self.name}-hooks", **quiet)
        self.compose("down", "--timeout", "5", agent=True, **quiet)
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", **quiet)
        images = output("docker", "images", "--format", "{{.Repository}}:{{.Tag}}").split()
        flow_images = [image for image in images if image.split(":")[-2].endswith(self.flow_image)]
        run("docker", "rmi", "--force", self.env["PROJECT_IMAGE"], *flow_images, **quiet)
        if self.registry:
            self.registry.terminate()
            self.registry.wait()
