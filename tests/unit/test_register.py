from prefect.utilities.graphql import GraphQLResult

import register
from stack.catalog import FlowPackage
from stack.settings import load_stack_settings


def test_a_flow_is_deployed_with_its_schedule_labels_and_docker_storage_of_its_version(monkeypatch):
    monkeypatch.setenv("REGISTRY_URL", "registry.local:5000")
    package = FlowPackage("users_report")
    flow, declared = register.deployment(package, load_stack_settings())
    assert flow.schedule is not None and flow.run_config.labels == set(declared.labels)
    storage = flow.storage
    assert storage.stored_as_script and storage.flows == {"Users report": package.script_in_image}
    assert storage.name == f"registry.local:5000/users-report-flow:{package.version()}"


class Client:
    def __init__(self, flows):
        self.flows = flows

    def graphql(self, query):
        return GraphQLResult({"data": {"flow": self.flows}})


def test_the_current_version_is_the_unarchived_flows_with_its_key():
    found = [{"id": "f1", "flow_group": {"settings": {"idempotency_key": "k"}}}]
    assert register.current_version(
        Client(found), FlowPackage("users_report").load_flow(), "Data office"
    ) == ("f1", "k")
    assert register.current_version(Client([]), FlowPackage("users_report").load_flow(), "x") == (None, None)
