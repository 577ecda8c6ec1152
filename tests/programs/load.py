"""Many runs at once through a stack, every loss explained: `make e2e`'s load hop, and by
hand on a stack of its own (offline, local images as make e2e makes them):

    python -m tests.programs.load --runs 50 --batches 8 [--users 1000]

A run is lost unless it ends Success with a report of exactly its users. For each lost
run it prints the run's and its task runs' states and messages, its logs, the agent's lines
about it, and its container's exit code and last lines (flow containers remove
themselves: a watch on Docker's events keeps them), then one line per batch.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from tests.programs.e2e_base import stack_images
from tests.programs.e2e_stack import Stack
from tests.programs.smoke import SmokeFailure


class ContainerWatch:
    """Each flow container's start time and exit code, and with a `folder` its output, by
    flow run id, from Docker's events as they come (the engine keeps only its last 256, which
    the health probes' execs soon push out)."""

    def __init__(self, folder: Optional[Path] = None):
        self.folder, self.started, self.exits, self.followers = folder, {}, {}, []
        if folder:
            folder.mkdir(parents=True, exist_ok=True)
        self.events = subprocess.Popen(
            [
                "docker",
                "events",
                "--format",
                "{{json .}}",
                "--filter",
                "type=container",
                "--filter",
                "label=io.prefect.flow-run-id",
                "--filter",
                "event=start",
                "--filter",
                "event=die",
                "--filter",
                "event=oom",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for line in self.events.stdout:
            event = json.loads(line)
            attributes = event["Actor"]["Attributes"]
            run_id = attributes["io.prefect.flow-run-id"]
            if event["Action"] == "start":
                self.started[run_id] = event["timeNano"] / 1e9
            if event["Action"] == "start" and self.folder:  # its output, before it removes itself
                with open(self.folder / f"{run_id}.log", "ab") as output:
                    self.followers.append(
                        subprocess.Popen(
                            ["docker", "logs", "--follow", event["Actor"]["ID"]],
                            stdout=output,
                            stderr=subprocess.STDOUT,
                        )
                    )
            elif event["Action"] != "start":
                self.exits.setdefault(run_id, []).append(
                    "killed for memory" if event["Action"] == "oom" else f"exit {attributes.get('exitCode')}"
                )

    def explain(self, run_id: str) -> str:
        log = self.folder / f"{run_id}.log"
        tail = (
            log.read_text(errors="replace").splitlines()[-15:] if log.exists() else ["(no container output)"]
        )
        exits = ", ".join(self.exits.get(run_id, [])) or "no container ended"
        return "\n".join([f"  container: {exits}"] + [f"  container {line}" for line in tail])

    def stop(self) -> None:
        for process in [self.events, *self.followers]:
            process.terminate()


def batch(stack: Stack, watch: ContainerWatch, runs: int, users: int, seconds: float = 900) -> tuple:
    """`runs` runs of `users` created at once; their count lost and the explanation of each."""
    run_ids = [stack.create_run({"n_users": users}) for _ in range(runs)]
    ended = stack.wait_for_runs(run_ids, seconds)
    lost = []
    for run_id in run_ids:
        problem = None
        if ended[run_id]["state"] != "Success":
            problem = f"ended {ended[run_id]['state']}"
        else:
            try:
                stack.report_of(run_id, users)
            except (AssertionError, SmokeFailure) as exc:
                problem = f"Success, but its report: {exc}"
        if problem:
            lost.append(f"{run_id}: {problem}\n{stack.explain(run_id)}\n{watch.explain(run_id)}")
    return len(lost), lost


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs created at once, per batch")
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--users", type=int, default=1000, help="n_users of each run")
    args = parser.parse_args(argv)
    _, images = stack_images()
    total_lost = 0
    with tempfile.TemporaryDirectory(prefix="load-") as work:
        stack = Stack("v2", images, Path(work), name="users-report-load")
        stack.refuse_if_in_use()
        watch = ContainerWatch(Path(work) / "containers")
        try:
            stack.make("up", "OFFLINE=1")
            for number in range(1, args.batches + 1):
                begun = time.monotonic()
                lost, explained = batch(stack, watch, args.runs, args.users)
                total_lost += lost
                for text in explained:
                    print(text, flush=True)
                print(
                    f"batch {number}: {args.runs} runs of {args.users:,} users, {lost} lost, "
                    f"{time.monotonic() - begun:.0f} s",
                    flush=True,
                )
        finally:
            watch.stop()
            stack.tear_down()
    print(f"{args.runs * args.batches} runs, {total_lost} lost")
    return 1 if total_lost else 0


if __name__ == "__main__":
    sys.exit(main())
