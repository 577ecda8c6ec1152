"""What the stand-in does with projects, flows and their schedules, as PrefectHQ/server
0f74a9a's graphql/flows.py and api/flows.py do."""

import uuid

import pendulum
from graphql import GraphQLError


class Flows:
    """The rules of projects, flows and schedules, mixed into PrefectAPIStandIn (api.py)."""

    def create_project(self, tenant_id, name) -> dict:
        self.check_tenant(tenant_id)
        if self.select("project", {"name": {"_eq": name}}):
            raise GraphQLError("Uniqueness violation: a project with this name exists")
        return self.insert("project", tenant_id=tenant_id, name=name)

    def create_flow(
        self,
        serialized_flow,
        project_id,
        version_group_id=None,
        idempotency_key=None,
        description=None,
        set_schedule_active=True,
    ) -> dict:
        """As graphql/flows.py and api/flows.py create_flow do (PrefectHQ/server 0f74a9a):
        versions are grouped by version_group_id (given, else the one of the latest flow of
        that name in the project, else a new one), which names the flow group; the group's
        settings keep the last idempotency key, and a matching key returns the current
        version; a new version archives the others."""
        from prefect.utilities.graphql import decompress

        serialized = decompress(serialized_flow)
        project = self.tables["project"].get(project_id)
        if project is None:
            raise GraphQLError(f"stand-in: no project {project_id}")
        group_id = version_group_id
        if not group_id:
            named = self.select(
                "flow",
                {"project_id": {"_eq": project["id"]}, "name": {"_eq": serialized["name"]}},
                order_by={"created": "desc"},
                limit=1,
            )
            group_id = named[0]["version_group_id"] if named else str(uuid.uuid4())
        key = idempotency_key
        group = next((g for g in self.tables["flow_group"].values() if g["name"] == group_id), None)
        if group is None:
            group = self.insert(
                "flow_group",
                name=group_id,
                labels=None,
                default_parameters={},
                schedule=None,
                run_config=None,
                description=None,
                settings={
                    "heartbeat_enabled": True,
                    "lazarus_enabled": True,
                    "version_locking_enabled": False,
                    "idempotency_key": key,
                },
            )
        else:
            current = self.select(
                "flow",
                {"version_group_id": {"_eq": group_id}, "archived": {"_eq": False}},
                order_by={"version": "desc"},
                limit=1,
            )
            if key and group["settings"].get("idempotency_key") == key and current:
                return self.tables["flow"][current[0]["id"]]
            group["settings"]["idempotency_key"] = key
        versions = [flow for flow in self.tables["flow"].values() if flow["version_group_id"] == group_id]
        flow = self.insert(
            "flow",
            name=serialized["name"],
            version=max((f["version"] for f in versions), default=0) + 1,
            version_group_id=group_id,
            flow_group_id=group["id"],
            project_id=project["id"],
            archived=False,
            is_schedule_active=False,
            schedule=serialized.get("schedule"),
            parameters=serialized.get("parameters"),
            storage=serialized.get("storage"),
            environment=serialized.get("environment"),
            run_config=serialized.get("run_config"),
            core_version=serialized.get("__version__"),
            serialized_flow=serialized,
            description=description,
            settings=group["settings"],
        )
        for old in versions:
            if not old["archived"]:
                self.archive_flow(old)
        if set_schedule_active:
            self.set_schedule_active(flow["id"])
        return flow

    def archive_flow(self, flow):
        """As api/flows.py archive_flow: its auto-scheduled runs still Scheduled are deleted,
        its ad-hoc ones still Scheduled are cancelled."""
        from prefect.engine.state import Cancelled

        flow["archived"], flow["is_schedule_active"] = True, False
        for run in list(self.tables["flow_run"].values()):
            if run["flow_id"] != flow["id"] or run["state"] != "Scheduled":
                continue
            if run["auto_scheduled"]:
                del self.tables["flow_run"][run["id"]]
                for task_run in [
                    t for t in self.tables["task_run"].values() if t["flow_run_id"] == run["id"]
                ]:
                    del self.tables["task_run"][task_run["id"]]
            else:
                cancelled = Cancelled(message=f"Flow {flow['id']} was archived.")
                self.set_states("flow_run", [{"flow_run_id": run["id"], "state": cancelled.serialize()}])

    def register_tasks(self, flow_id, serialized_tasks) -> None:
        flow = self.tables["flow"][flow_id]
        known = {task["slug"] for task in self.tables["task"].values() if task["flow_id"] == flow["id"]}
        for task in serialized_tasks:
            if task["slug"] not in known:
                self.insert(
                    "task",
                    flow_id=flow["id"],
                    slug=task["slug"],
                    name=task["name"],
                    mapped=False,
                    max_retries=task.get("max_retries") or 0,
                    retry_delay=task.get("retry_delay"),
                )

    def set_flow_group_run_config(self, flow_group_id, run_config=None) -> bool:
        """As api/flow_groups.py set_flow_group_run_config: every later run of the group
        gets it (None takes it away), scheduled ones included."""
        group = self.tables["flow_group"].get(flow_group_id)
        if group is not None:
            group["run_config"] = run_config
        return group is not None

    def set_schedule_active(self, flow_id) -> bool:
        """As api/flows.py set_schedule_active: only a flow with a schedule; its next runs
        are made at once, as the scheduler would."""
        flow = self.tables["flow"][flow_id]
        if not flow["schedule"]:
            return False
        flow["is_schedule_active"] = True
        self.schedule_runs(flow_id=flow["id"])
        return True

    def schedule_runs(self, count: int = 10, flow_id=None) -> int:
        """Towel's scheduler (api/flows.py schedule_flow_runs): the next `count` runs of every
        active schedule, or of one flow's, once each (by idempotency key)."""
        from prefect.serialization.schedule import ScheduleSchema

        created = 0
        with self.lock:
            for flow in list(self.tables["flow"].values()):
                if (
                    (flow_id and flow["id"] != flow_id)
                    or flow["archived"]
                    or not flow["is_schedule_active"]
                    or not flow["schedule"]
                ):
                    continue
                schedule = ScheduleSchema().load(flow["schedule"])
                for event in schedule.next(
                    count, after=pendulum.now("UTC").subtract(seconds=1), return_events=True
                ):
                    runs = len(self.tables["flow_run"])
                    self.create_flow_run(
                        flow_id=flow["id"],
                        parameters=event.parameter_defaults or None,
                        labels=event.labels,
                        scheduled_start_time=event.start_time.isoformat(),
                        idempotency_key=f"auto-scheduled:{event.start_time.in_timezone('UTC')}",
                        auto_scheduled=True,
                    )
                    created += len(self.tables["flow_run"]) - runs
        return created
