from types import SimpleNamespace

import pytest

from agent import admission

SCRIPT = "/app/flows/users_report/flows.py"


def storage(**changes):
    stored = {
        "type": "Docker",
        "flows": {"Users report": SCRIPT},
        "stored_as_script": True,
        "image_name": "users-report-flow",
        "image_tag": "abc123",
        "registry_url": None,
        "secrets": [],
        "__version__": "0.15.9",
    }
    return {**stored, **changes}


def refusal(flow_storage, **flow):
    return admission.flow_refusal({"storage": flow_storage, **flow}, {"users-report-flow"}, {SCRIPT})


@pytest.mark.parametrize(
    "image, name",
    [("host:5000/flow:abc", "host:5000/flow"), ("flow", "flow"), ("flow@sha256:1", "flow"), ("a/b:c", "a/b")],
)
def test_repository_drops_the_tag_or_digest(image, name):
    assert admission.repository(image) == name


def test_script_of_names_the_storages_script():
    assert admission.script_of({"storage": storage()}) == SCRIPT
    assert admission.script_of({"storage": None}) is None and admission.script_of({}) is None


def test_our_flow_as_registered_is_admitted():
    assert refusal(storage()) is None


@pytest.mark.parametrize(
    "flow_storage, flow, words",
    [
        (storage(), {"environment": {"type": "LocalEnvironment"}}, "legacy environment (LocalEnvironment)"),
        ({"type": "GitHub"}, {}, "kept in GitHub storage"),
        (storage(flows={"x": "/tmp/evil.py"}), {}, "the script /tmp/evil.py"),
        (storage(stored_as_script=False), {}, "the pickled flow"),
        # Read as Prefect reads it: marshmallow's Boolean takes "false" for False.
        (storage(stored_as_script="false"), {}, "the pickled flow /app/flows/users_report/flows.py"),
        (storage(flows={"Users report": 1}), {}, "storage Prefect cannot read: {'flows'"),
        (storage(image_tag=None), {}, "names no image and tag"),
        (storage(flows={}), {}, "the script nothing"),
        (storage(secrets=["AWS"]), {}, "asks for secrets (AWS)"),
        (storage(image_name="evil"), {}, "the image evil:abc123"),
        (storage(registry_url="elsewhere:5000"), {}, "the image elsewhere:5000/users-report-flow:abc123"),
    ],
)
def test_a_flow_registered_otherwise_is_refused_saying_what(flow_storage, flow, words):
    problem = refusal(flow_storage, **flow)
    assert problem and problem.startswith("this agent does not start") and words in problem


def test_a_run_config_may_set_labels_its_own_image_and_the_uis_log_level():
    image = "users-report-flow:abc123"
    assert admission.run_config_refusal(None, image) is None
    allowed = {
        "type": "DockerRun",
        "labels": ["x"],
        "image": image,
        "env": {"PREFECT__LOGGING__LEVEL": "debug"},
    }
    assert admission.run_config_refusal(allowed, image) is None


@pytest.mark.parametrize(
    "run_config, words",
    [
        ({"type": "KubernetesRun"}, "a KubernetesRun run config: only DockerRun"),
        ({"type": "DockerRun", "image": "other:1"}, "sets image (other:1)"),
        ({"type": "DockerRun", "env": {"PYTHONWARNINGS": "x"}}, "sets env (PYTHONWARNINGS)"),
        ({"type": "DockerRun", "env": {"PREFECT__LOGGING__LEVEL": "loud"}}, "env (PREFECT__LOGGING__LEVEL)"),
        ({"type": "DockerRun", "host_config": {"privileged": True}}, "host_config (privileged)"),
        ({"type": "DockerRun", "host_config": {"binds": []}}, "host_config (binds)"),
        ({"type": "UniversalRun", "env": {"A": "1"}}, "sets env (A)"),
        ({"type": "DockerRun", "env": "A=1"}, "a run config Prefect cannot read ({'env'"),
    ],
)
def test_a_run_config_that_changes_the_container_is_refused(run_config, words):
    assert words in admission.run_config_refusal(run_config, "users-report-flow:abc123")


