"""The door on HTTP: an ASGI app (Starlette) between the proxy and apollo. It tells who calls
(a person's login, API_TOKEN for agents, or on loopback the person at the keyboard), reads
each GraphQL request whole (door/requests.py), checks every root field for the caller's role
(door/rules.py), writes every change and every refusal on record (door/people.py), and only
then passes the request to apollo; a refusal is HTTP 403 with a GraphQL error naming the
field and the role. `/door/auth` answers the proxy's forward_auth for the UI's pages and
the monitoring's.

  uvicorn door.app:app --host 0.0.0.0 --port 4300
"""

import asyncio
import base64
import binascii
import hmac
import json
import os
import time
from contextlib import asynccontextmanager
from typing import List, Optional
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from door.people import People, Person
from door.requests import Field, NotGraphQL, fields_of, from_query_string, requests_in
from door.rules import AGENT, monitoring_read, monitoring_refusal, refusal
from flows.server_housekeeping.settings import load_settings as housekeeping_settings
from stack.settings import load_stack_settings

APOLLO_URL = os.environ.get("DOOR_APOLLO_URL", "http://apollo:4200")
# Who sends a request without credentials on loopback: the person at the keyboard.
LOCAL = Person("local", "admin")
AGENT_CALLER = Person("agent", AGENT)
# Headers that belong to one hop, not to the request passed on; the credentials stop here.
NOT_PASSED = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
    "authorization",
}
FLOWS = "query($ids: [uuid!]) { flow(where: {id: {_in: $ids}}) { id run_config flow_group { labels } } }"
FORGET_EVERY_SECONDS = 3600


def forbidden(message: str, status: int = 403) -> JSONResponse:
    return JSONResponse({"data": None, "errors": [{"message": f"door: {message}"}]}, status_code=status)


def login_asked() -> Response:
    return PlainTextResponse(
        "401 a login is needed (make user NAME=... ROLE=... gives one)",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="Prefect", charset="UTF-8"'},
    )


async def caller_of(request: Request) -> Optional[Person]:
    """Who sends the request, or None when its credentials are wrong or missing where a login
    is required."""
    kind, _, credentials = request.headers.get("authorization", "").partition(" ")
    token = request.app.state.api_token
    if kind.lower() == "bearer":
        return AGENT_CALLER if token and hmac.compare_digest(credentials.encode(), token.encode()) else None
    if kind.lower() == "basic":
        try:
            name, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return await run_in_threadpool(request.app.state.people.verify, name, password, time.monotonic())
    return None if request.app.state.login_required or kind else LOCAL


async def the_flows(request: Request, fields: List[Field]) -> dict:
    """The flows the request's create_flow_run fields start, as registered: the run config
    and labels a run may repeat."""
    inputs = [f.arguments.get("input") for f in fields if f.name == "create_flow_run"]
    ids = [given.get("flow_id") for given in inputs if isinstance(given, dict)]
    ids = [flow_id for flow_id in ids if isinstance(flow_id, str)]
    if not ids:
        return {}
    answer = (
        await request.app.state.apollo.post("/graphql", json={"query": FLOWS, "variables": {"ids": ids}})
    ).json()
    return {flow["id"]: flow for flow in (answer.get("data") or {}).get("flow", [])}


async def read(request: Request) -> List[Field]:
    if request.method == "GET":
        return fields_of(from_query_string(dict(request.query_params)))
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise NotGraphQL("its body is not JSON") from None
    return [field for item in requests_in(body) for field in fields_of(item)]


