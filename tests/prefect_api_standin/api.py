"""The stand-in: GraphQL executed against schema.graphql as Prefect Server 0.15.9 answers it.
As the server splits api/ (its rules) from graphql/ (thin resolvers), the rules live in
flows.py (projects, flows, schedules), runs.py (runs, states, logs), hooks.py (cloud
hooks), towel.py (recovery of runs) and tables.py (the tables), and resolvers.py hands each
field to them; the tables' own queries follow from the schema, as Hasura generates them."""

import json
import threading
from functools import lru_cache, partial

from graphql import GraphQLError, execute_sync, parse, validate

from tests.prefect_api_standin import resolvers
from tests.prefect_api_standin.flows import Flows
from tests.prefect_api_standin.hooks import Hooks
from tests.prefect_api_standin.runs import SUBMITTED_LOCK_SECONDS, Runs
from tests.prefect_api_standin.schema import build_standin_schema
from tests.prefect_api_standin.tables import Tables
from tests.prefect_api_standin.towel import Towel


class PrefectAPIStandIn(Flows, Runs, Hooks, Towel, Tables):
    """The API's state and resolvers; `serve()` puts it on HTTP (server.py)."""

    def __init__(self):
        schema = build_standin_schema()
        super().__init__(schema)
        self.operations = []  # (operation type, root field names, variables)
        self.changes = 0  # mutations done and towel passes: when the tables may have changed
        # In memory, as the server's own lock is (api/states.py): run id -> locked until.
        self.submitted_locks = {}
        self.submitted_lock_seconds = SUBMITTED_LOCK_SECONDS
        self.lock = threading.RLock()
        self.refusals = {}  # root field -> [message, times left]: see refuse()
        self._server = None
        fields = [*schema.query_type.fields, *schema.mutation_type.fields]
        self._root = {field: self._resolver(field) for field in fields}
        # Parsed and validated once per query text: the agent and every flow run send the
        # same few again and again, and parsing under the lock made the API the bottleneck
        # of 50 runs at once.
        self._prepare = lru_cache(maxsize=2048)(self._parse_and_validate)

    def _resolver(self, field: str):
        """The field's function in resolvers.py; else, for a table's query (`<table>`,
        `<table>_by_pk`, `<table>_aggregate`), the rows as Hasura generates those queries."""
        if hasattr(resolvers, field):
            return partial(getattr(resolvers, field), self)
        if field in self.tables:
            return lambda info, **args: self.select(field, **args)
        table = field.removesuffix("_by_pk")
        if field.endswith("_by_pk") and table in self.tables:
            return lambda info, id: self.view(table, self.tables[table].get(id))
        table = field.removesuffix("_aggregate")
        if field.endswith("_aggregate") and table in self.tables:
            return lambda info, **args: {"aggregate": {"count": len(self.select(table, **args))}}
        raise TypeError(f"stand-in: nothing resolves the schema's field {field}")

    def _parse_and_validate(self, query: str):
        """The query's document, its validation errors, and its operations' root fields."""
        try:
            document = parse(query)
        except GraphQLError as error:
            return None, [error], ()
        operations = tuple(
            (d.operation.value, tuple(s.name.value for s in d.selection_set.selections))
            for d in document.definitions
        )
        return document, validate(self.schema, document), operations

    def execute(self, query: str, variables=None, headers=None) -> dict:
        if isinstance(variables, str):
            variables = json.loads(variables or "null")
        document, errors, operations = self._prepare(query)
        data = None
        with self.lock:
            refused = self._refusal(operations)
            if refused:
                return {"data": None, "errors": [{"message": refused, "path": None}]}
            if not errors:
                result = execute_sync(
                    self.schema,
                    document,
                    root_value=self._root,
                    variable_values=variables or {},
                    context_value={"headers": headers or {}},
                )
                data, errors = result.data, result.errors
                if not errors:
                    self.operations += [(kind, list(fields), variables) for kind, fields in operations]
                    self.changes += sum(kind == "mutation" for kind, _ in operations)
        body = {"data": data}
        if errors:
            body["errors"] = [{"message": error.message, "path": error.path} for error in errors]
        return body

    def refuse(self, field: str, message: str, times: int = 1) -> None:
        """The next `times` requests of the root field `field` fail with `message`, as a
        server that is down or too slow to answer fails them."""
        self.refusals[field] = [message, times]

    def _refusal(self, operations):
        fields = {field for _, names in operations for field in names}
        for field in fields & set(self.refusals):
            message, times = self.refusals[field]
            if times:
                self.refusals[field][1] -= 1
                return message
        return None

    def serve(self, host="127.0.0.1", port=0, lifetime=600.0) -> "PrefectAPIStandIn":
        from tests.prefect_api_standin.server import serve

        self._server = serve(self, host, port, lifetime)
        return self

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def check_tenant(self, tenant_id) -> None:
        if tenant_id not in self.tables["tenant"]:
            raise GraphQLError(f"stand-in: no tenant {tenant_id}")
