"""The agent deploys only what this stack registered, as registered (agent/admission.py):
whoever reaches the API can register a flow or start a run with a run config or context of
their own; each way of changing what a flow container runs or mounts is refused, the run
Failed with one line saying what and from where, and no container is made. Through the API
stand-in and the agent as agent/start.py builds it (a fake Docker client)."""

import os
from unittest import mock

import prefect
import pytest
from prefect.environments import LocalEnvironment
from prefect.run_configs import DockerRun
from prefect.storage import Webhook

from tests.support.agent_runs import agent_polls, client, register, run_container_here, states_of

REGISTERED_ONLY = "a run config may set only labels (and the UI's logging level)"
SET_GROUP_RUN_CONFIG = """mutation($input: set_flow_group_run_config_input!) {
  set_flow_group_run_config(input: $input) { success } }"""


def current_flow(standin):
    (flow,) = [flow for flow in standin.tables["flow"].values() if not flow["archived"]]
    return flow


def register_changed(standin, env, change, project="Data office"):
    """Our flow as register.py deploys it, changed by `change(flow)`, registered as a new
    version (or, in another `project`, a copy) through Prefect's own Client, as anyone
    reaching the API could; returns the id of what it registered."""
    register(env)
    import register as registration
    from stack.catalog import FlowPackage
    from stack.settings import load_stack_settings

    with mock.patch.dict(os.environ, env), client(standin):
        flow, _ = registration.deployment(FlowPackage("users_report"), load_stack_settings())
        flow = flow.copy()  # the module's own flow stays as it is for the tests after this one
        change(flow)
        if project != "Data office":
            prefect.Client().create_project(project_name=project)
        return prefect.Client().register(flow, project_name=project, build=False, no_url=True)


def start_run(standin, **run):
    with client(standin):
        return prefect.Client().create_flow_run(flow_id=current_flow(standin)["id"], **run)


def assert_refused(standin, env, run_id, message):
    assert agent_polls(env, run_id=run_id) == []  # no container
    flow_run = standin.tables["flow_run"][run_id]
    assert flow_run["state"] == "Failed", flow_run
    assert flow_run["state_message"] == message
    assert "\n" not in message and states_of(standin, run_id) == ["Submitted", "Failed"]


@pytest.mark.parametrize(
    "run_config, refused",
    [
        (
            DockerRun(
                labels=["users-report"], env={"PYTHONWARNINGS": "all:0:antigravity.x:0:0", "BROWSER": "id"}
            ),
            "a run config that sets env (BROWSER, PYTHONWARNINGS)",
        ),
        (
            DockerRun(labels=["users-report"], host_config={"binds": ["/:/host"], "privileged": True}),
            "a run config that sets host_config (binds, privileged)",
        ),
        (
            DockerRun(labels=["users-report"], image="office/tools:latest"),
            "a run config that sets image (office/tools:latest)",
        ),
    ],
)
def test_a_runs_own_run_config_changing_the_container_is_refused(run_config, refused, standin, stack_env):
    register(stack_env)
    run_id = start_run(standin, run_config=run_config)

    assert_refused(
        standin,
        stack_env,
        run_id,
        f"this agent does not start {refused}, from the run's "
        f"own run config (create_flow_run): {REGISTERED_ONLY}",
    )


def test_a_flow_group_run_config_is_refused_for_every_later_run(standin, stack_env):
    """set_flow_group_run_config reaches every later run, the scheduled ones included, and
    `make register` does not clear it."""
    register(stack_env)
    binds = DockerRun(labels=["users-report"], host_config={"binds": ["/var/run/docker.sock:/sock"]})
    with client(standin):
        prefect.Client().graphql(
            SET_GROUP_RUN_CONFIG,
            variables={
                "input": {
                    "flow_group_id": current_flow(standin)["flow_group_id"],
                    "run_config": binds.serialize(),
                }
            },
        )
    register(stack_env)
    run_id = start_run(standin)

    assert_refused(
        standin,
        stack_env,
        run_id,
        "this agent does not start a run config that sets "
        "host_config (binds), from the flow group's run config (set_flow_group_run_config): "
        + REGISTERED_ONLY,
    )


def test_a_run_with_a_context_is_refused(standin, stack_env):
    """The run's context is merged into prefect.context in the flow run: secrets, logger."""
    register(stack_env)
    run_id = start_run(standin, context={"secrets": {"TOKEN": "x"}})

    assert_refused(
        standin,
        stack_env,
        run_id,
        "this agent does not start runs with a context (secrets): "
        "the stack's flows take inputs (parameters) only",
    )


def webhook_storage(flow):
    image = flow.storage.name
    flow.storage = Webhook(
        build_request_kwargs={"url": "http://127.0.0.1:9/flow"},
        build_request_http_method="POST",
        get_flow_request_kwargs={"url": "http://127.0.0.1:9/flow"},
        get_flow_request_http_method="GET",
    )
    flow.storage.add_flow(flow)
    flow.run_config = DockerRun(labels=["users-report"], image=image)


def writable_script(flow):
    flow.storage.flows = {flow.name: "/reports/x.py"}


def pickled_flow(flow):
    flow.storage.stored_as_script = False


def secrets_first(flow):
    flow.storage.secrets = ["GITHUB_ACCESS_TOKEN"]


def legacy_environment(flow):
    flow.run_config, flow.environment = None, LocalEnvironment(labels=["users-report"])


