"""A PostgreSQL server of this machine's own (Debian's package), in a temporary folder on a
loopback port, for the tests of what the stack keeps in its database; stopped and removed
after. As root it runs as the `postgres` user, which initdb demands."""

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tests.support import free_port


def binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL server here: apt-get install postgresql")
    return found[-1].parent


@contextmanager
def temporary_postgres():
    """Yields the URL of an empty database `door_test` on a fresh server."""
    folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    port, data = free_port(), folder / "data"
    bin_dir = binaries()

    def quietly(*args):
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=60)

    quietly(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    server = subprocess.Popen(
        [
            *as_user,
            bin_dir / "postgres",
            "-D",
            data,
            "-p",
            str(port),
            "-k",
            folder,
            "-c",
            "listen_addresses=127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([bin_dir / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode:
            assert time.monotonic() < deadline and server.poll() is None, "the test PostgreSQL did not start"
            time.sleep(0.1)
        quietly(bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "door_test")
        yield f"postgresql://postgres@127.0.0.1:{port}/door_test"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
