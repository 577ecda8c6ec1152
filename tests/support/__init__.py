"""What the tests and the programs behind `make smoke`, `make e2e` and `make bench` share."""

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_module(args, env: dict, stdin=None, timeout=180) -> subprocess.CompletedProcess:
    """A program of this checkout, in a process with only the given environment (plus PATH
    and this checkout on PYTHONPATH); of another checkout (a copy) if env's PYTHONPATH
    names one: it runs there."""
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, *args],
        cwd=env["PYTHONPATH"],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def users_report_entry(dry_run_output: str) -> dict:
    """The "Users report" flow's entry in `register.py --dry-run`'s output."""
    import json

    (entry,) = [flow for flow in json.loads(dry_run_output)["flows"] if flow["name"] == "Users report"]
    return entry
