"""What a GraphQL request asks for: each root field of each operation that would run, with
its arguments as the server will read them (variables put in, aliases and fragments seen
through), whatever the request's shape (a POST body, a batch of them, a GET query string)."""

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    Undefined,
    parse,
    value_from_ast_untyped,
)


class NotGraphQL(ValueError):
    """A request the door cannot read, so cannot check: refused whole."""


@dataclass(frozen=True)
class Field:
    kind: str  # query or mutation
    name: str
    arguments: Dict[str, Any] = field(default_factory=dict)


def requests_in(body: Any) -> List[dict]:
    """The requests of a POST body: one object, or a batch (a list of them)."""
    batch = body if isinstance(body, list) else [body]
    if not batch or not all(isinstance(item, dict) for item in batch):
        raise NotGraphQL("the body is neither a GraphQL request nor a batch of them")
    return batch


def from_query_string(params: Dict[str, str]) -> dict:
    """A GET request's query, variables (JSON) and operation name."""
    try:
        variables = json.loads(params["variables"]) if params.get("variables") else None
    except ValueError:
        raise NotGraphQL("its variables are not JSON") from None
    return {
        "query": params.get("query"),
        "variables": variables,
        "operationName": params.get("operationName"),
    }


def fields_of(request: dict) -> List[Field]:
    """Every root field of the operation the request runs."""
    query, variables = request.get("query"), request.get("variables")
    if isinstance(variables, str):  # Prefect's client sends them as a JSON text ("null" too)
        try:
            variables = json.loads(variables)
        except ValueError:
            raise NotGraphQL("its variables are not JSON") from None
    variables = {} if variables is None else variables
    if not isinstance(query, str) or not isinstance(variables, dict):
        raise NotGraphQL("it has no query string, or its variables are not an object")
    try:
        document = parse(query)
    except GraphQLError as error:
        raise NotGraphQL(f"its query does not parse: {error.message}") from None
    operation = chosen(document, request.get("operationName"))
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}
    kind = operation.operation.value
    if kind not in ("query", "mutation"):
        raise NotGraphQL(f"the API has no {kind} operations")
    return [
        Field(
            kind,
            node.name.value,
            as_sent({a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments}),
        )
        for node in root_fields(operation.selection_set.selections, fragments, set())
    ]


def as_sent(value):
    """A value as the server gets it: a variable the request leaves out is no value (null in
    a list), not graphql-core's Undefined."""
    if isinstance(value, dict):
        return {key: as_sent(item) for key, item in value.items() if item is not Undefined}
    if isinstance(value, list):
        return [None if item is Undefined else as_sent(item) for item in value]
    return value


def chosen(document, name: Optional[str]) -> OperationDefinitionNode:
    """The operation that runs: the one named, or the only one (as the server chooses)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is not None:
        operations = [o for o in operations if o.name and o.name.value == name]
    if len(operations) != 1:
        raise NotGraphQL("it names no single operation to run")
    return operations[0]


def root_fields(selections, fragments: dict, seen: set) -> List[FieldNode]:
    """The fields of a root selection set, through inline fragments and fragment spreads.
    @skip and @include are not read: a field that might run is checked."""
    found = []
    for selection in selections:
        if isinstance(selection, FieldNode):
            found.append(selection)
        elif isinstance(selection, InlineFragmentNode):
            found += root_fields(selection.selection_set.selections, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen or name not in fragments:
                raise NotGraphQL(f"its fragment {name} is missing or spreads itself")
            found += root_fields(fragments[name].selection_set.selections, fragments, seen | {name})
    return found
