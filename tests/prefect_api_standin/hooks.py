"""Cloud hooks, as PrefectHQ/server 0f74a9a's api/cloud_hooks.py: created and deleted through
the API; a SLACK_WEBHOOK hook (the type the stack registers; the others are stored, not
called) is called on every flow run state change that matches its states and version group,
in the background (the state change never waits for it), 1 s timeout, errors only logged."""

import json
import os
import threading
import urllib.request

from graphql import GraphQLError
from prefect.engine.state import State

# What the server accepts: the names of prefect's State classes, upper-cased.
ALL_STATES = {state.__name__.upper() for state in State.children()}


class Hooks:
    """The rules of cloud hooks, and their calls, mixed into PrefectAPIStandIn (api.py)."""

    def create_cloud_hook(self, tenant_id, type, states, name=None, version_group_id=None, config=None):
        self.check_tenant(tenant_id)
        states = sorted({state.upper() for state in states})
        if not states or not set(states) <= ALL_STATES:
            raise GraphQLError("Invalid states")
        if type in {"WEBHOOK", "SLACK_WEBHOOK"} and set(config or {}) != {"url"}:
            raise GraphQLError("Invalid config; expected `url`")
        return self.insert(
            "cloud_hook",
            tenant_id=tenant_id,
            type=type,
            name=name,
            version_group_id=version_group_id,
            states=states,
            config=config,
            active=True,
        )

    def delete_cloud_hook(self, cloud_hook_id) -> bool:
        return self.tables["cloud_hook"].pop(cloud_hook_id, None) is not None

    def call_hooks(self, run: dict, state: dict) -> None:
        flow = self.tables["flow"][run["flow_id"]]
        tenant = self.tables["tenant"][self.tables["project"][flow["project_id"]]["tenant_id"]]
        for hook in list(self.tables["cloud_hook"].values()):
            if (
                hook["active"]
                and hook["type"] == "SLACK_WEBHOOK"
                and hook["tenant_id"] == tenant["id"]
                and state["type"].upper() in hook["states"]
                and hook["version_group_id"] in {None, flow["version_group_id"]}
            ):
                body = _slack_message(run, flow, tenant, state)
                threading.Thread(target=_post, args=(hook["config"]["url"], body), daemon=True).start()


def _slack_message(run, flow, tenant, state) -> dict:
    """As the server's _call_slack_webhook builds it. Its link: the server's config's api.url
    (PREFECT_SERVER__API__URL), the tenant's slug, the run."""
    api_url = os.environ.get("PREFECT_SERVER__API__URL", "http://localhost:4200")
    link = f"{api_url}/{tenant['slug']}/flow-run/{run['id']}"
    return {
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"Run `{run['name']}` of flow `{flow['name']}` entered a new state:",
                },
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*State:* `{state['type']}`"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Message:* {state.get('message')}"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Link:* {link}"}},
        ]
    }


def _post(url: str, body: dict) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(request, timeout=1).close()
    except OSError as exc:  # logged by the server, never raised into the state change
        print(f"stand-in: cloud hook call failed: {exc}", flush=True)
