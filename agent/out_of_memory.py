"""Flow containers the kernel killed for their memory limit: the run ends Failed saying so
(its alert fires), where it would otherwise wait for the server's zombie killer."""

import time
from typing import Callable, Iterator, Optional, Tuple

# Docker's events of a flow container (DockerAgent labels each with its run and flow).
EVENT_FILTERS = {"type": "container", "event": "oom", "label": "io.prefect.flow-run-id"}


def killed_runs(events) -> Iterator[Tuple[str, Optional[str]]]:
    """(flow run id, flow id) of each out-of-memory event of a flow container."""
    for event in events:
        labels = event.get("Actor", {}).get("Attributes", {})
        if "io.prefect.flow-run-id" in labels:
            yield labels["io.prefect.flow-run-id"], labels.get("io.prefect.flow-id")


def watch(docker_client: Callable, fail_run: Callable, logger, pause: float = 10) -> None:
    """Calls `fail_run(run_id, flow_id)` for each kill, for ever: Docker's events are
    watched again `pause` seconds after their stream ends (the engine restarted)."""
    while True:
        try:
            for run_id, flow_id in killed_runs(docker_client().events(decode=True, filters=EVENT_FILTERS)):
                try:
                    fail_run(run_id, flow_id)
                except Exception:  # the API is down: the zombie killer still ends the run
                    logger.error("Could not fail an out-of-memory run", exc_info=True)
        except Exception:
            logger.warning(
                f"Lost Docker's events: out-of-memory kills are told again in {pause:g} s", exc_info=True
            )
        time.sleep(pause)
