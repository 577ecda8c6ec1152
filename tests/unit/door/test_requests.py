"""door/requests.py: every root field a request would run is found, however it is written."""

import pytest

from door.requests import Field, NotGraphQL, fields_of, from_query_string, requests_in


def test_aliases_fragments_and_variables_are_seen_through():
    query = """
    mutation Go($id: UUID!, $state: JSON!) {
      harmless: create_flow_run(input: {flow_id: $id}) { id }
      ...more
    }
    fragment more on Mutation { ... on Mutation { set_flow_run_states(input: {states: [{flow_run_id: $id, version: 1, state: $state}]}) { states { id } } } }
    """
    found = fields_of({"query": query, "variables": {"id": "r1", "state": {"type": "Running"}}})
    assert found == [
        Field("mutation", "create_flow_run", {"input": {"flow_id": "r1"}}),
        Field(
            "mutation",
            "set_flow_run_states",
            {"input": {"states": [{"flow_run_id": "r1", "version": 1, "state": {"type": "Running"}}]}},
        ),
    ]


def test_the_named_operation_is_the_one_checked():
    query = (
        'query Read { flow { id } } mutation Write { delete_flow_run(input: {flow_run_id: "x"}) { success } }'
    )
    assert [f.name for f in fields_of({"query": query, "operationName": "Write"})] == ["delete_flow_run"]
    with pytest.raises(NotGraphQL, match="no single operation"):
        fields_of({"query": query})


@pytest.mark.parametrize(
    "request_, said",
    [
        ({"query": "mutation { create_flow_run("}, "does not parse"),
        ({"query": 42}, "no query string"),
        ({"query": "{ hello }", "variables": []}, "variables are not an object"),
        ({"query": "subscription { flow_run { id } }"}, "no subscription operations"),
        ({"query": "query { ...a } fragment a on Query { ...a }"}, "spreads itself"),
        ({"query": "query { ...b }"}, "fragment b is missing"),
        ({"query": "{ hello }", "variables": "{"}, "variables are not JSON"),
        ({"query": "{ hello }", "variables": "[1]"}, "variables are not an object"),
    ],
)
def test_what_cannot_be_read_is_refused_whole(request_, said):
    with pytest.raises(NotGraphQL, match=said):
        fields_of(request_)


def test_batches_and_get_queries_are_requests_too():
    assert len(requests_in([{"query": "{ a }"}, {"query": "{ b }"}])) == 2
    with pytest.raises(NotGraphQL):
        requests_in([])
    with pytest.raises(NotGraphQL):
        requests_in("mutation { x }")
    got = from_query_string(
        {
            "query": "query($n: String) { flow(where: {name: {_eq: $n}}) { id } }",
            "variables": '{"n": "Users report"}',
        }
    )
    assert fields_of(got) == [Field("query", "flow", {"where": {"name": {"_eq": "Users report"}}})]
    with pytest.raises(NotGraphQL, match="not JSON"):
        from_query_string({"query": "{ a }", "variables": "{"})


def test_variables_as_json_text_are_read_as_prefects_client_sends_them():
    query = "mutation($id: UUID!) { delete_flow_run(input: {flow_run_id: $id}) { success } }"
    assert fields_of({"query": query, "variables": '{"id": "r9"}'}) == [
        Field("mutation", "delete_flow_run", {"input": {"flow_run_id": "r9"}})
    ]
    assert [f.name for f in fields_of({"query": "query { flow { id } }", "variables": "null"})] == ["flow"]


def test_a_variable_left_out_is_no_value_as_the_server_reads_it():
    query = "mutation($c: JSON, $id: UUID!) { create_flow_run(input: {context: $c, flow_id: $id, labels: [$c]}) { id } }"
    assert fields_of({"query": query, "variables": {"id": "x"}}) == [
        Field("mutation", "create_flow_run", {"input": {"flow_id": "x", "labels": [None]}})
    ]