async def checked(request: Request, caller: Person) -> Optional[Response]:
    """The refusal of a GraphQL request, or None to pass it on; on record either way, but for
    reads and the agents' routine (their states and logs are the server's own record)."""
    try:
        fields = await read(request)
    except NotGraphQL as exc:
        return forbidden(f"a request that is not GraphQL is not let through: {exc}", 400)
    settings = {
        "NOTIFY_WEBHOOK_URL": request.app.state.notify_webhook_url,
        "flows": await the_flows(request, fields),
    }
    verdicts = ((field, refusal(field, caller.role, settings)) for field in fields)
    refused = next(((field, reason) for field, reason in verdicts if reason), None)
    if refused:  # the refusal alone: nothing else of the request happened
        field, reason = refused
        recorded = [(caller.name, caller.role, field.name, field.arguments, False, reason)]
    else:
        recorded = [
            (caller.name, caller.role, field.name, field.arguments, True, None)
            for field in fields
            if field.kind == "mutation" and caller.role != AGENT
        ]
    if recorded:
        await run_in_threadpool(request.app.state.people.record, recorded)
    return forbidden(f"{refused[1]} (role {caller.role}, {caller.name})") if refused else None


async def door(request: Request) -> Response:
    caller = await caller_of(request)
    if caller is None:
        return login_asked()
    if request.method == "POST" or "query" in request.query_params:
        refused = await checked(request, caller)
        if refused:
            return refused
    headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_PASSED}
    answer = await request.app.state.apollo.request(
        request.method,
        request.url.path,
        params=request.query_params,
        headers=headers,
        content=await request.body(),
    )
    passed = {k: v for k, v in answer.headers.items() if k.lower() not in NOT_PASSED | {"content-encoding"}}
    return Response(answer.content, status_code=answer.status_code, headers=passed)


async def auth(request: Request) -> Response:
    """The proxy's forward_auth for the UI, the reports, the metrics and the monitoring
    pages: a person's login (the token opens the API alone, and the metrics: `?metrics`).
    For Prometheus and Alertmanager (`?monitoring`) the request's method and path too, from
    the proxy's X-Forwarded-Method and X-Forwarded-Uri: every change and refusal on record."""
    caller = await caller_of(request)
    machine_may = "metrics" in request.query_params
    if caller is None or (caller.role == AGENT and not machine_may):
        return login_asked()
    if "monitoring" in request.query_params:
        method = request.headers.get("x-forwarded-method", "GET").upper()
        path = urlsplit(request.headers.get("x-forwarded-uri", "/")).path
        reason = monitoring_refusal(method, path, caller.role)
        if reason or not monitoring_read(method, path):
            entry = (caller.name, caller.role, f"{method} {path}", {}, reason is None, reason)
            await run_in_threadpool(request.app.state.people.record, [entry])
        if reason:
            return PlainTextResponse(
                f"403 door: {reason} (role {caller.role}, {caller.name})", status_code=403
            )
    return Response(status_code=204)


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def forget_old_entries(people: People, keep_days: float) -> None:
    """The record is kept as long as the server's runs (SERVER_KEEP_DAYS)."""
    while True:
        await run_in_threadpool(people.forget_before, keep_days)
        await asyncio.sleep(FORGET_EVERY_SECONDS)


@asynccontextmanager
async def lifespan(app: Starlette):
    # "required" behind the one HTTPS port (PUBLIC=1): no request without a login or the token.
    app.state.login_required = os.environ.get("DOOR_LOGIN") == "required"
    app.state.api_token = os.environ.get("API_TOKEN", "")
    app.state.notify_webhook_url = load_stack_settings().notify_webhook_url
    app.state.people = await run_in_threadpool(People, os.environ["DOOR_DATABASE_URL"])
    app.state.apollo = httpx.AsyncClient(base_url=APOLLO_URL, timeout=httpx.Timeout(300.0, connect=10.0))
    forgetting = asyncio.create_task(forget_old_entries(app.state.people, housekeeping_settings().keep_days))
    try:
        yield
    finally:
        forgetting.cancel()
        await app.state.apollo.aclose()
        app.state.people.close()


app = Starlette(
    routes=[
        Route("/door/health", health),
        Route("/door/auth", auth, methods=["GET", "HEAD", "POST"]),
        Route("/{path:path}", door, methods=["GET", "POST"]),
    ],
    lifespan=lifespan,
)
