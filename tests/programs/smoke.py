"""`make smoke N_USERS=n`: one ad-hoc run through the running stack, checked end to end.

Creates a run of the registered "Users report" flow with `n_users`=n through the Prefect
API, follows it, and exits 0 only if it ends Success and its report on the host has
exactly n rows. Otherwise one line says which hop failed. Reads the API's address from
PREFECT__SERVER__HOST/PORT and the reports folder from HOST_REPORTS_DIR (the Makefile
passes them from .env).
"""

import argparse
import csv
import os
import sys
import time
import urllib.request
from pathlib import Path

import prefect
from prefect.utilities.graphql import EnumValue, with_args

FLOW_NAME = "Users report"
FINISHED = {"Success", "Failed", "Cancelled", "TimedOut"}


class SmokeFailure(Exception):
    """One hop of the run's path failed; the message says which and what to look at."""


def check_api() -> None:
    url = f"{prefect.config.server.endpoint}/.well-known/apollo/server-health"
    try:
        urllib.request.urlopen(url, timeout=10).close()
    except OSError as exc:
        raise SmokeFailure(
            f"the Prefect API does not answer at {url} ({exc}): is the stack up? (make up, make ps)"
        ) from None


def registered_flow_id(client: prefect.Client) -> str:
    where = {"name": {"_eq": FLOW_NAME}, "archived": {"_eq": False}}
    flows = client.graphql({"query": {with_args("flow", {"where": where}): {"id"}}}).data.flow
    if not flows:
        raise SmokeFailure(f"the flow {FLOW_NAME!r} is not registered (make register)")
    return flows[0].id


def follow(client: prefect.Client, run_id: str, claim_timeout: float, timeout: float) -> None:
    """Prints each new state; returns when the run succeeded."""
    query = {
        "query": {
            with_args("flow_run_by_pk", {"id": run_id}): {
                "state": True,
                "state_message": True,
                # The first task that failed says why; the ones after failed because of it.
                with_args(
                    "task_runs",
                    {"where": {"state": {"_eq": "Failed"}}, "order_by": {"end_time": EnumValue("asc")}},
                ): {"state_message"},
            }
        }
    }
    started, last = time.monotonic(), None
    while True:
        run = client.graphql(query).data.flow_run_by_pk
        waited = time.monotonic() - started
        if run.state != last:
            print(f"  {waited:5.0f} s  {run.state}", flush=True)
            last = run.state
        if run.state == "Success":
            return
        if run.state in FINISHED:
            reasons = [task.state_message for task in run.task_runs] or [run.state_message]
            raise SmokeFailure(f"the run ended {run.state}: {reasons[0]}")
        if run.state == "Scheduled" and waited > claim_timeout:
            raise SmokeFailure(
                f"no agent claimed the run within {claim_timeout:g} s: is the agent healthy "
                "(make ps) and does its label match the flow's (AGENT_LABEL)?"
            )
        if waited > timeout:
            raise SmokeFailure(
                f"the run did not finish within {timeout:g} s (still {run.state}): "
                "see its logs in the UI or make logs"
            )
        time.sleep(1)


def check_report(reports_dir: Path, run_id: str, n_users: int) -> Path:
    reports = sorted(reports_dir.glob(f"users-report-*-{run_id[:8]}.csv"))
    if not reports:
        raise SmokeFailure(
            f"the run succeeded but left no report in {reports_dir} "
            "(is HOST_REPORTS_DIR the folder the agent binds?)"
        )
    with open(reports[-1], newline="", encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    if rows != n_users:
        raise SmokeFailure(f"the report {reports[-1]} has {rows} rows, not {n_users}")
    return reports[-1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-users", type=int, default=10)
    parser.add_argument(
        "--claim-timeout", type=float, default=60.0, help="seconds an agent may take to claim the run"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds the run may take in all")
    args = parser.parse_args(argv)
    reports_dir = Path(os.environ.get("HOST_REPORTS_DIR") or "reports")
    try:
        check_api()
        client = prefect.Client()
        run_id = client.create_flow_run(
            flow_id=registered_flow_id(client),
            parameters={"n_users": args.n_users},
            run_name=f"smoke-{args.n_users}-users",
        )
        print(f"smoke: run {run_id} of {FLOW_NAME!r} with n_users={args.n_users}", flush=True)
        follow(client, run_id, args.claim_timeout, args.timeout)
        report = check_report(reports_dir, run_id, args.n_users)
    except SmokeFailure as failure:
        print(f"smoke failed: {failure}", file=sys.stderr)
        return 1
    print(f"smoke passed: {report} has {args.n_users} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
