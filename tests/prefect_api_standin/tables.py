"""The stand-in's state: Hasura's tables as dicts of rows, with their relations, filters
and ordering, as Hasura resolves them for apollo."""

import uuid
from typing import NamedTuple

import pendulum
from graphql import GraphQLError


class Relation(NamedTuple):
    """How a row of one table reaches rows of another: its `own_key` equals their `their_key`."""

    target: str
    own_key: str
    their_key: str
    many: bool


RELATIONS = {
    ("project", "flows"): Relation("flow", "id", "project_id", many=True),
    ("flow_group", "flows"): Relation("flow", "id", "flow_group_id", many=True),
    ("flow", "project"): Relation("project", "project_id", "id", many=False),
    ("flow", "flow_group"): Relation("flow_group", "flow_group_id", "id", many=False),
    ("flow", "tasks"): Relation("task", "id", "flow_id", many=True),
    ("flow_run", "flow"): Relation("flow", "flow_id", "id", many=False),
    ("flow_run", "task_runs"): Relation("task_run", "id", "flow_run_id", many=True),
    ("flow_run", "states"): Relation("flow_run_state", "id", "flow_run_id", many=True),
    ("flow_run", "logs"): Relation("log", "id", "flow_run_id", many=True),
    ("task_run", "flow_run"): Relation("flow_run", "flow_run_id", "id", many=False),
    ("task_run", "task"): Relation("task", "task_id", "id", many=False),
    ("task_run_state", "task_run"): Relation("task_run", "task_run_id", "id", many=False),
    ("task_run_artifact", "task_run"): Relation("task_run", "task_run_id", "id", many=False),
    ("task", "flow"): Relation("flow", "flow_id", "id", many=False),
}
COMPARISONS = {
    "_eq": lambda a, b: a == b,
    "_neq": lambda a, b: a != b,
    "_in": lambda a, b: a in b,
    "_nin": lambda a, b: a not in b,
    "_lt": lambda a, b: a is not None and a < b,
    "_lte": lambda a, b: a is not None and a <= b,
    "_gt": lambda a, b: a is not None and a > b,
    "_gte": lambda a, b: a is not None and a >= b,
    "_is_null": lambda a, b: (a is None) == b,
    "_contains": lambda a, b: isinstance(a, dict) and all(a.get(k) == v for k, v in b.items()),
}
TIME_COLUMNS = {
    "scheduled_start_time",
    "start_time",
    "end_time",
    "heartbeat",
    "state_start_time",
    "state_timestamp",
    "timestamp",
    "created",
    "last_queried",
}
TABLES = (
    "tenant",
    "project",
    "flow_group",
    "flow",
    "task",
    "flow_run",
    "flow_run_state",
    "task_run",
    "task_run_state",
    "log",
    "agent",
    "task_run_artifact",
    "state_history",
    "cloud_hook",
)


def now() -> str:
    return pendulum.now("UTC").isoformat()


def as_time(value):
    return pendulum.parse(value) if isinstance(value, str) else value


class Tables:
    """Rows by table and id; the schema's types name each table's columns."""

    def __init__(self, schema):
        self.schema = schema
        self.tables = {name: {} for name in TABLES}

    def insert(self, table: str, **row) -> dict:
        row.setdefault("id", str(uuid.uuid4()))
        row.setdefault("created", now())
        row.setdefault("updated", row["created"])
        self.tables[table][row["id"]] = row
        return row

    def related(self, table, field, row):
        relation = RELATIONS[(table, field)]
        if relation.their_key == "id":
            return self.tables[relation.target].get(row[relation.own_key])
        rows = [
            other
            for other in self.tables[relation.target].values()
            if other[relation.their_key] == row[relation.own_key]
        ]
        return rows if relation.many else (rows[0] if rows else None)

    def view(self, table: str, row):
        """A row as GraphQL resolves it: relations become callables taking arguments."""
        if row is None:
            return None
        result = dict(row)
        for (owner, field), relation in RELATIONS.items():
            if owner != table:
                continue
            if relation.many:
                result[field] = lambda info, _r=relation, _f=field, **args: self.select(
                    _r.target, rows=self.related(table, _f, row), **args
                )
                result[f"{field}_aggregate"] = lambda info, _r=relation, _f=field, **args: {
                    "aggregate": {
                        "count": len(self.select(_r.target, rows=self.related(table, _f, row), **args))
                    }
                }
            else:
                result[field] = lambda info, _r=relation, _f=field: self.view(
                    _r.target, self.related(table, _f, row)
                )
        return result

    def check_filter(self, table: str, where) -> None:
        """Refuses a filter on a column the table does not have or with an unknown operator,
        whether or not there are rows to apply it to."""
        for key, condition in (where or {}).items():
            if key in {"_and", "_or"}:
                for part in _as_list(condition):
                    self.check_filter(table, part)
            elif key == "_not":
                self.check_filter(table, condition)
            elif (table, key) in RELATIONS:
                self.check_filter(RELATIONS[(table, key)].target, condition)
            elif key in self.schema.type_map[table].fields:
                unknown = set(condition) - set(COMPARISONS)
                if unknown:
                    raise GraphQLError(
                        f"stand-in: cannot honour the operator {sorted(unknown)[0]!r} on {key}"
                    )
            else:
                raise GraphQLError(f"stand-in: no column {key!r} to filter {table} on")

    def matches(self, table: str, row: dict, where) -> bool:
        for key, condition in (where or {}).items():
            if key == "_and":
                ok = all(self.matches(table, row, part) for part in _as_list(condition))
            elif key == "_or":
                ok = any(self.matches(table, row, part) for part in _as_list(condition))
            elif key == "_not":
                ok = not self.matches(table, row, condition)
            elif (table, key) in RELATIONS:
                relation = RELATIONS[(table, key)]
                related = self.related(table, key, row)
                related = related if relation.many else [related] if related else []
                ok = any(self.matches(relation.target, other, condition) for other in related)
            else:
                ok = all(_compare(key, row.get(key), op, value) for op, value in condition.items())
            if not ok:
                return False
        return True

    def select(self, table, where=None, order_by=None, limit=None, offset=None, rows=None, distinct_on=None):
        self.check_filter(table, where)
        rows = [
            row
            for row in (self.tables[table].values() if rows is None else rows)
            if self.matches(table, row, where)
        ]
        orders = order_by if isinstance(order_by, list) else [order_by] if order_by else []
        for order in reversed(orders):
            for column, direction in reversed(list(order.items())):
                if direction not in {"asc", "desc"}:
                    raise GraphQLError(f"stand-in: cannot order by {column} {direction}")
                rows.sort(key=lambda row: (row[column] is None, row[column]), reverse=direction == "desc")
        if distinct_on:  # Hasura: the first row of each distinct value, in the order asked
            seen, distinct = set(), []
            for row in rows:
                key = tuple(row[column] for column in _as_list(distinct_on))
                if key not in seen:
                    seen.add(key)
                    distinct.append(row)
            rows = distinct
        rows = rows[offset or 0 :]
        rows = rows[:limit] if limit is not None else rows
        return [self.view(table, row) for row in rows]


def _as_list(value) -> list:
    """GraphQL takes a single value where a list is declared (`_and: {...}`)."""
    return value if isinstance(value, list) else [value]


def _compare(column, actual, op, expected):
    if expected is None and op != "_is_null":
        return True  # Hasura 1.3 reads `{_eq: null}` as no condition; prefect's CLI relies on it
    if column in TIME_COLUMNS and op in {"_lt", "_lte", "_gt", "_gte"}:
        actual, expected = as_time(actual), as_time(expected)
    return COMPARISONS[op](actual, expected)
