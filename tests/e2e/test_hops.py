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

The hops live in modules by topic (start, runs, alerts, recovery, front_door, remote,
database, load; helpers.py what several share); HOPS below is their order. Some hops: `make
e2e HOPS=housekeeping` (a pytest -k expression; `pytest tests/e2e -k housekeeping` alike): a
hop run alone gets a stack that is up, as `make up OFFLINE=1` leaves it; each hop leaves it so.
"""

import pytest

from tests.e2e.alerts import alerts
from tests.e2e.database import (
    HOUSEKEEPING_WAVES,
    backup_and_restore,
    clean,
    down_and_up,
    external_database,
    housekeeping,
    upgrade_db,
)
from tests.e2e.front_door import (
    copied_flow,
    database_out_of_reach,
    foreign_image,
    forged_result,
    front_door,
    no_role_may,
    reports_link,
    run_configs_refused,
    team_access,
)
from tests.e2e.load import LOAD_RUNS, dask_cluster, load
from tests.e2e.monitoring import watched
from tests.e2e.recovery import killed_container
from tests.e2e.remote import code_change, registry, remote_agent
from tests.e2e.runs import (
    agent_restart,
    prefect_run_watch,
    quick_run,
    run_page,
    run_wait,
    running_when_busy,
    scheduled,
    smoke,
    zero_users,
)
from tests.e2e.start import all_healthy, crash_loop, flow_packages, hasura_probe, make_up, missing_secret
from tests.programs.e2e_base import run

# The hops that start the stack their own way; every other one runs on a stack that is up,
# with REGISTRY_URL set for these, as agents on other hosts need it.
OWN_START = {missing_secret, crash_loop, make_up, external_database}
WITH_REGISTRY = {registry, remote_agent, team_access}

HOPS = [
    ("a blanked secret is refused by name", missing_secret),
    ("make up with a crash-looping hasura stops, naming it", crash_loop),
    ("make up OFFLINE=1 prints the UI's address", make_up),
    ("make ps: every long-running service healthy", all_healthy),
    ("two flow packages deployed; a run over its memory limit is killed, says why", flow_packages),
    ("only the proxy is published: foreign Origin, Host, forms refused", front_door),
    ("make smoke: first run claimed and checked", smoke),
    ("a run's report from the link in its artifact, through the front door; ../.env refused", reports_link),
    ("a run from the UI's Run page with n_users=37", run_page),
    ("a 10-user run from the UI, idle agent: its wait in parts, next to its floor", run_wait),
    ("20 clicks on a busy stack: click to Running, its percentiles", running_when_busy),
    ("a Quick Run from the UI: the default 10 users", quick_run),
    ("hasura's health probe, in an image without wget or curl", hasura_probe),
    ("scheduled run of the schedule's 5 users", scheduled),
    ("prefect run --watch, in the agent's container", prefect_run_watch),
    ("n_users=0 fails clearly, writes nothing", zero_users),
    ("NOTIFY_WEBHOOK_URL, NOTIFY_ON=all: a successful run posts one alert", alerts),
    ("a flow container killed: retried in a new one, or Failed saying why", killed_container),
    ("a flow of another image: refused by the agent, no container", foreign_image),
    (
        "runs whose run config sets binds or env: 403 at the door; past it Failed, no container",
        run_configs_refused,
    ),
    ("loopback: what no role may do refused, nothing stored; make audit shows it", no_role_may),
    ("a task result forged past the door: the run fails naming it, nothing unpickled", forged_result),
    ("a copy of the flow in another project, past the door: refused, no container; archived", copied_flow),
    ("a flow container reaches apollo, not hasura or postgres", database_out_of_reach),
    ("agent restarted, claims the next run", agent_restart),
    ("watched from outside: Watchdog, RunFailed once, AgentsDown and FlowStale, resolved", watched),
    (f"{LOAD_RUNS} runs at once, all Success with exact reports", load),
    (f"{HOUSEKEEPING_WAVES} waves of runs, each then Server housekeeping: rows bounded", housekeeping),
    ("code change + make register: new version, new image, used by runs", code_change),
    ("REGISTRY_URL: pushed, local copy gone, the agent pulls", registry),
    ("make agent elsewhere: claims its labelled run, through APOLLO_BIND", remote_agent),
    ("make up PUBLIC=1: one HTTPS port, a login per person and role, a token; a remote agent", team_access),
    ("make up DASK=1 DASK_WORKERS=2: one run over both workers", dask_cluster),
    ("make down, make up: same .env, same registration", down_and_up),
    ("make backup, DROP TABLE, make restore: rows back", backup_and_restore),
    ("make upgrade-db: an older PostgreSQL's data moved, undone, finished", upgrade_db),
    ("make clean removes the database volume", clean),
    ("POSTGRES_HOST: no postgres service; backup, restore and clean on it", external_database),
]

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
    except pytest.skip.Exception:  # a hop that does not apply to this stack: the rest go on
        raise
    except BaseException:
        stack.failed_hop = hop.__name__
        stack.compose("logs", "--tail=40", "apollo", "agent", "proxy", check=False)
        run("docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={stack.name}",
            "--format", "{{.Names}}  {{.Status}}", check=False)  # fmt: skip
        raise
    record_property("detail", f"{title}: {detail}" if detail else title)
