"""Hops of alerts: NOTIFY_WEBHOOK_URL and the server's cloud hooks (failures are
Alertmanager's: tests/e2e/monitoring.py)."""

from tests.e2e.helpers import start_receiver, the_alert, webhook_url
from tests.programs.e2e_stack import Stack


def alerts(stack: Stack) -> str:
    """NOTIFY_WEBHOOK_URL set and NOTIFY_ON=all, `make register`: one cloud hook for each
    flow with alerts (Memory check has them off); a successful run makes the server post one
    Slack-format alert to a receiver on the stack's network."""
    receiver = start_receiver(stack)
    with stack.settings(NOTIFY_WEBHOOK_URL=webhook_url(receiver), NOTIFY_ON="all"):
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
        run_id = stack.create_run({"n_users": 3})
        assert stack.wait_for_runs([run_id])[run_id]["state"] == "Success", stack.explain(run_id)
        text = the_alert(receiver, run_id)
    stack.make("register")
    assert not stack.graphql("query { cloud_hook { id } }")["cloud_hook"], "hooks left without the setting"
    assert "*State:* `Success`" in text, text
    assert f"*Link:* http://localhost:8080/default/flow-run/{run_id}" in text, text
    return (
        "one hook a flow after two registrations, none once unset; the run's alert: "
        + text.splitlines()[2][:80]
    )
