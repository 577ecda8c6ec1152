"""Helpers the hops of several topics share: a webhook receiver on the stack's network and the
alert it got, an agent on "another host" (`make agent`) and the address it reaches the stack at.
"""

import ipaddress
import json
import subprocess
import time
from pathlib import Path

from tests.programs.e2e_base import run
from tests.programs.e2e_stack import Stack, output


def start_receiver(stack: Stack) -> str:
    """A webhook receiver on the stack's network; returns its container's name."""
    name = f"{stack.name}-hooks"
    run(
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "--network",
        stack.name,
        "-v",
        f"{stack.dir}:/src:ro",
        "-w",
        "/src",
        "-e",
        "PYTHONPATH=/src",
        stack.env["PROJECT_IMAGE"],
        "python",
        "-m",
        "tests.support.webhook_receiver",
        "--host",
        "0.0.0.0",
        "--lifetime",
        "900",
        stdout=subprocess.DEVNULL,
    )
    return name


def webhook_url(receiver: str) -> str:
    """NOTIFY_WEBHOOK_URL for the receiver `start_receiver` started."""
    return f"http://{receiver}:8998/hooks/e2e/secret"


def the_alert(receiver: str, run_id: str) -> str:
    """The one alert the receiver got about the run, as text; the receiver is removed
    (later alerts fail quietly). Other runs may alert meanwhile: a scheduled run (every
    minute here) whose download the killed-container hop cut by restarting the users API."""
    deadline = time.monotonic() + 30
    while run_id not in (posted := output("docker", "logs", receiver)) and time.monotonic() < deadline:
        time.sleep(0.5)
    run("docker", "rm", "--force", receiver, stdout=subprocess.DEVNULL)
    texts = [
        "\n".join(block["text"]["text"] for block in json.loads(line)["blocks"])
        for line in posted.splitlines()
    ]
    (alert,) = [text for text in texts if f"/flow-run/{run_id}" in text]
    return alert


def docker_bridge() -> str:
    """This host's address on Docker's default bridge: what containers of other compose
    projects reach it at, as other hosts reach it on a team's network."""
    (subnet,) = json.loads(output("docker", "network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}"))
    return subnet.get("Gateway") or str(ipaddress.ip_network(subnet["Subnet"])[1])  # docker0's


def start_remote_agent(stack: Stack, api_url: str) -> Path:
    """`make agent` for the runs labelled e2e-remote, with its own reports folder and the
    offline users API on its network; returns the folder."""
    remote_reports = stack.dir.parent / "remote-reports"
    stack.agent_settings = {
        "AGENT_LABEL": "e2e-remote",
        "HOST_REPORTS_DIR": str(remote_reports),
        "PREFECT_API_URL": api_url,
    }
    stack.make("agent", **stack.agent_settings)
    # That host's own users API: the offline one, on the agent's network under its name.
    run(
        "docker",
        "run",
        "-d",
        "--name",
        f"{stack.agent_project}-users-api",
        "--network",
        stack.agent_project,
        "--network-alias",
        "users-api",
        stack.env["PROJECT_IMAGE"],
        "python",
        "-m",
        "demo.users_api",
        "--host",
        "0.0.0.0",
        "--port",
        "8999",
        "--lifetime",
        "600",
        stdout=subprocess.DEVNULL,
    )
    stack.wait_healthy("agent", agent=True)
    network = output(
        "docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", stack.container("agent", agent=True)
    )
    assert list(json.loads(network)) == [stack.agent_project], network
    return remote_reports


def stop_remote_agent(stack: Stack) -> None:
    run("docker", "rm", "--force", f"{stack.agent_project}-users-api", stdout=subprocess.DEVNULL)
    stack.make("agent-down", **stack.agent_settings)
    assert not stack.containers("agent", agent=True)
    gone = run("docker", "network", "inspect", stack.agent_project, check=False, capture_output=True)
    assert gone.returncode != 0, "make agent-down left its network"


def inside(stack: Stack, service: str, path: str, body: dict) -> dict:
    """A POST to apollo from inside the stack (`service`'s container), past the door, as any
    container on the stack's network can send it: what the agent's own checks must stop."""
    script = (
        "import json, sys, urllib.request as r\n"
        "request = r.Request(sys.argv[1], data=sys.stdin.buffer.read(), headers={'Content-Type': 'application/json'})\n"
        "print(r.urlopen(request, timeout=30).read().decode())\n"
    )
    answer = stack.compose(
        "exec", "-T", service, "python", "-c", script, f"http://apollo:4200{path}",
        input=json.dumps(body), capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(answer.stdout)
