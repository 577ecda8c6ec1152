"""What `make e2e` asks of a stack's server, through Prefect Server's own GraphQL (which the
stand-in answers too, so that every hop reads the real server the same way): flows, runs
started as the UI starts them, their states, task runs, logs and reports."""

import time

from tests.programs.smoke import check_report
from tests.support.ui_operations import CREATE_FLOW_RUN, FLOW_PAGE_QUERY, post, run_page_variables

FINISHED = {"Success", "Failed", "Cancelled", "TimedOut"}
RUN_FIELDS = "id flow_id state state_message parameters auto_scheduled scheduled_start_time"


class ServerQueries:
    """Mixed into Stack: needs its `api`, `compose`, `reports` and `app_uid`."""

    def graphql(self, query: str, variables=None) -> dict:
        """The data of one answer of the API: Prefect Server's own GraphQL, which the
        stand-in answers too, so that every hop reads the real server the same way."""
        answer = post(self.api, query, variables or {})
        assert "errors" not in answer, answer
        return answer["data"]

    def flows(self, name: str = "Users report") -> list:
        return self.graphql(
            "query($name: String) { flow(where: {name: {_eq: $name}}, order_by: "
            "{version: asc}) { id version archived flow_group_id version_group_id "
            "storage run_config } }",
            {"name": name},
        )["flow"]

    def active_flow(self, name: str = "Users report") -> dict:
        (flow,) = [flow for flow in self.flows(name) if not flow["archived"]]
        return flow

    def runs(self, where: dict) -> dict:
        """The flow runs `where` selects, by id, oldest scheduled first."""
        found = self.graphql(
            "query($where: flow_run_bool_exp) { flow_run(where: $where, order_by: "
            "{scheduled_start_time: asc}) { " + RUN_FIELDS + " } }",
            {"where": where},
        )
        return {run["id"]: run for run in found["flow_run"]}

    def run(self, run_id: str) -> dict:
        return self.runs({"id": {"_eq": run_id}})[run_id]

    def task_runs(self, run_id: str) -> list:
        return self.graphql(
            "query($id: uuid!) { flow_run_by_pk(id: $id) { task_runs { map_index state "
            "state_message task { slug } } } }",
            {"id": run_id},
        )["flow_run_by_pk"]["task_runs"]

    def logs(self, run_id: str) -> list:
        return [
            log["message"]
            for log in self.graphql(
                "query($id: uuid!) { flow_run_by_pk(id: $id) { logs(order_by: {timestamp: asc}) { message } } }",
                {"id": run_id},
            )["flow_run_by_pk"]["logs"]
        ]

    def create_run(self, inputs=None, labels=None, flow_name="Users report") -> str:
        """A run started as a person starts it in the UI: on the flow's Run page with
        `inputs` (and `labels` instead of the flow's), or with Quick Run (no inputs)."""
        flow = self.active_flow(flow_name)
        if inputs is None:
            variables = {"id": flow["id"]}
        else:
            page = post(self.api, FLOW_PAGE_QUERY, {"id": flow["flow_group_id"]})["data"]["flow_group_by_pk"]
            variables = run_page_variables(page, inputs, "e2e-run", labels)
        answer = post(self.api, CREATE_FLOW_RUN, variables)
        assert "errors" not in answer, answer
        return answer["data"]["create_flow_run"]["id"]

    def wait_for_runs(self, run_ids, seconds: float = 180) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            runs = self.runs({"id": {"_in": list(run_ids)}})
            if all(run["state"] in FINISHED for run in runs.values()) or time.monotonic() > deadline:
                return runs
            time.sleep(1)

    def explain(self, run_id: str) -> str:
        """A run's state, its task runs' states and messages, its logs and the agent's lines
        about it: what a failing hop prints."""
        flow_run = self.run(run_id)
        lines = [f"run {run_id}: {flow_run['state']}: {flow_run['state_message']}"]
        lines += [
            f"  task {t['task']['slug']}[{t['map_index']}]: {t['state']}: {t['state_message']}"
            for t in self.task_runs(run_id)
        ]
        lines += [f"  log {message.strip()[:200]}" for message in self.logs(run_id)][-15:]
        agent_log = self.compose("logs", "--no-color", "agent", capture_output=True, text=True).stdout
        lines += [f"  agent {line}" for line in agent_log.splitlines() if run_id in line][-10:]
        return "\n".join(lines)

    def successful_runs(
        self, n_users: int, count: int = 1, seconds: float = 180, quick_run: bool = False
    ) -> list:
        """Starts `count` runs of `n_users` from the UI (Quick Run: the default's users) and
        returns their reports once all succeeded."""
        inputs = None if quick_run else {"n_users": n_users}
        run_ids = [self.create_run(inputs) for _ in range(count)]
        runs = self.wait_for_runs(run_ids, seconds)
        failed = [run_id for run_id, flow_run in runs.items() if flow_run["state"] != "Success"]
        if failed:
            raise AssertionError(
                f"{len(failed)} of {count} runs did not succeed:\n"
                + "\n".join(self.explain(run_id) for run_id in failed)
            )
        return [self.report_of(run_id, n_users) for run_id in run_ids]

    def report_of(self, run_id: str, n_users: int) -> str:
        assert len(list(self.reports.glob(f"users-report-*-{run_id[:8]}.csv"))) == 1
        report = check_report(self.reports, run_id, n_users)  # the run's, with n_users rows
        owner = report.stat().st_uid
        assert owner == self.app_uid, f"{report.name} belongs to uid {owner}, not {self.app_uid}"
        return f"{report.name}: {n_users} rows, owner uid {owner}"
