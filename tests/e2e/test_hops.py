"""`make e2e`: the README's own commands, run for real on this machine's Docker engine, under
Compose v2 (`docker compose`, found by the Makefile as users have it) and then Compose v1
(Debian's `docker-compose` 1.29, where installed), one test per hop, in the order of a
stack's life: `make up OFFLINE=1` writes `.env`, builds, starts the stack and registers the
flows; then `make ps`, `make smoke`, runs through the API as the UI starts them, a code
change and `make register`, the registry, remote agents, the public front door, Dask, `make
down` and `make up` again, `make backup` and `make restore`, `make clean`, an external
PostgreSQL. A hop that fails skips the rest of its stack's hops: the stack is as the failure
left it.

Images (E2E_IMAGES): `upstream`, the stack's real images, where every one can be pulled;
else `local` (printed, with the image that could not be pulled), where only what cannot be
pulled is swapped, through COMPOSE_FILE (tests/programs/docker-compose.placeholders.yml):
postgres is Debian's PostgreSQL started as the official image starts, caddy Debian's, the
base image a Debian bullseye rootfs, hasura, graphql, towel and ui are placeholders, and
apollo is the Prefect API stand-in, which runs towel's recovery on request instead of on
towel's 10-minute clock. Everything else (the project image and the flow image built by
Prefect's Docker storage, the real DockerAgent starting flow containers, the offline users
API, reports on this host) is the user's.

Some hops: `make e2e HOPS=housekeeping` (a pytest -k expression): a hop run alone gets a
stack that is up, as `make up OFFLINE=1` leaves it; each hop leaves it so.
"""

import pytest

from tests.e2e.hops import HOPS, OWN_START, WITH_REGISTRY
from tests.programs.e2e_base import run

# A hop waits for its own runs with its own deadlines; this only stops one that hangs.
pytestmark = pytest.mark.timeout(1800)


@pytest.mark.parametrize("title, hop", HOPS, ids=[hop.__name__ for _, hop in HOPS])
def test_hop(stack, title, hop, record_property):
    if stack.failed_hop:
        pytest.skip(f"the hop {stack.failed_hop!r} failed first")
    try:
        if hop not in OWN_START:
            stack.up(registry=hop in WITH_REGISTRY)
        detail = hop(stack)
    except BaseException:
        stack.failed_hop = hop.__name__
        stack.compose("logs", "--tail=40", "apollo", "agent", "proxy", check=False)
        run("docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={stack.name}",
            "--format", "{{.Names}}  {{.Status}}", check=False)  # fmt: skip
        raise
    record_property("detail", f"{title}: {detail}" if detail else title)
