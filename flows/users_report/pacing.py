"""Keeps the flow's downloads within the users API's limit.

randomuser.me serves each client address at most 20,000 users per fixed 5-minute window,
then answers 429 until the window ends (RandomAPI/Randomuser.me-Node ac8e874:
settings.json `limit`/`resetInterval`, routes/api.js, app.js). Every run on one host
shares that address, so every run writing to one reports folder shares one ledger there,
locked while it is read and written. The ledger keeps the users asked for during the last
window: counted over a sliding window, no fixed window of the API's, whatever its phase,
sees more than the budget. It also keeps the end of a pause after a 429.
"""

import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LEDGER_NAME = ".users-api-budget.json"


@dataclass(frozen=True)
class Budget:
    limit: int  # users per window; 0: the API has no limit
    window: float  # seconds
    ledger: Path

    def take(self, users: int) -> float:
        """Books `users` to be asked for now and returns 0, or returns the seconds to
        wait before asking again (nothing booked)."""
        if not self.limit and not self.ledger.exists():
            return 0.0
        with self._state() as state:
            now = time.time()
            paused = state.get("paused_until", 0.0) - now
            if paused > 0:
                return paused
            if not self.limit:
                return 0.0
            asked = [(at, n) for at, n in state.get("asked", []) if at > now - self.window]
            state["asked"] = asked
            excess = sum(n for _, n in asked) + users - self.limit
            if excess > 0 and asked:
                for at, n in asked:  # oldest first: wait until enough of them expire
                    excess -= n
                    if excess <= 0:
                        break
                return at + self.window - now
            asked.append((now, users))
            return 0.0

    def pause(self) -> float:
        """After a 429: nobody asks for one window, the longest the API's own window can
        last (it sends no Retry-After). Returns the seconds to wait."""
        with self._state() as state:
            until = max(state.get("paused_until", 0.0), time.time() + self.window)
            state["paused_until"] = until
            return until - time.time()

    @contextmanager
    def _state(self):
        with open(os.open(self.ledger, os.O_RDWR | os.O_CREAT, 0o644), "r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            try:
                state = json.loads(handle.read() or "{}")
            except ValueError:  # cut short by a killed run: start afresh
                state = {}
            yield state
            handle.seek(0)
            handle.truncate()
            json.dump(state, handle)


def minimum_wait(n_users: int, page_size: int, limit: int, window: float) -> float:
    """The least a run of `n_users` in pages of `page_size` must wait for the limit."""
    if not limit:
        return 0.0
    pages = -(-n_users // page_size)
    windows = -(-pages // (limit // page_size))
    return (windows - 1) * window
