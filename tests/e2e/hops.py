"""The hops of `make e2e` (tests/e2e/test_hops.py runs them in the order of HOPS), each a
step a user takes on a stack, checked through Prefect Server's own GraphQL so that it means
the same on the real images and on the local ones. Each returns its detail, or None.
"""

import base64
import gzip
import ipaddress
import json
import os
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pendulum
import yaml

from tests.programs.e2e_base import run
from tests.programs.e2e_stack import FINISHED, Stack, output
from tests.programs.load import ContainerWatch, batch
from tests.programs.smoke import check_report
from tests.support import free_port
from tests.support.ui_operations import (
    CREATE_FLOW_RUN,
    FLOW_PAGE_QUERY,
    PREFECT_RUN_WATCH,
    post,
    run_page_variables,
)

LONG_RUNNING = ("postgres", "hasura", "graphql", "towel", "apollo", "ui", "proxy", "agent", "users-api")
LOAD_RUNS, LOAD_USERS = 50, 1000


# ---- the hops, in order; each returns its detail ------------------------------------------


def missing_secret(stack: Stack) -> str:
    """`make up` with a secret blanked in .env stops at compose, naming it; nothing starts."""
    stack.make(".env")
    env_file = stack.dir / ".env"
    written = env_file.read_text()
    env_file.write_text(re.sub(r"^POSTGRES_PASSWORD=.*$", "POSTGRES_PASSWORD=", written, flags=re.M))
    result = stack.make("up", "OFFLINE=1", check=False)
    env_file.write_text(written)
    assert result.returncode != 0, "make up started without POSTGRES_PASSWORD"
    assert "POSTGRES_PASSWORD is not set - run `make up`" in result.stderr, result.stderr[-2000:]
    assert not output("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.name}")
    assert env_file.stat().st_mode & 0o777 == 0o600 and re.search(
        r"^POSTGRES_PASSWORD=\w{48}$", written, re.M
    )
    return ".env written with mode 600; blanked POSTGRES_PASSWORD refused"


def crash_loop(stack: Stack) -> str:
    """`make up` with hasura exiting at once: it stops in seconds, naming hasura, its
    restart count and its last log lines, instead of waiting for ever; graphql, waiting for
    a healthy hasura, is never started."""
    begun = time.monotonic()
    result = stack.make(
        "up",
        "OFFLINE=1",
        check=False,
        COMPOSE_FILE=stack.env["COMPOSE_FILE"] + ":tests/programs/docker-compose.crashloop.yml",
    )
    took = time.monotonic() - begun
    assert result.returncode != 0, result.stdout[-2000:]
    line = re.search(r"^make up: hasura .*restarted (\d+) times.*$", result.stderr, re.M)
    assert line and "hasura: cannot start (e2e crash loop)" in result.stderr, result.stderr[-2000:]
    assert not stack.containers("graphql") or "running" not in output(
        "docker", "inspect", "-f", "{{.State.Status}}", stack.container("graphql")
    )
    stack.compose("rm", "--stop", "--force", "hasura", capture_output=True)
    return f"stopped after {took:.0f} s (images built included): {line[0].split('; ')[0]}"


def make_up(stack: Stack) -> str:
    begun = time.monotonic()
    result = stack.make("up", "OFFLINE=1")
    took = time.monotonic() - begun
    url = f"Prefect UI:  http://localhost:{stack.ui_port}"
    assert url in result.stdout, result.stdout[-2000:]
    if stack.version == "v2":  # the Makefile found `docker compose` by itself
        assert "\ndocker compose build" in "\n" + result.stdout, result.stdout[:500]
    assert stack.reports.is_dir() and stack.reports.stat().st_uid == stack.app_uid
    # Recorded, so that make register, make down and a plain make up keep the demo API.
    assert (
        "\nRANDOMUSER_URL=http://users-api:8999/api/\nUSERS_API_LIMIT=0\nCOMPOSE_PROFILES=offline\n"
        in (stack.dir / ".env").read_text()
    )
    return f"{took:.0f} s to the URL line"


def all_healthy(stack: Stack) -> str:
    listing = stack.make("ps").stdout
    unhealthy = [
        service
        for service in LONG_RUNNING
        if not any(
            re.search(rf"[-_]{service}[-_]1\b", line) and "(healthy)" in line for line in listing.splitlines()
        )
    ]
    assert not unhealthy, f"not healthy in make ps: {unhealthy}\n{listing}"
    assert not re.search(r"[-_]register[-_]", listing), f"register left running:\n{listing}"
    return f"{len(LONG_RUNNING)} services healthy"


def flow_packages(stack: Stack) -> str:
    """`make up` deployed both packages of the copy (flows/memory_check added); a run of
    the second within its memory limit succeeds, one over it is killed and says so."""
    other = stack.active_flow("Memory check")
    assert other["storage"]["image_tag"] != stack.active_flow()["storage"]["image_tag"]
    fits = stack.create_run({"mebibytes": 10}, flow_name="Memory check")
    too_big = stack.create_run({"mebibytes": 1000}, flow_name="Memory check")
    ended = stack.wait_for_runs([fits, too_big])
    assert ended[fits]["state"] == "Success", stack.explain(fits)
    killed = ended[too_big]
    said = "Killed: the run's container went over its memory limit of 400m (MEMORY_LIMIT in"
    assert killed["state"] == "Failed" and killed["state_message"].startswith(said), stack.explain(too_big)
    assert killed["state_message"] in stack.logs(too_big), stack.explain(too_big)  # its log says so too
    return killed["state_message"]


def smoke(stack: Stack, n_users: int = 37) -> str:
    result = stack.make("smoke", f"N_USERS={n_users}")
    assert "smoke passed: " in result.stdout and result.stdout.strip().endswith(f"has {n_users} rows")
    claimed = re.search(r"^\s*(\d+) s\s+Submitted$", result.stdout, re.M)
    return f"claimed after {claimed[1]} s, {n_users} rows" if claimed else f"{n_users} rows"


