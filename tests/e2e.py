"""`make e2e`: the stack's own services on this machine's Docker engine, launching real flow
containers, with only Prefect Server replaced by the API stand-in in apollo's place.

From the service definitions users get (docker-compose.yml, plus tests/docker-compose.e2e.yml
for apollo): the project image is built, `register` builds the flow image with Prefect's
Docker storage and registers it, the real DockerAgent starts flow containers on the
stack's network, and reports land in a folder of this host. Each hop is printed as it
passes, and once more at the end. Everything it started is removed, even after a failure.

No image can be pulled here, so the project image is built on a local base image, made
once and cached by the requirements' hash: a Debian bullseye rootfs (Python 3.9, as the
official base) from debootstrap, the requirements installed into a venv in it from wheels
downloaded on the host (containers cannot reach a package index here), then `docker
import`. Making it needs root (debootstrap, chroot).
"""
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from flows.users_report.demo_api import free_port
from tests.smoke import check_report

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "users-report-e2e"
PROJECT_IMAGE = f"{PROJECT}:latest"
FLOW_IMAGE = f"{PROJECT}-flow"
VENV_PATH = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the stand-in needs besides the runtime requirements; typing-extensions is only
# required by graphql-core on Python < 3.10, which pip on this host's newer Python skips.
STANDIN_REQUIREMENTS = [
    line for line in (ROOT / "requirements-dev.txt").read_text().splitlines()
    if line.startswith("graphql-core==")
] + ["typing-extensions>=4,<5", "wheel"]


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    return subprocess.run([str(arg) for arg in args], **kwargs)


def output(*args, **kwargs) -> str:
    return run(*args, capture_output=True, text=True, **kwargs).stdout.strip()