def test_a_run_config_is_checked_as_prefect_reads_it():
    """Fields DockerRunSchema does not know never reach the container (the agent loads the
    run config with it): they change nothing, so they are not refused."""
    unknown = {"type": "DockerRun", "ports": [80], "Env": {"PYTHONWARNINGS": "x"}, "labels": ["a"]}
    assert admission.run_config_refusal(unknown, "users-report-flow:abc123") is None


def test_a_context_is_refused_naming_its_keys():
    assert admission.context_refusal(None) is None and admission.context_refusal({}) is None
    assert "a context (config, secrets)" in admission.context_refusal({"secrets": {}, "config": 1})


@pytest.mark.parametrize(
    "context, what", [([1, "a"], "list"), ("x", "str"), (0, "int"), (False, "bool"), ([], "list")]
)
def test_a_context_of_any_other_json_type_gets_the_refusal_line(context, what):
    assert admission.context_refusal(context) == (
        f"this agent does not start runs with a context (a JSON {what}): the stack's flows take inputs (parameters) only"
    )


def test_the_source_of_a_run_config_is_named_as_the_server_chose_it():
    group = {"type": "DockerRun", "env": {"A": "1"}}
    flow = {"run_config": {"type": "DockerRun"}, "flow_group": {"run_config": group}}
    assert "flow group's" in admission.run_config_source({"run_config": group, "flow": flow})
    registered = {"run_config": flow["run_config"], "flow": {**flow, "flow_group": {"run_config": None}}}
    assert "flow's registered" in admission.run_config_source(registered)
    assert "run's own" in admission.run_config_source({"run_config": {"type": "x"}, "flow": flow})


DEPLOYED = {
    SCRIPT: admission.Deployed(
        "users_report", SimpleNamespace(project="Data office"), "Users report", "abc123"
    )
}
STORED = {
    "context": None,
    "run_config": None,
    "flow": {"run_config": None, "flow_group": {}, "project": {"name": "Data office"}},
}
IMAGE = "users-report-flow:abc123"
EXPECTED = 'flows/users_report/flows.py is "Users report" in the project "Data office", version abc123 (make register)'


def run_of(flow_storage, run_config=None, name="Users report"):
    return SimpleNamespace(flow={"name": name, "storage": flow_storage}, run_config=run_config)


def test_run_refusal_checks_the_flow_then_the_context_then_the_run_config():
    args = ({"users-report-flow"}, DEPLOYED, IMAGE)
    assert admission.run_refusal(run_of(storage()), STORED, *args) is None
    assert "GitHub" in admission.run_refusal(
        run_of({"type": "GitHub"}), {**STORED, "context": {"a": 1}}, *args
    )
    assert "a context (a)" in admission.run_refusal(run_of(storage()), {**STORED, "context": {"a": 1}}, *args)
    bad = {"type": "DockerRun", "env": {"X": "1"}}
    problem = admission.run_refusal(run_of(storage(), bad), {**STORED, "run_config": bad}, *args)
    assert problem.startswith("this agent does not start a run config that sets env (X), from the run's own")


@pytest.mark.parametrize(
    "run, project, said",
    [
        (run_of(storage(), name="Server housekeeping"), "Data office",
         'the flow "Server housekeeping" (its storage names Users report)'),
        (run_of(storage(flows={"Users report": SCRIPT, "Server housekeeping": SCRIPT}), name="Users report"),
         "Data office", 'the flow "Users report" (its storage names Server housekeeping, Users report)'),
        (run_of(storage(flows={"Server housekeeping": SCRIPT}), name="Server housekeeping"), "Data office",
         'the flow "Server housekeeping" (its storage names Server housekeeping)'),
        (run_of(storage()), "Elsewhere", '"Users report" registered in the project "Elsewhere"'),
        (run_of(storage(image_tag="0ld7a9")), "Data office", '"Users report" of the image tag 0ld7a9'),
    ],
)  # fmt: skip
def test_a_copy_another_project_or_an_older_version_of_our_flow_is_refused(run, project, said):
    stored = {**STORED, "flow": {**STORED["flow"], "project": {"name": project}}}
    assert admission.run_refusal(run, stored, {"users-report-flow"}, DEPLOYED, IMAGE) == (
        f"this agent does not start {said}: {EXPECTED}"
    )