def run_wait(stack: Stack) -> str:
    """A 10-user run started as the UI starts it, with the agent idle, from the click to
    Success, in its parts, next to its floor: the same flow image running the same flow
    with no server (`docker run`, the offline users API). Figures, not bounds: make bench's
    kind, printed with the hop."""
    time.sleep(15)  # the agent, idle, is polling at its longest interval
    run_id = stack.create_run({"n_users": 10})
    (flow_run,) = stack.wait_for_runs([run_id]).values()
    assert flow_run["state"] == "Success", stack.explain(run_id)
    stored = stack.graphql(
        "query($id: uuid!) { flow_run_by_pk(id: $id) { created states { state timestamp } task_runs { end_time } } }",
        {"id": run_id},
    )["flow_run_by_pk"]
    at = {row["state"]: pendulum.parse(row["timestamp"]).float_timestamp for row in stored["states"]}
    clicked = pendulum.parse(stored["created"]).float_timestamp
    # The mapped parent of the downloads ends Mapped, with no end time of its own.
    tasks_done = max(
        pendulum.parse(task_run["end_time"]).float_timestamp
        for task_run in stored["task_runs"]
        if task_run["end_time"]
    )
    events = output(
        "docker", "events", "--since", f"{clicked - 1:.0f}", "--until", f"{time.time():.0f}",
        "--filter", f"label=io.prefect.flow-run-id={run_id}", "--format", "{{.Status}} {{.TimeNano}}",
    ).split("\n")  # fmt: skip
    container = {status: int(nanos) / 1e9 for status, nanos in (event.split() for event in events if event)}
    parts = {
        "agent's poll": at["Submitted"] - clicked,
        "container create and start": container["start"] - at["Submitted"],
        "Python, Prefect and the flow's imports": at["Running"] - container["start"],
        "the flow's tasks": tasks_done - at["Running"],
        "the final state reaching the server": at["Success"] - tasks_done,
    }
    total = at["Success"] - clicked

    flow = stack.active_flow()
    image = f"{flow['storage']['image_name']}:{flow['storage']['image_tag']}"
    begun = time.monotonic()
    run(
        "docker", "run", "--rm", "--network", stack.env["PREFECT_NETWORK"],
        "-e", "RANDOMUSER_URL=http://users-api:8999/api/", "-e", "USERS_API_LIMIT=0", "-e", "REPORTS_DIR=/tmp",
        image, "python", "-m", "flows.users_report", "--n-users", "10", stdout=subprocess.DEVNULL,
    )  # fmt: skip
    floor = time.monotonic() - begun
    split = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in parts.items())
    return f"click to Success {total:.1f} s = {total / floor:.2f}x its floor ({floor:.1f} s, docker run): {split}"


def run_page(stack: Stack) -> str:
    return stack.successful_runs(37)[0]


def quick_run(stack: Stack) -> str:
    return stack.successful_runs(10, quick_run=True)[0]


def hasura_probe(stack: Stack) -> None:
    """Hasura's image may lack wget and curl, and so does ours: its health probe must
    still tell a listening server from none."""
    config = yaml.safe_load(stack.compose("config", capture_output=True, text=True).stdout)
    probe = config["services"]["hasura"]["healthcheck"]["test"][1]
    script = f"({probe}) && exit 9; python -m http.server 3000 >/dev/null 2>&1 & sleep 2; {probe}"
    code = run(
        "docker", "run", "--rm", stack.env["PROJECT_IMAGE"], "sh", "-c", script, check=False
    ).returncode
    assert code == 0, f"the probe answered {code} (9: healthy with nothing listening)"


def scheduled(stack: Stack) -> str:
    """Registering made the schedule's next runs (cron: every minute here); the first one
    is claimed and delivers the schedule's users."""
    flow_id = stack.active_flow()["id"]
    runs = list(stack.runs({"flow_id": {"_eq": flow_id}, "auto_scheduled": {"_eq": True}}).values())
    assert len(runs) == 10, f"{len(runs)} runs scheduled, not the next 10"
    run_id = runs[0]["id"]
    flow_run = stack.wait_for_runs([run_id], seconds=150)[run_id]
    assert flow_run["state"] == "Success", stack.explain(run_id)
    assert flow_run["parameters"] == {"n_users": 5}
    return stack.report_of(run_id, 5)


