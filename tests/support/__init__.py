"""What the tests and the programs behind `make smoke`, `make e2e` and `make bench` share."""

import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServedForAWhile:
    """A socketserver served from a thread until `stop()`, or by itself after `lifetime` s."""

    def serve(self, server, lifetime: float) -> None:
        self._server = server
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()


def copy_of_checkout(destination: Path) -> Path:
    """This checkout's files at `destination`, without git's, the venv's or what runs leave."""
    ignored = (".git", ".venv", "__pycache__", ".pytest_cache", "reports", "backups")
    shutil.copytree(ROOT, destination, ignore=shutil.ignore_patterns(*ignored))
    return destination


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
