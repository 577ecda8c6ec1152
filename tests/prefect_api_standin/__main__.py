"""Serves the stand-in: `python -m tests.prefect_api_standin --port 4200`."""

import argparse
import json
import signal
import threading
from pathlib import Path

from tests.prefect_api_standin.api import PrefectAPIStandIn


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Prefect API stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--lifetime", type=float, default=900.0, help="seconds before it stops")
    parser.add_argument(
        "--state-file",
        type=Path,
        help="keep the tables here across restarts, as the real server keeps "
        "them in Postgres: loaded at start, written when stopped",
    )
    args = parser.parse_args()
    standin = PrefectAPIStandIn()
    if args.state_file and args.state_file.exists():
        standin.tables = json.loads(args.state_file.read_text())
    standin.serve(args.host, args.port, args.lifetime)
    print(f"Prefect API stand-in at {standin.url} for {args.lifetime:g} s", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())  # `docker stop`, `compose down`
    stopped.wait(args.lifetime)
    if args.state_file:
        with standin.lock:
            args.state_file.write_text(json.dumps(standin.tables, default=str))


if __name__ == "__main__":
    main()
