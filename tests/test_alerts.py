"""Alerts of the server's cloud hook on each flow, posted to NOTIFY_WEBHOOK_URL: the ends of
runs other than failures (NOTIFY_ON=all). Failures are Alertmanager's (tests/test_monitoring.py)."""

import time

import pytest

from tests.support.agent_runs import (
    adhoc_run,
    only_flow,
    register,
)
from tests.support.webhook_receiver import WebhookReceiver


def our_hooks(standin):
    return [
        (hook["type"], hook["states"], hook["config"]["url"])
        for hook in standin.tables["cloud_hook"].values()
    ]


def test_registering_leaves_exactly_one_alert_hook(standin, stack_env, receiver):
    alerting = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url, "NOTIFY_ON": "all"}
    register(alerting)
    register(alerting)
    assert our_hooks(standin) == [("SLACK_WEBHOOK", ["CANCELLED", "SUCCESS"], receiver.url)]
    (hook,) = standin.tables["cloud_hook"].values()
    assert hook["version_group_id"] == only_flow(standin)["version_group_id"]

    register(stack_env)  # no URL: no alerts
    assert our_hooks(standin) == []
    output = "".join(result.stdout + result.stderr for result in [register(alerting)])
    assert receiver.url not in output and "secret" not in output


def test_failures_are_left_to_alertmanager_and_an_older_failures_hook_goes(standin, stack_env, receiver):
    """An earlier version's hook posted failures; RunFailed tells of them now, once."""
    alerting = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url}
    register(alerting)
    with standin.lock:
        (tenant,) = standin.tables["tenant"]
        standin.create_cloud_hook(
            tenant, "SLACK_WEBHOOK", ["FAILED", "TIMEDOUT"], name="users-report alerts",
            version_group_id=only_flow(standin)["version_group_id"], config={"url": receiver.url},
        )  # fmt: skip
    register(alerting)
    assert our_hooks(standin) == []

    run_id, _, _ = adhoc_run(standin, {**alerting, "NOTIFY_ON": "all"}, 0)
    assert standin.tables["flow_run"][run_id]["state"] == "Failed"
    assert receiver.texts(seconds=2) == []


@pytest.mark.parametrize("notify_on, alerts", [("failed", 0), ("all", 1)])
def test_a_successful_run_is_silent_unless_asked(notify_on, alerts, standin, stack_env, receiver):
    env = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url, "NOTIFY_ON": notify_on}
    run_id, _, result = adhoc_run(standin, env, 3)

    assert standin.tables["flow_run"][run_id]["state"] == "Success"
    texts = receiver.texts(seconds=2)
    assert len(texts) == alerts and all(text[1] == "*State:* `Success`" for text in texts)


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_a_broken_receiver_changes_no_run(mode, standin, stack_env):
    receiver = WebhookReceiver(mode=mode, hang_seconds=10)
    try:
        env = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url, "NOTIFY_ON": "all"}
        begun = time.monotonic()
        failed_id, _, _ = adhoc_run(standin, env, 0)
        succeeded_id, _, _ = adhoc_run(standin, env, 4)
        assert time.monotonic() - begun < 60  # no state change waited 10 s for a hung receiver
        assert standin.tables["flow_run"][failed_id]["state"] == "Failed"
        assert standin.tables["flow_run"][succeeded_id]["state"] == "Success"
        assert len(receiver.texts()) >= 1
    finally:
        receiver.stop()
