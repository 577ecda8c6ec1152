"""The agent's thin overrides, on the real DockerAgent with a fake Docker client and the
server's answers given in-process: each hands over to its policy module."""

import dataclasses
from unittest import mock

import pytest
from prefect.agent.docker import DockerAgent
from prefect.utilities.graphql import GraphQLResult

from agent import start
from agent.admission import Deployed
from stack.catalog import checked, defaults
from stack.settings import load_stack_settings
from tests.support.agent_probe import FakeDockerClient

SCRIPT = "/app/flows/users_report/flows.py"


def settings(**changes):
    return dataclasses.replace(load_stack_settings(), host_reports_dir="/srv/reports", **changes)


def deployment(**declared):
    return checked("flows/x/deployment.py", {**defaults(settings()), **declared}, set(declared))


@pytest.fixture
def agent(tmp_path):
    secrets = tmp_path / "secrets.env"
    secrets.write_text("TOKEN=t\n")
    declared = deployment(ENV=("PAGE_SIZE",), SECRETS=("TOKEN",), MAX_RUNNING=1)
    catalog = {SCRIPT: Deployed("users_report", declared, "Users report", "abc")}
    with mock.patch.object(DockerAgent, "_get_docker_client", lambda agent: FakeDockerClient()):
        built = start.build_agent(settings(secrets_file=str(secrets)), catalog=[])
    built.flows = catalog
    return built


def made_up_run(run_id="run-1", state="Scheduled", run_config=None, image="users-report-flow"):
    storage = {"type": "Docker", "flows": {"Users report": SCRIPT}, "stored_as_script": True,
               "image_name": image, "image_tag": "abc", "registry_url": None, "secrets": [],
               "__version__": "0.15.9"}  # fmt: skip
    return GraphQLResult(
        {"id": run_id, "name": "r", "version": 1, "state": state, "run_config": run_config,
         "flow": {"id": "f", "name": "Users report", "storage": storage, "core_version": "0.15.9"}}
    )  # fmt: skip


def test_a_relative_reports_folder_is_refused_before_anything_starts():
    with pytest.raises(SystemExit, match="HOST_REPORTS_DIR must be an absolute path"):
        start.build_agent(dataclasses.replace(settings(), host_reports_dir="reports"), catalog=[])


def test_a_bad_secrets_file_stops_the_agent_at_start(tmp_path):
    (tmp_path / "bad").write_text("not a line\n")
    with pytest.raises(SystemExit, match="error: line 1 of the flows' secrets file"):
        start.build_agent(settings(secrets_file=str(tmp_path / "bad")), catalog=[])


def test_a_runs_environment_has_its_flows_settings_and_secrets_and_the_agents_own_win(agent, monkeypatch):
    monkeypatch.setenv("PAGE_SIZE", "700")
    monkeypatch.setenv("OTHER_FLOWS", "no")
    agent.env_vars["PAGE_SIZE"] = "agent's"  # as REPORTS_DIR: set by the agent for every run
    env = agent.populate_env_vars(made_up_run(), "users-report-flow:abc")
    assert env["PAGE_SIZE"] == "agent's" and env["REPORTS_DIR"] == "/reports"
    assert env["REPORTS_URL"] == "http://localhost:8080/reports/"
    assert env["PREFECT__CONTEXT__SECRETS__TOKEN"] == "t" and "OTHER_FLOWS" not in env


def test_a_refused_run_raises_its_line_and_reaches_no_container(agent):
    bad = {"type": "DockerRun", "env": {"PYTHONWARNINGS": "x"}}
    stored = {
        "context": None,
        "run_config": bad,
        "flow": {"run_config": None, "flow_group": {"run_config": None}, "project": {"name": "Data office"}},
    }
    answer = GraphQLResult({"data": {"flow_run_by_pk": stored}})
    docker = FakeDockerClient()
    with (
        mock.patch.object(agent.client, "graphql", lambda query: answer),
        mock.patch.object(DockerAgent, "_get_docker_client", lambda _: docker),
    ):
        with pytest.raises(ValueError, match="sets env \\(PYTHONWARNINGS\\), from the run's own"):
            agent.deploy_flow(made_up_run(run_config=bad))
    assert not [call for call in docker.calls if call[0] == "create_container"]


def test_the_running_limit_counts_runs_of_our_flows_in_any_state(agent):
    assert agent.limited_script(made_up_run()) == SCRIPT
    assert agent.limited_script(made_up_run(state="Running")) == SCRIPT
    stranger = made_up_run()
    stranger.flow.storage["flows"] = {"x": "/elsewhere.py"}
    assert agent.limited_script(stranger) is None


def test_a_held_run_is_told_once_and_an_admitted_one_counted(agent):
    answers = GraphQLResult({"data": {"flow_run": [{"id": "running-elsewhere"}]}})
    told = []
    with mock.patch.object(DockerAgent, "_get_flow_run_metadata", lambda self, ids: [made_up_run("r2")]), \
            mock.patch.object(agent.client, "graphql", lambda query: answers), \
            mock.patch.object(DockerAgent, "_safe_write_run_log", lambda self, run, message, level: told.append(message)):  # fmt: skip
        assert agent._get_flow_run_metadata(["r2"]) == []
        assert agent._get_flow_run_metadata(["r2"]) == []
    assert len(told) == 1 and told[0].startswith("Waiting: Users report runs at most 1 at once")
