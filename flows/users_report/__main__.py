"""Runs the flow once, here, without a server: `python -m flows.users_report --n-users 50`;
with `--offline` (`make run OFFLINE=1`), against the offline users API, started on loopback
for the run and stopped after it.

Prints the report's path and exits 0, or prints one line saying why the run failed and
exits 1.
"""

import argparse
import contextlib
import os
import sys

from flows.shared.settings import SettingsError
from flows.users_report.deployment import check_settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-users", default="10", help="how many users (1 to 1,000,000)")
    parser.add_argument("--offline", action="store_true", help="against the offline users API, here")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.offline:
            from demo.users_api import DemoUsersAPI

            api = stack.enter_context(DemoUsersAPI(lifetime=0))
            os.environ.update(RANDOMUSER_URL=api.url, USERS_API_LIMIT="0")
            print(f"Runs against the offline users API at {api.url}", file=sys.stderr)
        return run(args.n_users)


def run(n_users: str) -> int:
    try:
        check_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from flows.users_report.flows import flow, report

    state = flow.run(parameters={"n_users": n_users}, run_on_schedule=False)
    if state.is_successful():
        print(state.result[report].result)
        return 0
    # The flow runner's own error (its executor could not start, say), or the run's reason.
    reason = state.result if isinstance(state.result, Exception) else state.message
    print(f"error: {str(reason).splitlines()[0]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
