"""MAX_RUNNING (a flow package's deployment.py): the runs of a flow due now that may be
deployed without going over its limit; the others stay Scheduled and are taken at a
later poll, once one has ended."""

from collections import Counter
from typing import Callable, Iterable, List, Optional


class RunningLimit:
    """Counts, per flow, the runs the server has as Submitted or Running plus those this
    agent is deploying (they may still read as Scheduled). Two agents polling at the same
    moment may each start one: Prefect Server has no lock to take."""

    def __init__(self):
        self.deploying = {}  # run id -> flow key, from admission until the deployment ends
        self.told = set()  # run ids already told why they wait

    def admit(
        self,
        runs: Iterable,
        key_of: Callable[[object], Optional[str]],
        limit_of: Callable[[str], int],
        running_of: Callable[[object], set],
    ) -> tuple:
        """(admitted, held): `key_of` a run's flow key (None: no limit applies), `limit_of`
        a key's MAX_RUNNING (0: none), `running_of` the ids of the server's Submitted and
        Running runs of that run's flow. A run counts the others only: one the server hands
        back Running (a retry, or a state a person set) takes a place like any other."""
        admitted: List = []
        held: List = []
        started = Counter(self.deploying.values())
        for run in runs:
            key = key_of(run)
            limit = limit_of(key) if key else 0
            if limit and len(running_of(run) - set(self.deploying) - {run.id}) + started[key] >= limit:
                held.append(run)
                continue
            if key:
                started[key] += 1
                self.deploying[run.id] = key
            admitted.append(run)
        return admitted, held

    def first_wait(self, run_id: str) -> bool:
        """True the first time a run is held: it is told why once, not at every poll."""
        if run_id in self.told:
            return False
        self.told.add(run_id)
        return True

    def ended(self, run_id: str) -> None:
        """The agent's deployment of the run is over (the container started, or not)."""
        self.deploying.pop(run_id, None)
