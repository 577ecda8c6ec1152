"""Alerts: the server's cloud hook on each flow, posted to NOTIFY_WEBHOOK_URL."""

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
    alerting = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url}
    register(alerting)
    register(alerting)
    assert our_hooks(standin) == [("SLACK_WEBHOOK", ["FAILED", "TIMEDOUT"], receiver.url)]
    (hook,) = standin.tables["cloud_hook"].values()
    assert hook["version_group_id"] == only_flow(standin)["version_group_id"]

    register({**alerting, "NOTIFY_ON": "all"})
    assert our_hooks(standin) == [
        ("SLACK_WEBHOOK", ["CANCELLED", "FAILED", "SUCCESS", "TIMEDOUT"], receiver.url)
    ]
    register(stack_env)  # no URL: no alerts
    assert our_hooks(standin) == []
    output = "".join(result.stdout + result.stderr for result in [register(alerting)])
    assert receiver.url not in output and "secret" not in output


@pytest.mark.parametrize(
    "n_users, api_fault, message",
    [
        (0, None, "n_users must be a whole number"),
        (5, "500", "it answered 500 Internal Server Error"),
    ],
)
def test_a_failed_run_posts_one_alert(n_users, api_fault, message, standin, stack_env, users_api, receiver):
    users_api.always = api_fault
    env = {**stack_env, "NOTIFY_WEBHOOK_URL": receiver.url}
    run_id, _, result = adhoc_run(standin, env, n_users)

    assert standin.tables["flow_run"][run_id]["state"] == "Failed"
    (alert,) = receiver.texts()
    name = standin.tables["flow_run"][run_id]["name"]
    assert alert[0] == f"Run `{name}` of flow `Users report` entered a new state:"
    assert alert[1] == "*State:* `Failed`" and message in alert[2]
    assert alert[3] == f"*Link:* http://localhost:4200/default/flow-run/{run_id}"


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
