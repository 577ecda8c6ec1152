"""Hops of the watching from outside: the exporter, Prometheus and Alertmanager of the stack
(Debian's packages in local images), on a clock compressed for the e2e (COMPRESSED below),
alerting a Slack-format receiver on the stack's network. The e2e's checkout runs them on
a compressed clock (tests/programs/e2e_stack.py COMPRESSED)."""

import json
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.helpers import start_receiver, webhook_url
from tests.programs.e2e_base import run
from tests.programs.e2e_stack import Stack, output


def messages(receiver: str) -> list:
    """Alertmanager's posts to the receiver so far: (title, text) of each attachment."""
    posted = [
        json.loads(line) for line in output("docker", "logs", receiver).splitlines() if line.startswith("{")
    ]
    return [(a.get("title", ""), a.get("text", "")) for body in posted for a in body.get("attachments", [])]


def post_refused(url: str, body: bytes) -> str:
    """What the proxy answers a JSON POST it must refuse."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    return refused.value.read().decode()


def wait_for(receiver: str, title: str, seconds: float) -> float:
    """Seconds until a message titled `title` reached the receiver."""
    started = time.monotonic()
    while not any(got == title for got, _ in messages(receiver)):
        assert time.monotonic() - started < seconds, f"no {title} within {seconds} s: {messages(receiver)}"
        time.sleep(1)
    return time.monotonic() - started


def watched(stack: Stack) -> str:
    """NOTIFY_WEBHOOK_URL set: Watchdog arrives; a failed run gives RunFailed once; the agent
    stopped gives AgentsDown, and FlowStale for the every-minute schedule that stops
    succeeding; the agent started again resolves AgentsDown. The metrics are at /metrics on
    the API port, Prometheus and Alertmanager at the UI's /prometheus/ and /alertmanager/."""
    if stack.version != "v2":
        pytest.skip("Compose v2's stack watches; the services are the same under v1")
    with urllib.request.urlopen(f"{stack.api}/metrics", timeout=10) as answer:
        metrics = answer.read().decode()
    assert re.search(r'^prefect_service_up\{service="apollo"\} 1\.0$', metrics, re.M), metrics[:2000]
    assert re.search(r'^prefect_flow_alerts_enabled\{flow="Memory check",.*\} 0\.0$', metrics, re.M), "ALERTS"
    ui = f"http://127.0.0.1:{stack.ui_port}"
    for page in ("prometheus/-/healthy", "alertmanager/-/healthy"):
        with urllib.request.urlopen(f"{ui}/{page}", timeout=10) as answer:
            assert answer.status == 200, page
    # Prometheus's queries as its UI and Grafana send them, forms; a forged alert refused.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    query = urllib.request.Request(f"{ui}/prometheus/api/v1/query", b"query=up", form)
    with urllib.request.urlopen(query, timeout=10) as answer:
        assert json.loads(answer.read())["status"] == "success"
    forged = json.dumps([{"labels": {"alertname": "Forged"}}]).encode()
    refused = post_refused(f"{ui}/alertmanager/api/v2/alerts", forged)
    assert (
        refused
        == "403 door: POST /alertmanager/api/v2/alerts: no role may send it through the door (role admin, local)"
    )
    with urllib.request.urlopen(f"{ui}/alertmanager/api/v2/alerts", timeout=10) as answer:
        assert "Forged" not in answer.read().decode()
    receiver = start_receiver(stack)
    figures = {}
    try:
        with stack.settings(NOTIFY_WEBHOOK_URL=webhook_url(receiver)):
            stack.compose("up", "-d", "alertmanager", capture_output=True)
            figures["Watchdog"] = wait_for(receiver, "[Watchdog]", 90)
            run_id = stack.create_run({"n_users": 0})
            assert stack.wait_for_runs([run_id])[run_id]["state"] == "Failed", stack.explain(run_id)
            figures["RunFailed"] = wait_for(receiver, "[RunFailed]", 60)
            stack.compose("stop", "agent", capture_output=True)
            try:
                # The rules' times on this clock: 15 s without an ask, then 4 s; 1.5 minutes
                # without a Success (the schedule is every minute), then 4 s; each scraped,
                # evaluated and sent within 2 s more. The bounds leave a slow machine room.
                figures["AgentsDown"] = wait_for(receiver, "[AgentsDown]", 60)
                figures["FlowStale"] = wait_for(receiver, "[FlowStale]", 150)
            finally:
                stack.compose("start", "agent", capture_output=True)
            figures["AgentsDown resolved"] = wait_for(receiver, "[resolved: AgentsDown]", 120)
            # Earlier hops' failures are in the same hour: one message tells of them all, and
            # of the last one then, by its message and page.
            (failed,) = [text for title, text in messages(receiver) if title == "[RunFailed]"]
            named = re.search(
                r'^Failed runs of "Users report" in the last hour: \d+\. The last, .+ (\S+/default/flow-run/(\S+))$',
                failed,
            )
            assert named and named.group(1).startswith("http"), failed
            last = stack.run(named.group(2))
            assert last["state"] == "Failed" and " ".join(last["state_message"].split())[:300] in failed, (
                failed
            )
        stack.compose("up", "-d", "alertmanager", capture_output=True)
    finally:
        run("docker", "rm", "--force", receiver, stdout=subprocess.DEVNULL)
    return ", ".join(f"{name} after {seconds:.0f} s" for name, seconds in figures.items())