SCRIPTS = (
    "only the flow scripts this stack puts in its image (/app/flows/server_housekeeping/flows.py, "
    "/app/flows/users_report/flows.py), stored as scripts (register.py)"
)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            webhook_storage,
            "this agent does not start flows kept in Webhook storage: only Prefect's Docker "
            "storage of this stack's images (register.py)",
        ),
        (writable_script, f"this agent does not start the script /reports/x.py: {SCRIPTS}"),
        (
            pickled_flow,
            f"this agent does not start the pickled flow /app/flows/users_report/flows.py: {SCRIPTS}",
        ),
        (
            secrets_first,
            "this agent does not start flows whose storage asks for secrets (GITHUB_ACCESS_TOKEN): "
            "the stack's flows take none from storage",
        ),
        (
            legacy_environment,
            "this agent does not start flows with a legacy environment (LocalEnvironment): "
            "only flows registered with a run config (register.py)",
        ),
    ],
)
def test_a_flow_registered_otherwise_is_refused(change, message, standin, stack_env):
    register_changed(standin, stack_env, change)
    run_id = start_run(standin)

    assert_refused(standin, stack_env, run_id, message)


def older_image(flow):
    flow.storage.image_tag = "0123456789ab"


def copied_as_housekeeping(flow):
    """A copy named as the housekeeping flow, with both scripts: it would run three at once
    with the Users report's environment, memory limit and secrets."""
    flow.name = "Server housekeeping"
    flow.storage.flows = {"Server housekeeping": HOUSEKEEPING_SCRIPT, "Users report": USERS_REPORT_SCRIPT}


HOUSEKEEPING_SCRIPT = "/app/flows/server_housekeeping/flows.py"
USERS_REPORT_SCRIPT = "/app/flows/users_report/flows.py"


def expected(package, name):
    from stack.catalog import FlowPackage

    version = FlowPackage(package).version()
    return f'flows/{package}/flows.py is "{name}" in the project "Data office", version {version} (make register)'


@pytest.mark.parametrize(
    "change, refused",
    [
        (
            older_image,
            lambda: (
                f'"Users report" of the image tag 0123456789ab: {expected("users_report", "Users report")}'
            ),
        ),
        (
            copied_as_housekeeping,
            lambda: (
                'the flow "Server housekeeping" (its storage names Server housekeeping, Users report): '
                + expected("server_housekeeping", "Server housekeeping")
            ),
        ),
    ],
)
def test_an_older_version_or_a_copy_under_another_name_is_refused(change, refused, standin, stack_env):
    flow_id = register_changed(standin, stack_env, change)
    with client(standin):
        run_id = prefect.Client().create_flow_run(flow_id=flow_id)

    assert_refused(standin, stack_env, run_id, f"this agent does not start {refused()}")


def test_a_copy_in_another_project_is_refused(standin, stack_env):
    """It would escape the original's MAX_RUNNING, which counts runs in the package's project."""
    copy_id = register_changed(standin, stack_env, lambda flow: None, project="Elsewhere")
    with client(standin):
        run_id = prefect.Client().create_flow_run(flow_id=copy_id)

    message = f'this agent does not start "Users report" registered in the project "Elsewhere": {expected("users_report", "Users report")}'
    assert_refused(standin, stack_env, run_id, message)


@pytest.mark.parametrize("allowlist, started", [("", False), ("office/tools, another-image", True)])
def test_the_agent_starts_only_allowed_images(allowlist, started, standin, stack_env):
    """Anyone reaching the API can register a flow with any image and the agent's label."""
    register({**stack_env, "FLOW_IMAGE": "another-image"})
    run_id = start_run(standin)
    env = {**stack_env, "AGENT_IMAGE_ALLOWLIST": allowlist}

    image = f"another-image:{current_flow(standin)['storage']['image_tag']}"
    if not started:
        assert_refused(
            standin,
            env,
            run_id,
            f"this agent does not start the image {image}: it starts only "
            "users-report-flow (FLOW_IMAGE, REGISTRY_URL, AGENT_IMAGE_ALLOWLIST)",
        )
        return
    assert [
        create["environment"]["PREFECT__CONTEXT__IMAGE"] for create in agent_polls(env, run_id=run_id)
    ] == [image]
    # The same rules for an allowlisted image: its run config may not mount the host either.
    mounted = start_run(
        standin, run_config=DockerRun(labels=["users-report"], host_config={"binds": ["/:/host"]})
    )
    assert_refused(
        standin,
        env,
        mounted,
        "this agent does not start a run config that sets host_config (binds), "
        f"from the run's own run config (create_flow_run): {REGISTERED_ONLY}",
    )


def test_the_ui_run_pages_run_config_is_started_and_succeeds(standin, stack_env, users_api):
    """The Run page sends the flow's own run config with its labels emptied and, with a
    logging level chosen, that level in env (PrefectHQ/ui 2092e92 src/pages/Flow/Run.vue)."""
    register(stack_env)
    ui_run_config = {
        **current_flow(standin)["run_config"],
        "labels": [],
        "env": {"PREFECT__LOGGING__LEVEL": "DEBUG"},
    }
    run_id = start_run(
        standin,
        run_config=DockerRun(**{k: ui_run_config[k] for k in ("labels", "env")}),
        labels=["users-report"],
        parameters={"n_users": 3},
        context={},
    )

    (create,) = agent_polls(stack_env, run_id=run_id)
    assert create["environment"]["PREFECT__LOGGING__LEVEL"] == "DEBUG"
    assert run_container_here(create, stack_env).returncode == 0
    assert standin.tables["flow_run"][run_id]["state"] == "Success"
