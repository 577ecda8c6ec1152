"""What the Prefect UI (core-0.15.9 image: PrefectHQ/ui 2092e92) sends when a person opens
the flow's page and starts a run from it, for tests to replay against the API.

- FLOW_PAGE_QUERY: src/graphql/Flow/flow.js (Server edition), polled by src/pages/Flow/Flow.vue.
- CREATE_FLOW_RUN: src/graphql/Mutations/create-flow-run.gql, sent by the Run page
  (src/pages/Flow/Run.vue, with every variable) and by Quick Run
  (src/pages/Flow/Actions.vue, with `id` only).
"""

import json
import urllib.request

FLOW_PAGE_QUERY = """
query Flow($id: uuid!) {
  flow_group_by_pk(id: $id) {
    id labels created description name default_parameters schedule
    flows {
      id archived core_version created description run_config environment flow_group_id
      is_schedule_active name parameters project { id name } schedule storage updated
      version version_group_id
    }
    settings updated
  }
}
"""

CREATE_FLOW_RUN = """
mutation CreateFlowRun($context: JSON, $id: UUID!, $flowRunName: String, $parameters: JSON,
                       $scheduledStartTime: DateTime, $runConfig: JSON, $labels: [String!]) {
  create_flow_run(input: {context: $context, flow_id: $id, flow_run_name: $flowRunName,
                          parameters: $parameters, scheduled_start_time: $scheduledStartTime,
                          run_config: $runConfig, labels: $labels}) {
    id
  }
}
"""


def post(api_url: str, query: str, variables: dict, **headers) -> dict:
    """One request as the UI's Apollo client makes it (with `headers`, e.g. its Origin);
    the answer's JSON."""
    request = urllib.request.Request(
        f"{api_url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def run_page_variables(flow_group: dict, inputs: dict, run_name: str, labels=None) -> dict:
    """The Run page's variables for the group's current version, as Run.vue builds them: the
    inputs as typed, no context or start time, the flow's run config with its labels
    emptied, and the labels field pre-filled (the group's, else the run config's) unless
    the person changed it (`labels`)."""
    (flow,) = [flow for flow in flow_group["flows"] if not flow["archived"]]
    run_config = flow["run_config"]
    prefilled = flow_group["labels"] or (run_config or {}).get("labels") or []
    return {
        "context": {},
        "id": flow["id"],
        "flowRunName": run_name,
        "parameters": inputs,
        "scheduledStartTime": None,
        "runConfig": {**run_config, "labels": []} if run_config else None,
        "labels": prefilled if labels is None else labels,
    }


# `prefect run` as docs/pipeline.md shows it: an ad-hoc run of 5 users, followed to its end.
PREFECT_RUN_WATCH = (
    "run",
    "--name",
    "Users report",
    "--project",
    "Data office",
    "--param",
    "n_users=5",
    "--watch",
)
