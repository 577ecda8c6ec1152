"""Every package under flows/ is a flow the stack deploys: a copy of the checkout with a
second, small flow ("Greeting": one secret, one run at once, its own memory limit),
through register.py, the stand-in and the agent as agent/start.py builds it."""

from pathlib import Path

import prefect
import pytest

from tests.support import copy_of_checkout, users_report_entry
from tests.support import run_module as run_program
from tests.support.agent_runs import agent_polls, client, run_container_here, run_module, states_of

GREETING_FLOWS = '''"""A flow of a second team: writes its secret word into the reports folder."""
import os
from pathlib import Path

import prefect
from prefect import Flow, task
from prefect.tasks.secrets import PrefectSecret


@task
def greet(word):
    path = Path(os.environ["REPORTS_DIR"]) / f"greeting-{prefect.context.flow_run_id}.txt"
    path.write_text(f"{word}\\n")


with Flow("Greeting") as flow:
    greet(PrefectSecret("GREETING_WORD"))
'''
GREETING_DEPLOYMENT = """MAX_RUNNING = 1
MEMORY_LIMIT = "300m"
SECRETS = ["GREETING_WORD"]
ALERTS = False
"""
SECRET = "s3cret-word"


@pytest.fixture
def checkout(tmp_path):
    """A copy of this checkout with flows/greeting/ added."""
    copy = copy_of_checkout(tmp_path / "checkout")
    (copy / "flows" / "greeting").mkdir()
    (copy / "flows" / "greeting" / "__init__.py").write_text("")
    (copy / "flows" / "greeting" / "flows.py").write_text(GREETING_FLOWS)
    (copy / "flows" / "greeting" / "deployment.py").write_text(GREETING_DEPLOYMENT)
    return copy


@pytest.fixture
def env_of(stack_env, tmp_path):
    """The stack's environment for programs of `checkout`, its secrets file holding `secrets`."""

    def env(checkout: Path, secrets=f"# the flows' secrets\nGREETING_WORD={SECRET}\n"):
        (tmp_path / "flow-secrets.env").write_text(secrets)
        return {
            **stack_env,
            "PYTHONPATH": str(checkout),
            "FLOW_SECRETS_FILE": str(tmp_path / "flow-secrets.env"),
        }

    return env


def dry_run(checkout: Path, env: dict) -> dict:
    import json

    result = run_program([str(checkout / "register.py"), "--dry-run"], env)
    assert result.returncode == 0, result.stderr
    return {flow["name"]: flow for flow in json.loads(result.stdout)["flows"]}


def tags(checkout: Path, env: dict) -> dict:
    return {
        name: flow["serialized_flow"]["storage"]["image_tag"] for name, flow in dry_run(checkout, env).items()
    }


def test_every_package_is_in_the_dry_run_with_a_version_of_its_own(checkout, env_of, stack_env):
    env = env_of(checkout)
    flows = dry_run(checkout, env)
    assert sorted(flows) == ["Greeting", "Server housekeeping", "Users report"]
    greeting = flows["Greeting"]
    assert greeting["project"] == "Data office" and greeting["next_runs"] == []  # no schedules.py
    storage = greeting["serialized_flow"]["storage"]
    assert storage["flows"] == {"Greeting": "/app/flows/greeting/flows.py"}
    assert storage["image_name"] == "users-report-flow"
    assert greeting["serialized_flow"]["run_config"]["labels"] == ["users-report"]

    # Adding a flow, or editing it, leaves the Users report's version alone.
    before = tags(checkout, env)
    here = users_report_entry(run_program(["register.py", "--dry-run"], stack_env).stdout)
    assert before["Users report"] == here["serialized_flow"]["storage"]["image_tag"]
    with open(checkout / "flows" / "greeting" / "flows.py", "a") as flow:
        flow.write("# an edit of the greeting\n")
    edited = tags(checkout, env)
    assert edited["Users report"] == before["Users report"] and edited["Greeting"] != before["Greeting"]

    # The agent, the stack's settings and a stack-wide setting version neither flow.
    for path in ("agent/start.py", "stack/settings.py", "register.py"):
        with open(checkout / path, "a") as code:
            code.write("# an edit of the stack\n")
    assert tags(checkout, {**env, "FLOW_MEMORY_LIMIT": "1g", "NOTIFY_ON": "all"}) == edited

    # Shared flow code versions the flows that import it, and only those.
    with open(checkout / "flows" / "shared" / "settings.py", "a") as shared:
        shared.write("# an edit of shared code\n")
    shared_edit = tags(checkout, env)
    assert shared_edit["Users report"] != edited["Users report"]
    assert shared_edit["Greeting"] == edited["Greeting"]


def test_a_bad_declaration_or_flow_name_fails_in_one_line(checkout, env_of):
    env = env_of(checkout)
    result = run_program([str(checkout / "register.py"), "--dry-run", "--flow", "greting"], env)
    assert result.returncode == 2
    assert result.stderr == (
        "error: FLOW='greting' is not a flow package: use one of greeting, "
        "server_housekeeping, users_report (folders under flows/)\n"
    )
    (checkout / "flows" / "greeting" / "deployment.py").write_text('MEMORY_LIMIT = "lots"\n')
    result = run_program([str(checkout / "register.py"), "--dry-run"], env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "error: flows/greeting/deployment.py: MEMORY_LIMIT='lots' is not allowed: "
        "use Docker's form of at least 6 MiB, such as 512m or 2g\n"
    )
    # A flow that needs a package the image lacks: named, in one line.
    (checkout / "flows" / "greeting" / "flows.py").write_text("import warehouse_driver\n")
    result = run_program([str(checkout / "register.py"), "--dry-run", "--flow", "greeting"], env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "error: flows/greeting/flows.py cannot be imported: ModuleNotFoundError: "
        "No module named 'warehouse_driver'\n"
    )


