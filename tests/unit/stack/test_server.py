from prefect.utilities.graphql import GraphQLResult

from stack import server


class FakeClient:
    """The calls of prefect.Client the server module makes, answered from `hooks`."""

    def __init__(self, hooks=(), tenants=({"id": "t1"},), projects=()):
        self.hooks, self.tenants, self.projects, self.calls = list(hooks), list(tenants), list(projects), []

    def get_available_tenants(self):
        return self.tenants

    def create_tenant(self, name):
        self.calls.append(("create_tenant", name))

    def create_project(self, project_name):
        self.calls.append(("create_project", project_name))

    def graphql(self, query, variables=None):
        text = str(query)
        if "version_group_id" in text and "flow_by_pk" in text:
            return GraphQLResult({"data": {"flow_by_pk": {"version_group_id": "g1"}}})
        if "cloud_hook" in text and "query" in text and not variables:
            return GraphQLResult({"data": {"cloud_hook": self.hooks}})
        if "project" in text and not variables:
            return GraphQLResult({"data": {"project": self.projects}})
        self.calls.append((text.split("(")[1].split(":")[0].strip("$"), variables))
        return GraphQLResult({"data": {}})


def hook(hook_id, url, states=("CANCELLED", "SUCCESS")):
    return {"id": hook_id, "type": "SLACK_WEBHOOK", "states": list(states), "config": {"url": url}}


def test_a_tenant_and_a_project_are_made_only_when_missing():
    client = FakeClient(tenants=[])
    server.ensure_project(client, "Data office")
    assert client.calls == [("create_tenant", "default"), ("create_project", "Data office")]
    present = FakeClient(projects=[{"id": "p"}])
    server.ensure_project(present, "Data office")
    assert present.calls == []


def test_one_hook_of_ours_is_left_the_same_one_kept():
    client = FakeClient(
        hooks=[hook("old", "https://hooks.example/a"), hook("keep", "https://hooks.example/b")]
    )
    server.ensure_alert_hook(client, "flow-1", "https://hooks.example/b", "all")
    assert client.calls == [("input", {"input": {"cloud_hook_id": "old"}})]


def test_failures_alone_need_no_hook_and_an_older_failures_hook_goes():
    """Alertmanager's RunFailed tells of failures; a hook of an earlier version that posted
    them too would tell each failure twice."""
    client = FakeClient(hooks=[hook("older", "https://hooks.example/a", ("FAILED", "TIMEDOUT"))])
    server.ensure_alert_hook(client, "flow-1", "https://hooks.example/a", "failed")
    assert client.calls == [("input", {"input": {"cloud_hook_id": "older"}})]


def test_a_changed_url_or_states_replaces_the_hook_and_no_url_removes_it():
    client = FakeClient(hooks=[hook("old", "https://hooks.example/a", ("FAILED", "TIMEDOUT"))])
    server.ensure_alert_hook(client, "flow-1", "https://hooks.example/a", "all")
    (deleted, created) = client.calls
    assert deleted[1] == {"input": {"cloud_hook_id": "old"}}
    assert created[1]["input"]["states"] == server.NOTIFY_STATES["all"]
    assert created[1]["input"]["version_group_id"] == "g1" and created[1]["input"]["name"] == server.HOOK_NAME
    off = FakeClient(hooks=[hook("old", "https://hooks.example/a")])
    server.ensure_alert_hook(off, "flow-1", "", "all")
    assert off.calls == [("input", {"input": {"cloud_hook_id": "old"}})]
