"""Runs the flow once, here, without a server: `python -m flows.users_report --n-users 50`.

Prints the report's path and exits 0, or prints one line saying why the run failed and
exits 1.
"""
import argparse
import sys

from prefect.engine.state import TriggerFailed


def failure_reason(flow, flow_state) -> str:
    """The message of the first task that failed by itself (not because an upstream did),
    or the flow runner's own error (its executor could not start, say)."""
    if isinstance(flow_state.result, Exception):
        return str(flow_state.result).splitlines()[0]
    for task in flow.sorted_tasks():
        state = flow_state.result.get(task)
        if state is None:
            continue
        for attempt in (state.map_states if state.is_mapped() else [state]):
            if attempt.is_failed() and not isinstance(attempt, TriggerFailed):
                return attempt.message
    return flow_state.message


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-users", default="10", help="how many users (1 to 1,000,000)")
    args = parser.parse_args(argv)
    try:
        from flows.users_report.flows import flow, report
    except ValueError as exc:  # a bad setting in the environment
        print(f"error: {exc}", file=sys.stderr)
        return 2
    state = flow.run(parameters={"n_users": args.n_users}, run_on_schedule=False)
    if state.is_successful():
        print(state.result[report].result)
        return 0
    print(f"error: {failure_reason(flow, state)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
