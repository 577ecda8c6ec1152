"""The in-process path of a run, for the tests: register.py against the API stand-in, the
agent as agent/start.py builds it (a fake Docker client), and the container it would
create, run here with the container's environment."""

import json
import subprocess
import sys

import prefect
from prefect.utilities.configuration import set_temporary_config

from stack.settings import FLOW_REPORTS_DIR
from tests.support import run_module as run_program


def run_module(args, env, stdin=None):
    result = run_program(args, env, stdin)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def register(env, flow="users_report"):
    """register.py, for one flow package (None: all of them)."""
    return run_module(["register.py", "--skip-build", *(["--flow", flow] if flow else [])], env)


def users_report_registered(standin, reports_dir: str) -> str:
    """register.py's Users report in the stand-in, as a benchmark needs it: the flow's id."""
    registered = register(
        {
            "PREFECT__BACKEND": "server",
            "PREFECT__SERVER__HOST": "http://127.0.0.1",
            "PREFECT__SERVER__PORT": standin.url.rsplit(":", 1)[1],
            "HOST_REPORTS_DIR": reports_dir,
        }
    )
    assert registered.returncode == 0, registered.stderr
    return only_flow(standin)["id"]


def client(standin):
    """The real Client, talking to the stand-in instead of this process's configured API."""
    return set_temporary_config({"cloud.api": standin.url, "cloud.graphql": f"{standin.url}/graphql"})


def only_flow(standin):
    (flow,) = standin.tables["flow"].values()
    return flow


def agent_polls(env, polls=2, run_id=None):
    """The agent as agent/start.py builds it; the containers it would create, if any (only
    `run_id`'s, if given: a run of the schedule falls due when a test passes its hour)."""
    probe = json.loads(
        run_module(["-m", "tests.support.agent_probe", "poll", str(polls)], env)
        .stdout.strip()
        .splitlines()[-1]
    )
    creates = [kwargs for name, _, kwargs in probe["calls"] if name == "create_container"]
    return [c for c in creates if run_id in (None, c["environment"]["PREFECT__CONTEXT__FLOW_RUN_ID"])]


def start_container_here(create, env, **prefect_config) -> subprocess.Popen:
    """The container's command with the container's environment (plus `prefect_config`);
    /reports is the bound host folder, as the engine would make it. Its own process group,
    as a container's processes are, so that killing it kills its heartbeat process too."""
    ((host_dir, bind),) = create["host_config"]["binds"].items()
    assert bind == {"bind": FLOW_REPORTS_DIR, "mode": "rw"}
    container_env = {
        **create["environment"],
        "REPORTS_DIR": host_dir,
        "PATH": env["PATH"],
        "PYTHONPATH": env["PYTHONPATH"],
        **prefect_config,
    }
    assert create["command"] == "prefect execute flow-run"
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.run_flow_in_place"],
        cwd=env["PYTHONPATH"],
        env=container_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_container_here(create, env, **prefect_config) -> subprocess.CompletedProcess:
    container = start_container_here(create, env, **prefect_config)
    stdout, stderr = container.communicate(timeout=180)
    return subprocess.CompletedProcess(container.args, container.returncode, stdout, stderr)


def adhoc_run(standin, env, n_users, start=True, **prefect_config):
    """Registers, creates a run through the Client, lets the agent claim it and runs its
    container here (unless not to `start` it); returns the run's id, the container it
    created and the result."""
    register(env)
    with client(standin):
        run_id = prefect.Client().create_flow_run(
            flow_id=only_flow(standin)["id"], parameters={"n_users": n_users}
        )
    (create,) = agent_polls(env, run_id=run_id)
    assert states_of(standin, run_id) == ["Submitted"]
    return run_id, create, run_container_here(create, env, **prefect_config) if start else None


def task_runs(standin, run_id):
    names = {task["id"]: task["slug"] for task in standin.tables["task"].values()}
    return {
        (names[run["task_id"]], run["map_index"]): run
        for run in standin.tables["task_run"].values()
        if run["flow_run_id"] == run_id
    }


def states_of(standin, run_id):
    return [entry["type"] for entry in standin.tables["state_history"].values() if entry["run_id"] == run_id]