def created_for(standin, env, polls=2) -> dict:
    """The containers the agent creates in `polls` polls, by flow name."""
    return {create["labels"]["io.prefect.flow-name"]: create for create in agent_polls(env, polls)}


def flow_id(standin, name):
    (flow,) = [
        flow for flow in standin.tables["flow"].values() if flow["name"] == name and not flow["archived"]
    ]
    return flow["id"]


def logs_of(standin, run_id):
    return [entry["message"] for entry in standin.tables["log"].values() if entry["flow_run_id"] == run_id]


def test_both_flows_register_once_and_run_each_with_only_its_own_secret(checkout, env_of, standin):
    env = {**env_of(checkout), "NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/alerts", "NOTIFY_ON": "all"}
    run_module([str(checkout / "register.py"), "--skip-build"], env)
    again = run_module([str(checkout / "register.py"), "--skip-build"], env)
    assert again.stdout.count("skipped (unchanged since its current version)") == 3
    names = ["Greeting", "Server housekeeping", "Users report"]
    assert sorted(flow["name"] for flow in standin.tables["flow"].values()) == names
    # Alerts for every flow but the one whose package turns them off.
    groups = {flow["version_group_id"]: flow["name"] for flow in standin.tables["flow"].values()}
    assert sorted(groups[hook["version_group_id"]] for hook in standin.tables["cloud_hook"].values()) == [
        "Server housekeeping",
        "Users report",
    ]

    with client(standin):
        greeting = prefect.Client().create_flow_run(flow_id=flow_id(standin, "Greeting"))
        report = prefect.Client().create_flow_run(
            flow_id=flow_id(standin, "Users report"), parameters={"n_users": 7}
        )
    created = created_for(standin, env)
    assert sorted(created) == ["Greeting", "Users report"]
    greeting_env, report_env = created["Greeting"]["environment"], created["Users report"]["environment"]
    assert greeting_env["PREFECT__CONTEXT__SECRETS__GREETING_WORD"] == SECRET
    assert not [name for name in report_env if name.startswith("PREFECT__CONTEXT__SECRETS")]
    assert SECRET not in str(report_env)
    assert "RANDOMUSER_URL" in report_env and "RANDOMUSER_URL" not in greeting_env  # the report's own
    assert created["Greeting"]["host_config"]["mem_limit"] == 300 * 2**20
    assert created["Users report"]["host_config"]["mem_limit"] == 2 * 2**30
    assert created["Users report"]["host_config"]["nano_cpus"] == 2 * 10**9

    for run_id, name in ((greeting, "Greeting"), (report, "Users report")):
        finished = run_container_here(created[name], env)
        assert finished.returncode == 0, finished.stdout[-2000:] + finished.stderr[-2000:]
        assert states_of(standin, run_id)[-1] == "Success", logs_of(standin, run_id)
    host_reports = Path(env["HOST_REPORTS_DIR"])
    assert (host_reports / f"greeting-{greeting}.txt").read_text() == f"{SECRET}\n"
    assert not any(SECRET in message for run_id in (greeting, report) for message in logs_of(standin, run_id))


def test_a_flow_limited_to_one_run_runs_three_one_after_another(checkout, env_of, standin):
    env = env_of(checkout)
    run_module([str(checkout / "register.py"), "--skip-build", "--flow", "greeting"], env)
    with client(standin):
        runs = [prefect.Client().create_flow_run(flow_id=flow_id(standin, "Greeting")) for _ in range(3)]
    ended = []
    for _ in runs:
        (create,) = agent_polls(env, polls=3)  # one container, however often the agent polls
        run_id = create["labels"]["io.prefect.flow-run-id"]
        waiting = [other for other in runs if other != run_id and other not in ended]
        for other in waiting:
            assert states_of(standin, other) == ["Scheduled"] or states_of(standin, other) == []
            assert (
                "Waiting: Greeting runs at most 1 at once (MAX_RUNNING in flows/greeting/deployment.py); "
                "this run starts when one ends"
            ) in logs_of(standin, other)
        assert run_container_here(create, env).returncode == 0
        assert states_of(standin, run_id)[-1] == "Success"
        ended.append(run_id)
    assert sorted(ended) == sorted(runs)


def test_a_missing_secret_fails_the_run_in_one_line_with_no_container(checkout, env_of, standin):
    env = env_of(checkout, secrets="# nothing yet\n")
    run_module([str(checkout / "register.py"), "--skip-build", "--flow", "greeting"], env)
    with client(standin):
        run_id = prefect.Client().create_flow_run(flow_id=flow_id(standin, "Greeting"))
    assert agent_polls(env, run_id=run_id) == []
    message = (
        "the secret GREETING_WORD of flows/greeting is not in the flows' secrets file "
        "(FLOW_SECRETS_FILE, flow-secrets.env beside .env): add NAME=value there"
    )
    (run,) = [run for run in standin.tables["flow_run"].values() if run["id"] == run_id]
    assert (run["state"], run["state_message"]) == ("Failed", message)
