"""A Dask cluster on loopback from the pinned distributed: a scheduler and n workers, each a
process that stops by itself (`timeout`). Used by the Dask tests and `make bench`."""

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port

BIN = Path(sys.executable).parent


@contextmanager
def local_cluster(workers: int, env: dict, folder: Path, threads: int = 2, lifetime: int = 180):
    """Yields the scheduler's address and the workers' log files once all have joined."""
    address = f"tcp://127.0.0.1:{free_port()}"
    host, port = address[6:].split(":")

    def start(args, log: Path) -> subprocess.Popen:
        return subprocess.Popen(
            ["timeout", str(lifetime), *map(str, args)],
            env=env,
            stdout=open(log, "w"),
            stderr=subprocess.STDOUT,
        )

    processes = [
        start(
            [BIN / "dask-scheduler", "--host", host, "--port", port, "--no-dashboard"],
            folder / "scheduler.log",
        )
    ]
    logs = [folder / f"worker-{n}.log" for n in range(workers)]
    try:
        processes += [
            start(
                [
                    BIN / "dask-worker",
                    address,
                    "--nthreads",
                    threads,
                    "--no-dashboard",
                    "--name",
                    f"worker-{n}",
                    "--local-directory",
                    folder,
                ],
                log,
            )
            for n, log in enumerate(logs)
        ]
        deadline = time.monotonic() + 60
        while sum("Registered to" in log.read_text() for log in logs) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError("the Dask workers did not join within 60 s")
            time.sleep(0.5)
        yield address, logs
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
