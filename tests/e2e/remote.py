"""Hops of code and agents elsewhere: a code change and `make register`, the registry, an
agent on another host.
"""

import json
import re
import subprocess
import time
import urllib.error
import urllib.request

from tests.e2e.helpers import docker_bridge, start_remote_agent, stop_remote_agent
from tests.e2e.runs import smoke
from tests.programs.e2e_base import run
from tests.programs.e2e_stack import Stack, output
from tests.programs.smoke import check_report


def edit_flow_line(stack: Stack, mark: str) -> None:
    """A one-line change to the "Users report" flow: its last message gets `mark`."""
    tasks = stack.dir / "flows" / "users_report" / "tasks.py"
    tasks.write_text(
        re.sub(
            r'log\(f"Dados salvos em report.csv com sucesso!( \([^)]*\))?',
            f'log(f"Dados salvos em report.csv com sucesso! ({mark})',
            tasks.read_text(),
            count=1,
        )
    )


# What each command of `make register`'s recipe is, by a word of it.
RECIPE_STEPS = ("check", "build", "up", "exec")


def timed_register(stack: Stack) -> dict:
    """A one-line change to the flow's code (`mark`, never built before: the engine keeps
    layers between e2e runs, and a cached one would make the build look free), then `make
    register` command by command of its recipe, each timed (`parts`), then its floor:
    `docker build` of one more one-line edit, warm cache."""
    mark = f"e2e {time.time_ns():x}"
    edit_flow_line(stack, mark)
    commands = [line for line in stack.make("-n", "register").stdout.splitlines() if line.strip()]
    parts = []
    for command in commands:
        begun = time.monotonic()
        printed = run(
            "sh", "-c", command, cwd=stack.dir, env=stack.env, capture_output=True, text=True
        ).stdout
        step = next(word for word in command.split() if word in RECIPE_STEPS)
        parts.append((step, time.monotonic() - begun))
    image, registration = re.search(
        r"^Users report: image \S+ made in (\S+) s, registered in (\S+) s$", printed, re.M
    ).groups()
    total = sum(seconds for _, seconds in parts)
    floor = docker_build_floor(stack, mark)
    return {"mark": mark, "seconds": total, "floor": floor, "ratio": total / floor, "parts": parts,
            "flow image": float(image), "registration": float(registration)}  # fmt: skip


def code_change(stack: Stack) -> str:
    """A change to the flow's code, then `make register`: a new version on a new image,
    and runs use it (the changed log line shows in their logs). Its wait, next to its floor."""
    before = stack.active_flow()
    timed = timed_register(stack)
    after = stack.active_flow()
    assert after["version"] == before["version"] + 1, (before["version"], after["version"])
    tag = after["storage"]["image_tag"]
    assert tag != before["storage"]["image_tag"]
    output("docker", "image", "inspect", f"{stack.flow_image}:{tag}")
    smoke(stack, 11)
    (run_id,) = stack.runs({"flow_id": {"_eq": after["id"]}, "auto_scheduled": {"_eq": False}})
    logs = stack.logs(run_id)
    assert any(f"com sucesso! ({timed['mark']})" in message for message in logs), stack.explain(run_id)
    parts = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in timed["parts"])
    return (
        f"make register {timed['seconds']:.1f} s = {timed['ratio']:.2f}x its floor ({timed['floor']:.1f} s, "
        f"docker build): {parts}; in the last, the flow image {timed['flow image']:g} s, registration "
        f"{timed['registration']:g} s; version {after['version']}, image tag {tag}"
    )


def docker_build_floor(stack: Stack, mark: str) -> float:
    """Seconds `docker build` takes for a one-line flow edit on a warm cache: built once to
    warm it (Compose's build contexts do not hit the CLI's cache), then after the edit;
    then the edit `mark`, as registered, is put back."""
    tag = f"{stack.name}-floor"
    build = (
        "docker", "build", "--quiet", "--tag", tag, "--build-arg", f"BASE_IMAGE={stack.base_image}",
        "--build-arg", f"APP_UID={stack.app_uid}", str(stack.dir),
    )  # fmt: skip
    run(*build, stdout=subprocess.DEVNULL)
    edit_flow_line(stack, f"{mark} floor")
    begun = time.monotonic()
    run(*build, stdout=subprocess.DEVNULL)
    took = time.monotonic() - begun
    run("docker", "rmi", tag, stdout=subprocess.DEVNULL)
    edit_flow_line(stack, mark)
    return took


def registry(stack: Stack) -> str:
    """REGISTRY_URL set, `make up` (the stack of WITH_REGISTRY's hops): the flow image goes
    to the registry and its local copy is deleted; the agent pulls it to run the next run."""
    address = stack.env["REGISTRY_URL"]
    flow = stack.active_flow()
    image = f"{address}/{stack.flow_image}:{flow['storage']['image_tag']}"
    assert flow["storage"]["registry_url"] == address, flow["storage"]
    with urllib.request.urlopen(f"http://{address}/v2/_catalog", timeout=10) as answer:
        assert json.load(answer)["repositories"] == [stack.flow_image]
    local = run("docker", "image", "inspect", image, check=False, capture_output=True)
    assert local.returncode != 0, f"{image} is still on this host after its push"
    smoke(stack, 9)
    output("docker", "image", "inspect", image)  # pulled by the agent
    return f"pushed {image}, local copy gone, pulled by the agent for a run"


def remote_agent(stack: Stack) -> str:
    """`make agent` with its own compose project and network, reaching the API only at the
    address the stack publishes it on (APOLLO_BIND: this host's Docker bridge address) and
    pulling from the registry: it claims the run a person labelled for it on the Run page;
    the stack's agent does not."""
    bridge = docker_bridge()
    with stack.settings(APOLLO_BIND=bridge):
        stack.make("up")
        remote_reports = start_remote_agent(stack, f"http://{bridge}:{stack.apollo_port}")
        run_id = stack.create_run({"n_users": 13}, labels=["e2e-remote"])
        flow_run = stack.wait_for_runs([run_id])[run_id]
        assert flow_run["state"] == "Success", stack.explain(run_id)
        check_report(remote_reports, run_id, 13)
        assert not list(stack.reports.glob(f"users-report-*-{run_id[:8]}.csv"))
        logs = {
            agent: stack.compose(
                "logs", "--no-color", "agent", agent=agent, capture_output=True, text=True
            ).stdout
            for agent in (False, True)
        }
        assert run_id in logs[True] and run_id not in logs[False], "the run was not the remote agent's"
        stop_remote_agent(stack)
    stack.make("up")
    return f"claimed by the remote agent via {bridge}:{stack.apollo_port}, report in its own folder"