def prefect_run_watch(stack: Stack) -> str:
    """`prefect run ... --watch` in the agent's container, as docs/pipeline.md shows it."""
    result = stack.compose(
        "exec",
        "-T",
        "agent",
        "prefect",
        *PREFECT_RUN_WATCH,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and "Flow run succeeded!" in result.stdout, result.stdout[-3000:]
    run_id = re.search(r"/flow-run/([0-9a-f-]{36})", result.stdout)[1]
    return stack.report_of(run_id, 5)


def zero_users(stack: Stack) -> str:
    run_id = stack.create_run({"n_users": 0})
    assert stack.wait_for_runs([run_id])[run_id]["state"] == "Failed", stack.explain(run_id)
    messages = [
        task_run["state_message"] for task_run in stack.task_runs(run_id) if task_run["state"] == "Failed"
    ]
    reason = next((m for m in messages if m.startswith("n_users must be a whole number")), None)
    assert reason, messages
    assert not list(stack.reports.glob(f"users-report-*-{run_id[:8]}.csv"))
    return reason


def start_receiver(stack: Stack) -> str:
    """A webhook receiver on the stack's network; returns its container's name."""
    name = f"{stack.name}-hooks"
    run(
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "--network",
        stack.name,
        "-v",
        f"{stack.dir}:/src:ro",
        "-w",
        "/src",
        "-e",
        "PYTHONPATH=/src",
        stack.env["PROJECT_IMAGE"],
        "python",
        "-m",
        "tests.support.webhook_receiver",
        "--host",
        "0.0.0.0",
        "--lifetime",
        "900",
        stdout=subprocess.DEVNULL,
    )
    return name


def webhook_url(receiver: str) -> str:
    """NOTIFY_WEBHOOK_URL for the receiver `start_receiver` started."""
    return f"http://{receiver}:8998/hooks/e2e/secret"


def the_alert(receiver: str, run_id: str) -> str:
    """The one alert the receiver got about the run, as text; the receiver is removed
    (later alerts fail quietly). Other runs may alert meanwhile: a scheduled run (every
    minute here) whose download the killed-container hop cut by restarting the users API."""
    deadline = time.monotonic() + 30
    while run_id not in (posted := output("docker", "logs", receiver)) and time.monotonic() < deadline:
        time.sleep(0.5)
    run("docker", "rm", "--force", receiver, stdout=subprocess.DEVNULL)
    texts = [
        "\n".join(block["text"]["text"] for block in json.loads(line)["blocks"])
        for line in posted.splitlines()
    ]
    (alert,) = [text for text in texts if f"/flow-run/{run_id}" in text]
    return alert


def alerts(stack: Stack) -> str:
    """NOTIFY_WEBHOOK_URL set, `make register`: one cloud hook for each flow with alerts
    (Memory check has them off); a run failing on n_users=0 makes the server post one
    Slack-format alert to a receiver on the stack's network."""
    receiver = start_receiver(stack)
    with stack.settings(NOTIFY_WEBHOOK_URL=webhook_url(receiver)):
        stack.make("register")
        stack.make("register")
        hooks = stack.graphql("query { cloud_hook { version_group_id } }")["cloud_hook"]
        groups = {
            stack.active_flow(name)["version_group_id"]: name
            for name in ("Users report", "Server housekeeping")
        }
        assert sorted(groups.get(hook["version_group_id"]) for hook in hooks) == sorted(groups.values()), (
            hooks
        )
        run_id = stack.create_run({"n_users": 0})
        assert stack.wait_for_runs([run_id])[run_id]["state"] == "Failed", stack.explain(run_id)
        text = the_alert(receiver, run_id)
    stack.make("register")
    assert not stack.graphql("query { cloud_hook { id } }")["cloud_hook"], "hooks left without the setting"
    assert "*State:* `Failed`" in text and "n_users must be a whole number" in text, text
    assert f"*Link:* http://localhost:8080/default/flow-run/{run_id}" in text, text
    return (
        "one hook a flow after two registrations, none once unset; the failed run's alert: "
        + text.splitlines()[2][:80]
    )


# The stand-in's towel pass is asked for with this heartbeat cutoff: above the flow runs'
# heartbeat interval (30 s), so that only a run whose container died is taken for dead.
HEARTBEAT_CUTOFF = 45
# How long the real towel may take to recover a killed run (services/towel, PrefectHQ/server
# 0f74a9a: its zombie killer looks every 2 min, lazarus every 10, both with a 10-minute
# heartbeat cutoff), plus the run's new container.
REAL_TOWEL_SECONDS = 35 * 60


def kill_while_downloading(stack: Stack, n_users: int) -> str:
    """Starts a run with the offline users API answering each page after 30 s; once a page
    is being downloaded, kills the run's container (no code of ours runs), makes the API
    quick again; returns its id."""

    def users_api(latency: str) -> None:
        stack.env["DEMO_API_LATENCY"] = latency
        stack.compose("up", "-d", "--no-deps", "users-api", capture_output=True)

    users_api("30")  # its health probe times out meanwhile: not waited for
    run_id = stack.create_run({"n_users": n_users})
    downloads = (
        f'{{ task_run(where: {{flow_run_id: {{_eq: "{run_id}"}}, map_index: {{_gte: 0}}}}) {{ state }} }}'
    )
    deadline = time.monotonic() + 180
    while "Running" not in [t["state"] for t in post(stack.api, downloads, {})["data"]["task_run"]]:
        assert time.monotonic() < deadline, stack.explain(run_id)
        time.sleep(0.5)
    run(
        "docker",
        "kill",
        output("docker", "ps", "-q", "--filter", f"label=io.prefect.flow-run-id={run_id}"),
        stdout=subprocess.DEVNULL,
    )
    users_api("0")
    stack.wait_healthy("users-api")
    return run_id


def towel(stack: Stack) -> dict:
    """One pass of the stand-in's towel, once the killed run's heartbeat is past the cutoff."""
    time.sleep(HEARTBEAT_CUTOFF + 1)
    request = urllib.request.Request(
        f"{stack.api}/standin/towel",
        method="POST",
        data=json.dumps({"heartbeat_older_than": HEARTBEAT_CUTOFF}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def killed_container(stack: Stack) -> str:
    """A flow container killed mid-download. With retries left (HTTP_RETRIES=1), towel's
    zombie killer sets the running downloads Retrying and the agent starts the run again in a
    new container, which finishes it. With none (HTTP_RETRIES=0 registered), the downloads
    fail, lazarus schedules the run again, and it ends Failed with an alert saying why."""
    n_users, recovery = 50_000, 300 if stack.standin else REAL_TOWEL_SECONDS
    run_id = kill_while_downloading(stack, n_users)
    if stack.standin:
        reaped = towel(stack)
        assert reaped["zombie_task_runs"] >= 1 and reaped["rescheduled_flow_runs"] == 0, reaped
    assert stack.wait_for_runs([run_id], seconds=recovery)[run_id]["state"] == "Success", stack.explain(
        run_id
    )
    stack.report_of(run_id, n_users)
    agent_log = stack.compose("logs", "--no-color", "agent", capture_output=True, text=True).stdout
    assert agent_log.count(f"Deploying flow run {run_id}") == 2, stack.explain(run_id)

    receiver = start_receiver(stack)
    with stack.settings(NOTIFY_WEBHOOK_URL=webhook_url(receiver)), stack.flow_settings(HTTP_RETRIES="0"):
        stack.make("register")
        failing_id = kill_while_downloading(stack, n_users)
        if stack.standin:
            reaped = towel(stack)
            assert reaped["rescheduled_flow_runs"] == 1, reaped
        flow_run = stack.wait_for_runs([failing_id], seconds=recovery)[failing_id]
    stack.make("register")
    assert flow_run["state"] == "Failed", stack.explain(failing_id)
    dead = "No heartbeat detected from the remote task; marking the run as failed."
    assert dead in flow_run["state_message"], flow_run
    text = the_alert(receiver, failing_id)
    assert "*State:* `Failed`" in text and dead in text, text
    return f'retried in a second container, {n_users:,} rows; without retries: Failed, alert "{dead[:30]}..."'


def foreign_image(stack: Stack) -> str:
    """A flow registered with another image (the base image here) and the agent's label, as
    anyone reaching the API could: the agent refuses it, no container is made and the run
    fails saying why; `make register` brings the flow's own image back."""
    other = stack.base_image.split(":")[0]
    stack.compose(
        "run",
        "--rm",
        "-e",
        f"FLOW_IMAGE={other}",
        "register",
        "python",
        "register.py",
        "--skip-build",
        capture_output=True,
    )
    run_id = stack.create_run({"n_users": 5})
    flow_run = stack.wait_for_runs([run_id])[run_id]
    assert flow_run["state"] == "Failed", stack.explain(run_id)
    assert flow_run["state_message"].startswith(f"this agent does not start the image {other}:"), flow_run
    assert not output("docker", "ps", "-aq", "--filter", f"label=io.prefect.flow-run-id={run_id}")
    stack.make("register")
    return flow_run["state_message"]


def agent_restart(stack: Stack) -> str:
    run("docker", "restart", stack.container("agent"), stdout=subprocess.DEVNULL)
    stack.wait_healthy("agent")
    return stack.successful_runs(3)[0]


def load(stack: Stack) -> str:
    """LOAD_RUNS runs at once, the first a freshly started agent deploys: each deployment,
    in its own thread, starts its first log-streaming process at the same moment (one of
    20 runs was lost so: agent/start.py)."""
    run("docker", "restart", stack.container("agent"), stdout=subprocess.DEVNULL)
    stack.wait_healthy("agent")
    begun = time.monotonic()
    watch = ContainerWatch(stack.dir.parent / "containers")
    try:
        lost, explained = batch(stack, watch, LOAD_RUNS, LOAD_USERS)
    finally:
        watch.stop()
    assert not lost, f"{lost} of {LOAD_RUNS} runs lost:\n" + "\n".join(explained)
    return f"{LOAD_RUNS} runs of {LOAD_USERS:,} users, all Success in {time.monotonic() - begun:.0f} s"


HOUSEKEEPING_WAVES = 2
WAVE_RUNS = 4
KEEP_SECONDS = 15  # keep_days of the hop's housekeeping runs, in seconds
TABLES = ("flow_run", "task_run", "flow_run_state", "task_run_state", "log")


def rows(stack: Stack, where: dict | None = None) -> dict:
    """Each table's row count; with `where`, each table's own filter (its rows of some runs)."""
    where = where or {}
    fields = " ".join(
        f"{table}: {table}_aggregate(where: ${table}) {{ aggregate {{ count }} }}" for table in TABLES
    )
    declared = ", ".join(f"${table}: {table}_bool_exp" for table in TABLES)
    data = stack.graphql(
        f"query({declared}) {{ {fields} }}", {table: where.get(table, {}) for table in TABLES}
    )
    return {table: data[table]["aggregate"]["count"] for table in TABLES}


def rows_of_runs(stack: Stack, run_ids: list) -> dict:
    """The filters selecting, in each table, the rows that belong to the runs `run_ids`."""
    task_run_ids = [
        task_run["id"]
        for task_run in stack.graphql(
            "query($ids: [uuid!]) { task_run(where: {flow_run_id: {_in: $ids}}) { id } }", {"ids": run_ids}
        )["task_run"]
    ]
    by_run = {"flow_run_id": {"_in": run_ids}}
    return {
        "flow_run": {"id": {"_in": run_ids}},
        "task_run": by_run,
        "flow_run_state": by_run,
        "task_run_state": {"task_run_id": {"_in": task_run_ids}},
        "log": by_run,
    }


def ended_runs_containers(stack: Stack) -> list:
    """The flow containers whose run has ended, or is gone (deleted once ended): what ended
    runs leave behind. A scheduled run's container may be running meanwhile."""
    run_ids = output(
        "docker", "ps", "-a", "--filter", "label=io.prefect.flow-run-id", "--format", '{{.Label "io.prefect.flow-run-id"}}'
    ).split()  # fmt: skip
    going = {
        run_id for run_id, run in stack.runs({"id": {"_in": run_ids}}).items() if run["state"] not in FINISHED
    }
    return [run_id for run_id in run_ids if run_id not in going]


def housekeeping(stack: Stack) -> str:
    """Runs keep coming, and Server housekeeping, keeping KEEP_SECONDS of ended runs, keeps the
    database bounded: after each wave of runs and its housekeeping, no run that ended before
    is left, nor any row of it in any table, the last housekeeping run's included. The runs
    leave no container, volume or network behind."""
    keep_days = KEEP_SECONDS / 86400
    volumes, networks = output("docker", "volume", "ls", "-q"), output("docker", "network", "ls", "-q")
    summaries = []
    for _ in range(HOUSEKEEPING_WAVES):
        stack.successful_runs(5, count=WAVE_RUNS)
        time.sleep(KEEP_SECONDS + 5)  # this wave's runs, and the last housekeeping, are older
        started = pendulum.now("UTC").subtract(seconds=KEEP_SECONDS)
        old = list(stack.runs({"end_time": {"_lt": started.isoformat()}}))
        old_rows = rows_of_runs(stack, old)
        before, of_old = rows(stack), rows(stack, old_rows)
        run_id = stack.create_run({"keep_days": keep_days}, flow_name="Server housekeeping")
        assert stack.wait_for_runs([run_id])[run_id]["state"] == "Success", stack.explain(run_id)
        left = stack.runs({"end_time": {"_lt": started.isoformat()}})
        assert not left, f"{len(left)} runs that ended over {KEEP_SECONDS} s before are left"
        left_rows = rows(stack, old_rows)
        assert not any(left_rows.values()), f"rows of deleted runs are left: {left_rows}"
        after = rows(stack)
        summaries.append(
            ", ".join(
                f"{table} {before[table]:,} ({of_old[table]:,} old) -> {after[table]:,}" for table in TABLES
            )
        )
    deadline = time.monotonic() + 30  # a container goes a moment after its run's last state
    while ended_runs_containers(stack) and time.monotonic() < deadline:
        time.sleep(1)
    assert not ended_runs_containers(stack), "containers of ended runs are left"
    assert output("docker", "volume", "ls", "-q") == volumes
    assert output("docker", "network", "ls", "-q") == networks
    return "rows before (of runs ended before the cutoff) -> after each: " + "; ".join(summaries)


def edit_flow_line(stack: Stack, mark: str) -> None:
    """A one-line change to the "Users report" flow: its last message gets `mark`."""
    tasks = stack.dir / "flows" / "users_report" / "tasks.py"
    tasks.write_text(
        re.sub(
            r'log\(f"Dados salvos em report.csv com sucesso!( \([^)]*\))?',
            f'log(f"Dados salvos em report.csv com sucesso! ({mark})',
            tasks.read_text(),
            count=1,
        )
    )


def code_change(stack: Stack) -> str:
    """A change to the flow's code, then `make register`: a new version on a new image,
    and runs use it (the changed log line shows in their logs). Its wait, command by command
    of its recipe, next to its floor: `docker build` of one more one-line edit, warm cache."""
    before = stack.active_flow()
    # Never built before: the engine keeps layers between e2e runs, and a cached one would
    # make the build look free.
    mark = f"e2e {time.time_ns():x}"
    edit_flow_line(stack, mark)
    commands = [line for line in stack.make("-n", "register").stdout.splitlines() if line.strip()]
    took = []
    for command in commands:
        begun = time.monotonic()
        printed = run(
            "sh", "-c", command, cwd=stack.dir, env=stack.env, capture_output=True, text=True
        ).stdout
        took.append(time.monotonic() - begun)
    image, registration = re.search(
        r"^Users report: image \S+ made in (\S+) s, registered in (\S+) s$", printed, re.M
    ).groups()
    after = stack.active_flow()
    assert after["version"] == before["version"] + 1, (before["version"], after["version"])
    tag = after["storage"]["image_tag"]
    assert tag != before["storage"]["image_tag"]
    output("docker", "image", "inspect", f"{stack.flow_image}:{tag}")
    smoke(stack, 11)
    (run_id,) = stack.runs({"flow_id": {"_eq": after["id"]}, "auto_scheduled": {"_eq": False}})
    logs = stack.logs(run_id)
    assert any(f"com sucesso! ({mark})" in message for message in logs), stack.explain(run_id)

    floor = docker_build_floor(stack, mark)
    # The recipe's two commands: compose build, then compose run of the register step.
    parts = ", ".join(
        f"compose {next(word for word in command.split() if word in ('build', 'run'))} {seconds:.1f} s"
        for command, seconds in zip(commands, took)
    )
    return (
        f"make register {sum(took):.1f} s = {sum(took) / floor:.2f}x its floor ({floor:.1f} s, docker "
        f"build): {parts}; in the last, the flow image {image} s, registration {registration} s; "
        f"version {after['version']}, image tag {tag}"
    )


def docker_build_floor(stack: Stack, mark: str) -> float:
    """Seconds `docker build` takes for a one-line flow edit on a warm cache: built once to
    warm it (Compose's build contexts do not hit the CLI's cache), then after the edit;
    then the edit `mark`, as registered, is put back."""
    tag = f"{stack.name}-floor"
    build = (
        "docker", "build", "--quiet", "--tag", tag, "--build-arg", f"BASE_IMAGE={stack.base_image}",
        "--build-arg", f"APP_UID={stack.app_uid}", str(stack.dir),
    )  # fmt: skip
    run(*build, stdout=subprocess.DEVNULL)
    edit_flow_line(stack, f"{mark} floor")
    begun = time.monotonic()
    run(*build, stdout=subprocess.DEVNULL)
    took = time.monotonic() - begun
    run("docker", "rmi", tag, stdout=subprocess.DEVNULL)
    edit_flow_line(stack, mark)
    return took


def registry(stack: Stack) -> str:
    """REGISTRY_URL set, `make up` (the stack of WITH_REGISTRY's hops): the flow image goes
    to the registry and its local copy is deleted; the agent pulls it to run the next run."""
    address = stack.env["REGISTRY_URL"]
    flow = stack.active_flow()
    image = f"{address}/{stack.flow_image}:{flow['storage']['image_tag']}"
    assert flow["storage"]["registry_url"] == address, flow["storage"]
    with urllib.request.urlopen(f"http://{address}/v2/_catalog", timeout=10) as answer:
        assert json.load(answer)["repositories"] == [stack.flow_image]
    local = run("docker", "image", "inspect", image, check=False, capture_output=True)
    assert local.returncode != 0, f"{image} is still on this host after its push"
    smoke(stack, 9)
    output("docker", "image", "inspect", image)  # pulled by the agent
    return f"pushed {image}, local copy gone, pulled by the agent for a run"


def dask_cluster(stack: Stack) -> str:
    """`make up DASK=1 DASK_WORKERS=2`: a run's downloads spread over both workers (pages of
    500 here), its report whole; the workers write as the app user into the same folder.
    `make up DASK=0` takes the cluster away."""
    stack.make("up", "DASK=1", "DASK_WORKERS=2")
    assert (
        "\nDASK_ADDRESS=tcp://dask-scheduler:8786\nDASK_WORKERS=2\nCOMPOSE_PROFILES=offline,dask\n"
        in (stack.dir / ".env").read_text()
    )
    stack.wait_healthy("dask-scheduler")
    stack.wait_healthy("dask-worker")
    workers = stack.containers("dask-worker")
    assert len(workers) == 2, workers
    report = stack.successful_runs(6000)[0]
    logs = [
        run("docker", "logs", worker, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
        for worker in workers
    ]
    downloads = [log.count("Task 'download_data[") for log in logs]
    assert all(downloads), f"download task runs per worker: {downloads}"
    stack.make("up", "DASK=0")
    assert not stack.containers("dask-worker"), "make up DASK=0 left the workers"
    return f"{report}; download task runs per worker: {downloads}"


def docker_bridge() -> str:
    """This host's address on Docker's default bridge: what containers of other compose
    projects reach it at, as other hosts reach it on a team's network."""
    (subnet,) = json.loads(output("docker", "network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}"))
    return subnet.get("Gateway") or str(ipaddress.ip_network(subnet["Subnet"])[1])  # docker0's


def start_remote_agent(stack: Stack, api_url: str) -> Path:
    """`make agent` for the runs labelled e2e-remote, with its own reports folder and the
    offline users API on its network; returns the folder."""
    remote_reports = stack.dir.parent / "remote-reports"
    stack.agent_settings = {
        "AGENT_LABEL": "e2e-remote",
        "HOST_REPORTS_DIR": str(remote_reports),
        "PREFECT_API_URL": api_url,
    }
    stack.make("agent", **stack.agent_settings)
    # That host's own users API: the offline one, on the agent's network under its name.
    run(
        "docker",
        "run",
        "-d",
        "--name",
        f"{stack.agent_project}-users-api",
        "--network",
        stack.agent_project,
        "--network-alias",
        "users-api",
        stack.env["PROJECT_IMAGE"],
        "python",
        "-m",
        "demo.users_api",
        "--host",
        "0.0.0.0",
        "--port",
        "8999",
        "--lifetime",
        "600",
        stdout=subprocess.DEVNULL,
    )
    stack.wait_healthy("agent", agent=True)
    network = output(
        "docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", stack.container("agent", agent=True)
    )
    assert list(json.loads(network)) == [stack.agent_project], network
    return remote_reports


def stop_remote_agent(stack: Stack) -> None:
    run("docker", "rm", "--force", f"{stack.agent_project}-users-api", stdout=subprocess.DEVNULL)
    stack.make("agent-down", **stack.agent_settings)
    assert not stack.containers("agent", agent=True)
    gone = run("docker", "network", "inspect", stack.agent_project, check=False, capture_output=True)
    assert gone.returncode != 0, "make agent-down left its network"


def remote_agent(stack: Stack) -> str:
    """`make agent` with its own compose project and network, reaching the API only at the
    address the stack publishes it on (APOLLO_BIND: this host's Docker bridge address) and
    pulling from the registry: it claims the run a person labelled for it on the Run page;
    the stack's agent does not."""
    bridge = docker_bridge()
    with stack.settings(APOLLO_BIND=bridge):
        stack.make("up")
        remote_reports = start_remote_agent(stack, f"http://{bridge}:{stack.apollo_port}")
        run_id = stack.create_run({"n_users": 13}, labels=["e2e-remote"])
        flow_run = stack.wait_for_runs([run_id])[run_id]
        assert flow_run["state"] == "Success", stack.explain(run_id)
        check_report(remote_reports, run_id, 13)
        assert not list(stack.reports.glob(f"users-report-*-{run_id[:8]}.csv"))
        logs = {
            agent: stack.compose(
                "logs", "--no-color", "agent", agent=agent, capture_output=True, text=True
            ).stdout
            for agent in (False, True)
        }
        assert run_id in logs[True] and run_id not in logs[False], "the run was not the remote agent's"
        stop_remote_agent(stack)
    stack.make("up")
    return f"claimed by the remote agent via {bridge}:{stack.apollo_port}, report in its own folder"


def published_ports(stack: Stack) -> dict:
    """The stack's services that publish a port, each with its host addresses (ip:port)."""
    listing = output(
        "docker",
        "ps",
        "--filter",
        f"label=com.docker.compose.project={stack.name}",
        "--format",
        '{{.Label "com.docker.compose.service"}}\t{{.Ports}}',
    )
    published = {}
    for line in listing.splitlines():
        service, _, ports = line.partition("\t")
        hosts = sorted({port.split("->")[0].strip() for port in ports.split(",") if "->" in port})
        if hosts:
            published[service] = hosts
    return published


def ask_api(url: str, body: bytes = b'{"query": "query { hello }"}', **headers) -> int:
    """The status of one POST to `url` (GraphQL's hello as JSON unless told otherwise)."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def front_door(stack: Stack) -> str:
    """Only the proxy is published, on loopback. On both its ports a web page's request
    (a foreign Origin), a foreign Host (DNS rebinding) and a form or multipart post get 403;
    Prefect's client (no Origin) and the UI's own calls pass: a run started by the UI's
    Run page through the UI's port succeeds."""
    loopback = sorted([f"127.0.0.1:{stack.ui_port}", f"127.0.0.1:{stack.apollo_port}"])
    assert published_ports(stack) == {"proxy": loopback}, published_ports(stack)
    ui = f"http://localhost:{stack.ui_port}"
    for base in (f"http://127.0.0.1:{stack.ui_port}/graphql", f"{stack.api}/graphql"):
        assert ask_api(base) == 200, base
        assert ask_api(base, Origin=ui) == 200, base
        assert ask_api(base, Origin="http://evil.example") == 403, base
        assert ask_api(base, Origin="null") == 403, base
        assert ask_api(base, Host="evil.example") == 403, base
        assert ask_api(base, b"query=mutation{}", **{"Content-Type": "text/plain"}) == 403, base
        multipart = b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--x--\r\n'
        assert ask_api(base, multipart, **{"Content-Type": "multipart/form-data; boundary=x"}) == 403, base
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ui_port}/", timeout=10) as page:
        assert page.status == 200  # the UI itself
    flow = stack.active_flow()
    page = post(
        f"http://127.0.0.1:{stack.ui_port}", FLOW_PAGE_QUERY, {"id": flow["flow_group_id"]}, Origin=ui
    )["data"]["flow_group_by_pk"]
    created = post(
        f"http://127.0.0.1:{stack.ui_port}",
        CREATE_FLOW_RUN,
        run_page_variables(page, {"n_users": 4}, "e2e-ui-origin"),
        Origin=ui,
    )
    run_id = created["data"]["create_flow_run"]["id"]
    assert stack.wait_for_runs([run_id])[run_id]["state"] == "Success", stack.explain(run_id)
    return f"403 for a foreign Origin, Host, text/plain and multipart on both ports; {stack.report_of(run_id, 4)}"


def run_configs_refused(stack: Stack) -> str:
    """Runs whose own run config would mount the host or set the container's environment,
    as anyone reaching the API can start them: Failed with the agent's reason, no container."""
    flow = stack.active_flow()
    messages = []
    for change in ({"host_config": {"binds": ["/:/host"]}}, {"env": {"BROWSER": "id"}}):
        run_config = {**flow["run_config"], **change}
        answer = post(stack.api, CREATE_FLOW_RUN, {"id": flow["id"], "runConfig": run_config})
        run_id = answer["data"]["create_flow_run"]["id"]
        flow_run = stack.wait_for_runs([run_id])[run_id]
        assert flow_run["state"] == "Failed", stack.explain(run_id)
        field = next(iter(change))
        assert flow_run["state_message"].startswith(
            f"this agent does not start a run config that sets {field} ("
        ), flow_run["state_message"]
        assert "the run's own run config (create_flow_run)" in flow_run["state_message"], flow_run
        assert not output("docker", "ps", "-aq", "--filter", f"label=io.prefect.flow-run-id={run_id}")
        messages.append(flow_run["state_message"].split(",")[0])
    return "; ".join(messages)


def database_out_of_reach(stack: Stack) -> str:
    """A container on the flow runs' network, from the flow image, reaches apollo but
    neither Hasura nor Postgres: those two are on the stack's internal database network."""
    image = f"{stack.flow_image}:{stack.active_flow()['storage']['image_tag']}"
    probe = (
        "import socket\n"
        "for host, port in (('apollo', 4200), ('hasura', 3000), ('postgres', 5432)):\n"
        "    try: socket.create_connection((host, port), timeout=3).close(); print(host, 'open')\n"
        "    except OSError as error: print(host, 'closed', type(error).__name__)\n"
    )
    result = output("docker", "run", "--rm", "--network", stack.name, image, "python", "-c", probe)
    lines = dict(line.split(" ", 1) for line in result.splitlines())
    assert (
        lines["apollo"] == "open"
        and lines["hasura"].startswith("closed")
        and lines["postgres"].startswith("closed")
    ), result
    return ", ".join(f"{host} {state}" for host, state in lines.items())


def team_access(stack: Stack) -> str:
    """`make up PUBLIC=1` on this host's bridge address (a team's network here): only the
    proxy is published. Without credentials / and /graphql answer 401; the UI login opens
    both; API_TOKEN opens the API and a wrong token does not; plain HTTP is refused. `make
    ca` gives the CA that an agent in its own compose project trusts, reaching the server
    only through the proxy with the token: it claims and finishes its run. `make up
    PUBLIC=0` goes back to the loopback ports."""
    host, port, loopback_files = docker_bridge(), free_port(), stack.env["COMPOSE_FILE"]
    with stack.settings(
        PUBLIC_HOST=host,
        PUBLIC_BIND=host,
        PUBLIC_PORT=str(port),
        COMPOSE_FILE=loopback_files.replace("docker-compose.override.yml", "docker-compose.public.yml"),
    ):
        up = stack.make("up", "PUBLIC=1")
        password = re.search(r"user prefect, password (\S+)", up.stdout)[1]
        assert published_ports(stack) == {"proxy": [f"{host}:{port}"]}, published_ports(stack)
        stack.make("ca")
        tls = ssl.create_default_context(cafile=str(stack.dir / "certs" / "ca.crt"))
        public = f"https://{host}:{port}"
        token = re.search(r"^API_TOKEN=(\S+)$", (stack.dir / ".env").read_text(), re.M)[1]
        login = "Basic " + base64.b64encode(f"prefect:{password}".encode()).decode()

        def ask(path, query=None, authorization=None, base=public, variables=None, **headers):
            """Status and body of a GET (or a GraphQL POST of `query`) through the proxy."""
            body = json.dumps({"query": query, "variables": variables or {}}).encode() if query else None
            request = urllib.request.Request(
                base + path,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    **headers,
                    **({"Authorization": authorization} if authorization else {}),
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=10, context=tls) as answer:
                    return answer.status, answer.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.read().decode()

        hello = "query { hello }"
        assert ask("/")[0] == ask("/graphql", hello)[0] == 401
        assert ask("/", authorization=login)[0] == 200
        assert json.loads(ask("/graphql", hello, login)[1])["data"]["hello"] == "hello"
        assert json.loads(ask("/graphql", hello, f"Bearer {token}")[1])["data"]["hello"] == "hello"
        assert ask("/graphql", hello, f"Bearer {token}x")[0] == 401
        assert ask("/", authorization=f"Bearer {token}")[0] == 401  # the token opens the API only
        status, body = ask("/", base=f"http://{host}:{port}")
        assert status == 400 and "HTTP request to an HTTPS server" in body, (status, body)
        # The login cached in a browser opens nothing for another site's page.
        assert ask("/graphql", hello, login, Origin=public)[0] == 200, ask(
            "/graphql", hello, login, Origin=public
        )
        assert ask("/graphql", hello, login, Origin="https://evil.example")[0] == 403
        assert ask("/graphql", hello, login, Host="evil.example")[0] == 403  # DNS rebinding
        assert ask("/graphql", hello, login, **{"Content-Type": "text/plain"})[0] == 403  # a form's post

        remote_reports = start_remote_agent(stack, f"{public}/graphql")
        flow_id = json.loads(
            ask(
                "/graphql",
                'query { flow(where: {archived: {_eq: false}, name: {_eq: "Users report"}}) { id } }',
                f"Bearer {token}",
            )[1]
        )["data"]["flow"][0]["id"]
        created = ask(
            "/graphql",
            "mutation($input: create_flow_run_input!) { create_flow_run(input: $input) { id } }",
            f"Bearer {token}",
            variables={
                "input": {"flow_id": flow_id, "parameters": {"n_users": 13}, "labels": ["e2e-remote"]}
            },
        )
        run_id = json.loads(created[1])["data"]["create_flow_run"]["id"]
        deadline = time.monotonic() + 180
        while (
            state := json.loads(
                ask("/graphql", f'query {{ flow_run_by_pk(id: "{run_id}") {{ state }} }}', f"Bearer {token}")[
                    1
                ]
            )["data"]["flow_run_by_pk"]["state"]
        ) not in FINISHED:
            assert time.monotonic() < deadline, f"the remote agent's run is still {state}"
            time.sleep(1)
        assert state == "Success", state
        check_report(remote_reports, run_id, 13)
        agent_log = stack.compose(
            "logs", "--no-color", "agent", agent=True, capture_output=True, text=True
        ).stdout
        assert run_id in agent_log and token not in agent_log
        stop_remote_agent(stack)
    stack.make("up", "PUBLIC=0")
    loopback = sorted([f"127.0.0.1:{stack.ui_port}", f"127.0.0.1:{stack.apollo_port}"])
    assert published_ports(stack) == {"proxy": loopback}, published_ports(stack)
    assert stack.run(run_id)["state"] == "Success"  # the API on its loopback port again
    return f"only {public} published; 401 without a login, UI login and API_TOKEN let in; remote agent's run Success"


def down_and_up(stack: Stack) -> str:
    """`make down` keeps the database; `make up` again reuses .env and the registration,
    and the offline demo recorded there."""
    env_before, flows_before = (stack.dir / ".env").read_bytes(), stack.flows()
    stack.make("down")
    assert not output("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.name}")
    output("docker", "volume", "inspect", f"{stack.name}_postgres-data")  # kept
    begun = time.monotonic()
    stack.make("up")  # the demo API stays: OFFLINE=1 is in .env
    took = time.monotonic() - begun
    assert (stack.dir / ".env").read_bytes() == env_before, ".env changed"
    flows_after = stack.flows()
    assert [flow["id"] for flow in flows_after] == [flow["id"] for flow in flows_before], (
        "make up registered a new version"
    )
    smoke(stack, 7)
    return f"{took:.0f} s to the URL line (warm); same .env, no new version, runs claimed again"


def backup_and_restore(stack: Stack) -> str:
    """`make backup` while the stack runs; a table dropped; `make restore` refuses without
    an answer, then with YES=1 stops the writers, brings the rows back and starts them."""

    def psql(sql: str) -> str:
        return stack.compose(
            "exec",
            "-T",
            "postgres",
            "psql",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "prefect",
            "-d",
            "prefect_server",
            "-c",
            sql,
            capture_output=True,
            text=True,
        ).stdout.strip()

    psql("CREATE TABLE e2e_rows AS SELECT n AS id, 'run ' || n AS name FROM generate_series(1, 500) n")
    printed = stack.make("backup").stdout.strip()
    backup = stack.dir / printed.split(" (")[0]
    assert backup.parent.name == "backups" and backup.stat().st_mode & 0o777 == 0o600, printed
    assert gzip.decompress(backup.read_bytes()).count(b"e2e_rows") >= 2  # created and filled
    psql("DROP TABLE e2e_rows")
    refused = stack.make("restore", f"FILE={backup}", check=False)
    assert refused.returncode != 0 and "Nothing restored." in refused.stdout, refused.stdout
    assert psql("SELECT to_regclass('e2e_rows') IS NULL") == "t"
    restored = stack.make("restore", f"FILE={backup}", "YES=1")
    assert f"Restored {backup}." in restored.stdout, restored.stdout[-2000:]
    assert psql("SELECT count(*), max(name) FROM e2e_rows") == "500|run 99"
    for service in ("agent", "apollo", "towel"):
        stack.wait_healthy(service)
    smoke(stack, 6)
    half_done = restores_that_fail(stack, backup, psql)
    return f"{printed}; 500 rows back after DROP TABLE; writers restarted, a run claimed; {half_done}"


def restores_that_fail(stack: Stack, backup: Path, psql) -> str:
    """A restore cannot half-happen: a cut-short file is refused before anything stops; a
    dump that stops part-way (an object depending on a table it drops) and one that meets a
    lock held past RESTORE_LOCK_SECONDS leave the database as it was, and say why."""
    psql("DELETE FROM e2e_rows WHERE id > 400")  # the live database now differs from the dump
    started = output("docker", "inspect", "-f", "{{.State.StartedAt}}", stack.container("agent"))
    cut = backup.with_name("cut-short.sql.gz")
    cut.write_bytes(backup.read_bytes()[: len(backup.read_bytes()) // 2])
    refused = stack.make("restore", f"FILE={cut}", "YES=1", check=False)
    assert refused.returncode != 0 and "is not an intact gzip file" in refused.stderr, refused.stderr
    assert output("docker", "inspect", "-f", "{{.State.StartedAt}}", stack.container("agent")) == started

    psql("CREATE VIEW e2e_view AS SELECT * FROM e2e_rows")  # the dump's DROP TABLE fails on it
    failed = stack.make("restore", f"FILE={backup}", "YES=1", check=False)
    assert failed.returncode != 0 and "the database is as it was" in failed.stderr, failed.stderr
    assert (
        "cannot drop table" in failed.stderr
        and "e2e_rows because other objects depend on it" in failed.stderr
    )
    assert psql("SELECT count(*) FROM e2e_rows") == "400" and psql("SELECT count(*) FROM e2e_view") == "400"
    psql("DROP VIEW e2e_view")

    holder = subprocess.Popen(
        [
            *stack.compose_command,
            "exec",
            "-T",
            "postgres",
            "psql",
            "-U",
            "prefect",
            "-d",
            "prefect_server",
            "-c",
            "BEGIN; LOCK TABLE e2e_rows IN ACCESS SHARE MODE; SELECT pg_sleep(60);",
        ],
        cwd=stack.dir,
        env={**stack.env, "COMPOSE_PROFILES": "offline,dask,public"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)
        begun = time.monotonic()
        blocked = stack.make("restore", f"FILE={backup}", "YES=1", check=False, RESTORE_LOCK_SECONDS="3")
        waited = time.monotonic() - begun
    finally:  # the session inside the container outlives its client: end it there
        psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
        )
        holder.kill()
        holder.wait()
    assert blocked.returncode != 0 and "lock timeout" in blocked.stderr, blocked.stderr
    assert psql("SELECT count(*) FROM e2e_rows") == "400"
    for service in ("agent", "apollo", "towel"):
        stack.wait_healthy(service)
    return (
        f"cut-short file refused, failed and lock-bound restores left 400 rows as they were ({waited:.0f} s)"
    )


def clean(stack: Stack) -> str:
    result = stack.make("clean")
    assert "Removed the Postgres volume" in result.stdout, result.stdout[-1000:]
    gone = run("docker", "volume", "inspect", f"{stack.name}_postgres-data", check=False, capture_output=True)
    assert gone.returncode != 0, "make clean left the database volume"
    assert not output("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.name}")
    return "volume removed, no container left"


def external_database(stack: Stack) -> str:
    """POSTGRES_HOST: a PostgreSQL outside the compose project (Debian's, in the local image
    the stack's own runs here, started with `docker run`): `make up` starts no postgres
    service and gives Hasura and graphql its URL; `make backup` and `make restore` work
    against it through a client container; `make clean` leaves it alone and says so."""
    image = stack.env.get("E2E_POSTGRES_IMAGE", "postgres:11")  # the stack's own image
    host, port, password = docker_bridge(), free_port(), base64.b16encode(os.urandom(12)).decode().lower()
    name = f"{stack.name}-external-database"
    secret = {**os.environ, "POSTGRES_PASSWORD": password}  # through the environment, not argv
    run("docker", "run", "-d", "--rm", "--name", name, "-e", "POSTGRES_PASSWORD", "-e", "POSTGRES_USER=office",
        "-e", "POSTGRES_DB=prefect_office", "-p", f"{host}:{port}:5432", image, env=secret, stdout=subprocess.DEVNULL)  # fmt: skip

    def psql(sql: str) -> str:
        return output(
            "docker", "exec", name, "psql", "-tA", "-U", "office", "-d", "prefect_office", "-c", sql
        )

    try:
        deadline = time.monotonic() + 60
        while run(
            "docker", "exec", name, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "office", check=False
        ).returncode:
            assert time.monotonic() < deadline, "the external database did not start"
            time.sleep(1)
        stack.make("down")
        stack.env.update(
            POSTGRES_HOST=host,
            POSTGRES_PORT=str(port),
            POSTGRES_USER="office",
            POSTGRES_DB="prefect_office",
            POSTGRES_PASSWORD=password,
            POSTGRES_CLIENT_IMAGE=image,
            COMPOSE_FILE=stack.env["COMPOSE_FILE"]
            .replace("docker-compose.database.yml", "docker-compose.external-database.yml")
            .replace(":tests/programs/docker-compose.placeholders-postgres.yml", ""),
        )
        stack.make("up")
        project, service = (
            f"label=com.docker.compose.project={stack.name}",
            "label=com.docker.compose.service=postgres",
        )
        assert not output("docker", "ps", "-aq", "--filter", project, "--filter", service), "postgres started"
        url = f"postgresql://office:{password}@{host}:{port}/prefect_office?sslmode=prefer"
        for service, variable in (("hasura", "HASURA_GRAPHQL_DATABASE_URL"), ("graphql", "PREFECT_SERVER__DATABASE__CONNECTION_URL")):  # fmt: skip
            environment = output("docker", "inspect", "-f", "{{json .Config.Env}}", stack.container(service))
            assert f"{variable}={url}" in json.loads(environment), service
        smoke(stack, 4)

        psql("CREATE TABLE e2e_rows AS SELECT n AS id FROM generate_series(1, 300) n")
        printed = stack.make("backup").stdout.strip()
        backup = stack.dir / printed.split(" (")[0]
        assert gzip.decompress(backup.read_bytes()).count(b"e2e_rows") >= 2, printed
        psql("DROP TABLE e2e_rows")
        restored = stack.make("restore", f"FILE={backup}", "YES=1")
        assert f"Restored {backup}." in restored.stdout, restored.stdout[-2000:]
        assert psql("SELECT count(*) FROM e2e_rows") == "300"
        cleaned = stack.make("clean").stdout
        assert f"Left the external database at {host} alone" in cleaned, cleaned[-1000:]
        assert psql("SELECT count(*) FROM e2e_rows") == "300"  # untouched
    finally:
        run(
            "docker", "rm", "--force", name, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    return f"no postgres service; Hasura and graphql on {host}:{port}; 300 rows backed up and restored; kept by make clean"


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
    ("a run from the UI's Run page with n_users=37", run_page),
    ("a 10-user run from the UI, idle agent: its wait in parts, next to its floor", run_wait),
    ("a Quick Run from the UI: the default 10 users", quick_run),
    ("hasura's health probe, in an image without wget or curl", hasura_probe),
    ("scheduled run of the schedule's 5 users", scheduled),
    ("prefect run --watch, in the agent's container", prefect_run_watch),
    ("n_users=0 fails clearly, writes nothing", zero_users),
    ("NOTIFY_WEBHOOK_URL: a failed run posts one alert", alerts),
    ("a flow container killed: retried in a new one, or Failed with an alert", killed_container),
    ("a flow of another image: refused by the agent, no container", foreign_image),
    ("runs whose run config sets binds or env: Failed, no container", run_configs_refused),
    ("a flow container reaches apollo, not hasura or postgres", database_out_of_reach),
    ("agent restarted, claims the next run", agent_restart),
    (f"{LOAD_RUNS} runs at once, all Success with exact reports", load),
    (f"{HOUSEKEEPING_WAVES} waves of runs, each then Server housekeeping: rows bounded", housekeeping),
    ("code change + make register: new version, new image, used by runs", code_change),
    ("REGISTRY_URL: pushed, local copy gone, the agent pulls", registry),
    ("make agent elsewhere: claims its labelled run, through APOLLO_BIND", remote_agent),
    ("make up PUBLIC=1: one HTTPS port, a login, a token; a remote agent through it", team_access),
    ("make up DASK=1 DASK_WORKERS=2: one run over both workers", dask_cluster),
    ("make down, make up: same .env, same registration", down_and_up),
    ("make backup, DROP TABLE, make restore: rows back", backup_and_restore),
    ("make clean removes the database volume", clean),
    ("POSTGRES_HOST: no postgres service; backup, restore and clean on it", external_database),
]
