"""`make smoke` (tests/programs/smoke.py) following a run through the stand-in, and naming
the hop that failed."""

import subprocess
import sys
import time

import pytest

from tests.support import ROOT, free_port
from tests.support.agent_runs import (
    agent_polls,
    register,
    run_container_here,
)


def start_smoke(env, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.programs.smoke", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_a_run(standin, seconds=60):
    deadline = time.monotonic() + seconds
    while not standin.tables["flow_run"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert standin.tables["flow_run"], "smoke created no run"


@pytest.mark.parametrize(
    "n_users, outcome",
    [
        (23, "smoke passed: "),
        (0, "smoke failed: the run ended Failed: n_users must be a whole number from 1 to 1,000,000"),
    ],
)
def test_smoke_follows_a_run_through_agent_and_report(n_users, outcome, standin, stack_env):
    register(stack_env)
    smoke = start_smoke(stack_env, "--n-users", str(n_users))
    wait_for_a_run(standin)
    (create,) = agent_polls(stack_env)
    run_container_here(create, stack_env)

    stdout, stderr = smoke.communicate(timeout=60)

    assert smoke.returncode == (0 if n_users else 1), stdout + stderr
    assert outcome in (stdout + stderr)
    assert "Submitted" in stdout and ("Success" in stdout or "Failed" in stdout)
    if n_users:
        assert stdout.strip().endswith(f"has {n_users} rows")


def test_smoke_says_which_hop_failed(standin, stack_env):
    closed = {**stack_env, "PREFECT__SERVER__PORT": str(free_port())}
    checks = [
        (closed, [], "smoke failed: the Prefect API does not answer at http://127.0.0.1:"),
        (stack_env, [], "smoke failed: the flow 'Users report' is not registered (make register)"),
    ]
    for env, args, message in checks:
        smoke = start_smoke(env, *args)
        _, stderr = smoke.communicate(timeout=60)
        assert smoke.returncode == 1 and stderr.startswith(message), stderr

    register(stack_env)
    smoke = start_smoke(stack_env, "--claim-timeout", "1")
    _, stderr = smoke.communicate(timeout=60)
    assert smoke.returncode == 1
    assert stderr.startswith("smoke failed: no agent claimed the run within 1 s"), stderr
