"""register.py against the Prefect API stand-in: tenant, project, one version per change, the
schedule's runs."""

import pendulum

from stack.catalog import FlowPackage
from tests.support import users_report_entry
from tests.support.agent_runs import (
    only_flow,
    register,
    run_module,
)

FLOW_SCRIPT_IN_IMAGE = FlowPackage("users_report").script_in_image


def test_register_creates_tenant_project_and_one_flow_version(standin, stack_env):
    register(stack_env)
    again = register(stack_env)  # unchanged: no new version, not even sent
    assert "Users report: skipped (unchanged since its current version)" in again.stdout

    assert len(standin.tables["tenant"]) == 1
    assert [project["name"] for project in standin.tables["project"].values()] == ["Data office"]
    flow = only_flow(standin)
    assert (flow["name"], flow["version"], flow["is_schedule_active"]) == ("Users report", 1, True)
    storage = flow["storage"]
    assert storage["type"] == "Docker" and storage["stored_as_script"] is True
    assert storage["flows"] == {"Users report": FLOW_SCRIPT_IN_IMAGE}
    assert storage["image_name"] == "users-report-flow" and len(storage["image_tag"]) == 12
    assert flow["run_config"]["type"] == "DockerRun"
    assert flow["run_config"]["labels"] == ["users-report"]
    registrations = [op for op in standin.operations if op[1] == ["create_flow_from_compressed_string"]]
    assert len(registrations) == 1
    assert {task["slug"] for task in standin.tables["task"].values()} == {
        "n_users",
        "plan_pages-1",
        "download_data-1",
        "parse_data-1",
        "save_report-1",
        "remove_staging-1",
        "remove_old_reports-1",
    }

    changed = {**stack_env, "SCHEDULE_N_USERS": "25"}
    register(changed)
    versions = sorted((flow["version"], flow["archived"]) for flow in standin.tables["flow"].values())
    assert versions == [(1, True), (2, False)]


def test_registering_schedules_the_next_runs_with_the_schedules_users(standin, stack_env):
    register(stack_env)
    dry_run = users_report_entry(run_module(["register.py", "--dry-run"], stack_env).stdout)

    # set_schedule_active made the next 10 runs at once; the scheduler makes each only once.
    assert len(standin.tables["flow_run"]) == 10
    assert standin.schedule_runs() == 0
    runs = sorted(standin.tables["flow_run"].values(), key=lambda run: run["scheduled_start_time"])
    assert all(run["parameters"] == {"n_users": 10} and run["state"] == "Scheduled" for run in runs)
    assert all(run["labels"] == ["users-report"] for run in runs)
    assert [pendulum.parse(run["scheduled_start_time"]) for run in runs[:5]] == [
        pendulum.parse(when) for when in dry_run["next_runs"]
    ]

    only_flow(standin)["is_schedule_active"] = False
    standin.tables["flow_run"].clear()
    assert standin.schedule_runs() == 0
