"""The stand-in's GraphQL schema, from schema.graphql."""

from pathlib import Path

from graphql import EnumValueNode, GraphQLError, GraphQLScalarType, ObjectValueNode, build_schema
from graphql.utilities import value_from_ast_untyped

SDL = (Path(__file__).parent / "schema.graphql").read_text()
BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


def _order_by_literal(node, variables=None):
    """Hasura's order_by takes the enums asc/desc; a quoted "asc" is an error there too."""
    if not isinstance(node, ObjectValueNode) or not all(
        isinstance(field.value, EnumValueNode) for field in node.fields
    ):
        raise GraphQLError("stand-in: order_by takes {column: asc|desc} with enum values")
    return value_from_ast_untyped(node, variables)


def build_standin_schema():
    """The SDL; its own scalars take any JSON value, checked by the resolvers."""
    schema = build_schema(SDL)
    for name, type_ in schema.type_map.items():
        if isinstance(type_, GraphQLScalarType) and name not in BUILT_IN_SCALARS:
            type_.serialize = type_.parse_value = lambda value: value
            type_.parse_literal = (
                _order_by_literal
                if name.endswith("_order_by")
                else lambda node, variables=None: value_from_ast_untyped(node, variables)
            )
    return schema