def base_image() -> str:
    """The local base image's tag; makes it when it is not there yet."""
    recipe = (ROOT / "requirements.txt").read_bytes() + "\n".join(STANDIN_REQUIREMENTS).encode()
    tag = f"users-report-base:py39-{hashlib.sha256(recipe).hexdigest()[:12]}"
    if run("docker", "image", "inspect", tag, check=False, capture_output=True).returncode == 0:
        print(f"   {tag} is cached")
        return tag
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise SystemExit(f"e2e: making the base image {tag} needs root and debootstrap "
                         "(apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="e2e-base-") as work:
        rootfs, wheels = Path(work) / "rootfs", Path(work) / "rootfs" / "tmp" / "wheels"
        run("debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
            "bullseye", rootfs, stdout=subprocess.DEVNULL)
        shutil.copy(ROOT / "requirements.txt", rootfs / "tmp" / "requirements.txt")
        run(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
            "--python-version", "3.9", "--implementation", "cp", "--platform",
            "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64", "--dest", wheels,
            "-r", ROOT / "requirements.txt", *STANDIN_REQUIREMENTS)
        quoted = " ".join(f"'{requirement}'" for requirement in STANDIN_REQUIREMENTS)
        run("chroot", rootfs, "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c",
            "python3 -m venv /opt/venv && /opt/venv/bin/pip install --quiet --no-index "
            f"--find-links /tmp/wheels -r /tmp/requirements.txt {quoted}")
        shutil.rmtree(wheels)
        shutil.rmtree(rootfs / "var" / "cache" / "apt", ignore_errors=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run("docker", "import", "--change", f"ENV PATH={VENV_PATH}", "--change", "ENV LANG=C.UTF-8",
            # No container reaches a package index here: pip settles for what is installed
            # (Prefect's Docker storage runs `pip install pip --upgrade`) instead of failing.
            "--change", "ENV PIP_NO_INDEX=1", "--change", 'CMD ["python3"]', "-", tag,
            stdin=tar.stdout, stdout=subprocess.DEVNULL)
        tar.wait()
    print(f"   made {tag}")
    return tag


def image_size(image: str) -> str:
    return f"{int(output('docker', 'image', 'inspect', '-f', '{{.Size}}', image)) / 2**20:.0f} MiB"


class Stack:
    """The e2e compose project: its environment, its commands, its stand-in."""

    def __init__(self, reports: Path, base: str):
        self.reports = reports
        self.app_uid = os.getuid() or 1000
        self.apollo_port = free_port()
        self.env = {
            "PATH": os.environ["PATH"],
            "POSTGRES_PASSWORD": secrets.token_hex(16),
            "HASURA_ADMIN_SECRET": secrets.token_hex(16),
            "HOST_REPORTS_DIR": str(reports), "APP_UID": str(self.app_uid),
            "BASE_IMAGE": base, "PROJECT_IMAGE": PROJECT_IMAGE, "FLOW_IMAGE": FLOW_IMAGE,
            "PREFECT_NETWORK": PROJECT, "APOLLO_PORT": str(self.apollo_port),
            "RANDOMUSER_URL": "http://users-api:8999/api/",
            "SCHEDULE_CRON": "* * * * *", "SCHEDULE_N_USERS": "5",
            "HTTP_RETRIES": "1", "HTTP_RETRY_DELAY": "1",
        }
        if "DOCKER_HOST" in os.environ:
            self.env["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
        self.api = f"http://127.0.0.1:{self.apollo_port}"

    def compose(self, *args, **kwargs):
        return run("docker-compose", "--project-name", PROJECT, "--project-directory", ROOT,
                   "-f", ROOT / "docker-compose.yml", "-f", ROOT / "tests" / "docker-compose.e2e.yml",
                   "--profile", "offline", *args, env=self.env, **kwargs)

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service, capture_output=True, text=True).stdout.strip()

    def wait_healthy(self, service: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status = output("docker", "inspect", "-f", "{{.State.Health.Status}}", self.container(service))
            if status == "healthy":
                return
            time.sleep(1)
        raise AssertionError(f"{service} is not healthy after {seconds:g} s ({status})")

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.api}/standin/state", timeout=10) as response:
            return json.load(response)["tables"]

    def wait_for_run(self, run_id: str, seconds: float = 180) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            flow_run = self.state()["flow_run"][run_id]
            if flow_run["state"] in {"Success", "Failed"}:
                return flow_run
            time.sleep(1)
        raise AssertionError(f"run {run_id} still {flow_run['state']} after {seconds:g} s")

    def create_run(self, **kwargs) -> str:
        import prefect
        from prefect.utilities.configuration import set_temporary_config

        flow_id = next(flow["id"] for flow in self.state()["flow"].values() if not flow["archived"])
        with set_temporary_config({"backend": "server", "cloud.api": self.api,
                                   "cloud.graphql": f"{self.api}/graphql"}):
            return prefect.Client().create_flow_run(flow_id=flow_id, **kwargs)

    def report_of(self, run_id: str, n_users: int) -> str:
        assert len(list(self.reports.glob(f"users-report-*-{run_id[:8]}.csv"))) == 1
        report = check_report(self.reports, run_id, n_users)  # the run's, with n_users rows
        owner = report.stat().st_uid
        assert owner == self.app_uid, f"{report.name} belongs to uid {owner}, not {self.app_uid}"
        report.unlink()  # the host user can delete it
        return f"{report.name}: {n_users} rows, owner uid {owner}"

    def tear_down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        images = output("docker", "images", "--format", "{{.Repository}}:{{.Tag}}", FLOW_IMAGE).split()
        run("docker", "rmi", "--force", PROJECT_IMAGE, *images, check=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def build(stack: Stack) -> str:
    stack.compose("build", "--quiet", "agent")
    return f"{PROJECT_IMAGE}, {image_size(PROJECT_IMAGE)}"


def hasura_probe(stack: Stack) -> None:
    """Hasura's image may lack wget and curl, and so does ours: its health probe must
    still tell a listening server from none."""
    config = yaml.safe_load(stack.compose("config", capture_output=True, text=True).stdout)
    probe = config["services"]["hasura"]["healthcheck"]["test"][1]
    script = f"({probe}) && exit 9; python -m http.server 3000 >/dev/null 2>&1 & sleep 2; {probe}"
    code = run("docker", "run", "--rm", PROJECT_IMAGE, "sh", "-c", script, check=False).returncode
    assert code == 0, f"the probe answered {code} (9: healthy with nothing listening)"


def up(stack: Stack) -> None:
    stack.compose("up", "--detach", "--no-deps", "apollo", "users-api", "agent")
    for service in ("apollo", "users-api", "agent"):
        stack.wait_healthy(service)


def register(stack: Stack) -> str:
    stack.compose("run", "--rm", "--no-deps", "register")
    (flow,) = [flow for flow in stack.state()["flow"].values() if not flow["archived"]]
    image = f"{FLOW_IMAGE}:{flow['storage']['image_tag']}"
    user = output("docker", "image", "inspect", "-f", "{{.Config.User}}", image)
    assert user == "app", f"{image} runs as {user!r}"
    leftovers = output("docker", "ps", "--all", "--quiet", "--filter", f"ancestor={PROJECT_IMAGE}",
                       "--filter", "status=exited", "--filter", "status=created")
    assert not leftovers, f"the flow image's build left containers behind: {leftovers}"
    return f"{image}, {image_size(image)}, runs as {user}"


def successful_run(stack: Stack, n_users: int) -> str:
    run_id = stack.create_run(parameters={"n_users": n_users})
    flow_run = stack.wait_for_run(run_id)
    assert flow_run["state"] == "Success", flow_run["state_message"]
    return stack.report_of(run_id, n_users)


def scheduled(stack: Stack) -> str:
    with urllib.request.urlopen(urllib.request.Request(
            f"{stack.api}/standin/schedule?count=1", method="POST"), timeout=10) as answer:
        assert json.load(answer)["created"] == 1
    (run_id,) = [run["id"] for run in stack.state()["flow_run"].values() if run["auto_scheduled"]]
    flow_run = stack.wait_for_run(run_id, seconds=150)
    assert flow_run["state"] == "Success", flow_run["state_message"]
    assert flow_run["parameters"] == {"n_users": 5}
    return stack.report_of(run_id, 5)


def zero_users(stack: Stack) -> str:
    run_id = stack.create_run(parameters={"n_users": 0})
    assert stack.wait_for_run(run_id)["state"] == "Failed"
    messages = [task_run["state_message"] for task_run in stack.state()["task_run"].values()
                if task_run["flow_run_id"] == run_id and task_run["state"] == "Failed"]
    reason = next((m for m in messages if m.startswith("n_users must be a whole number")), None)
    assert reason, messages
    assert not list(stack.reports.glob(f"users-report-*-{run_id[:8]}.csv"))
    return reason


def agent_restart(stack: Stack) -> str:
    run("docker", "restart", stack.container("agent"), stdout=subprocess.DEVNULL)
    stack.wait_healthy("agent")
    return successful_run(stack, 3)


HOPS = [
    ("project image built by compose", build),
    ("hasura's health probe, in an image without wget or curl", hasura_probe),
    ("stand-in, users API and agent healthy", up),
    ("register built the flow image and registered", register),
    ("ad-hoc run of 37 users", lambda stack: successful_run(stack, 37)),
    ("scheduled run of the schedule's 5 users", scheduled),
    ("n_users=0 fails clearly, writes nothing", zero_users),
    ("agent restarted, claims the next run", agent_restart),
]


def main() -> int:
    started = time.monotonic()
    passed = {}

    def hop(name, check):
        """Runs one hop, printing it; what it returns is its detail."""
        print(f"-> {name}", flush=True)
        begun = time.monotonic()
        detail = check()
        passed[name] = f"{time.monotonic() - begun:.0f} s" + (f", {detail}" if detail else "")
        print(f"   passed ({passed[name]})", flush=True)
        return detail

    reports = Path(tempfile.mkdtemp(prefix="e2e-reports-"))
    stack = None
    try:
        stack = Stack(reports, hop("base image", base_image))
        if os.getuid() == 0:
            os.chown(reports, stack.app_uid, stack.app_uid)
        for name, check in HOPS:
            hop(name, lambda: check(stack))
    except (Exception, SystemExit) as exc:  # report the hop, tear down, go on to the summary
        print(f"   FAILED: {exc!r}", flush=True)
        if stack:
            stack.compose("logs", "--tail=60", "apollo", "agent", check=False)
    finally:
        if stack:
            stack.tear_down()
        shutil.rmtree(reports, ignore_errors=True)
    print(f"\nmake e2e, {time.monotonic() - started:.0f} s:")
    names = ["base image"] + [name for name, _ in HOPS]
    for name in names:
        print(f"  {'PASS' if name in passed else 'FAIL'}  {name}  {passed.get(name, '')}")
    return 0 if len(passed) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
