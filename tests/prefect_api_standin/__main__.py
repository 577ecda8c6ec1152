"""Serves the stand-in: `python -m tests.prefect_api_standin --port 4200`."""

import argparse
import os
import signal
import threading

from tests.prefect_api_standin.api import PrefectAPIStandIn
from tests.prefect_api_standin.store import keep_in


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the Prefect API stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--lifetime", type=float, default=900.0, help="seconds before it stops")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("STANDIN_DATABASE_URL"),  # not in argv: it holds a password
        help="keep the tables in this PostgreSQL database, as the real server keeps them "
        "(tests/prefect_api_standin/store.py); without it, in memory only",
    )
    args = parser.parse_args()
    standin = PrefectAPIStandIn()
    stopped = threading.Event()
    kept = keep_in(standin, args.database_url, stopped) if args.database_url else None
    standin.serve(args.host, args.port, args.lifetime)
    print(f"Prefect API stand-in at {standin.url} for {args.lifetime:g} s", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())  # `docker stop`, `compose down`
    stopped.wait(args.lifetime)
    stopped.set()
    if kept:
        kept.join()


if __name__ == "__main__":
    main()
