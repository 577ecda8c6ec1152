"""The people who may pass the door, and the record of what was sent through it: schema
`door` of the stack's PostgreSQL, so that both survive restarts and are in `make backup`.
Passwords are kept as bcrypt hashes only."""

import hashlib
import json
import re
import secrets
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import List, Optional

import bcrypt
import psycopg2
import psycopg2.extras
import psycopg2.pool

from door.rules import ROLES

SCHEMA = """
SELECT pg_advisory_xact_lock(4300);
CREATE SCHEMA IF NOT EXISTS door;
CREATE TABLE IF NOT EXISTS door.person (
    name text PRIMARY KEY,
    role text NOT NULL,
    password_hash text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz
);
CREATE TABLE IF NOT EXISTS door.audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    caller text NOT NULL,
    role text NOT NULL,
    field text NOT NULL,
    object jsonb NOT NULL,
    allowed boolean NOT NULL,
    reason text
);
CREATE INDEX IF NOT EXISTS audit_at ON door.audit (at);
"""
NAME = re.compile(r"[a-z][a-z0-9._-]{0,39}")
# How much of a field's arguments the record keeps: a state's result or a flow's whole
# serialized form would crowd out everything else.
OBJECT_CHARS = 2000
# last_seen is written at most this often per person: not one UPDATE per request.
SEEN_EVERY_SECONDS = 60
CONNECTIONS = 4


class PeopleError(ValueError):
    """A name or role that is not allowed: one line saying what is."""


@dataclass(frozen=True)
class Person:
    name: str
    role: str


def checked_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise PeopleError(
            f"NAME={name!r} is not allowed: a lower-case letter, then up to 39 of a-z, 0-9, '.', '_', '-'"
        )
    return name


def checked_role(role: str) -> str:
    if role not in (*ROLES, "none"):
        raise PeopleError(f"ROLE={role!r} is not allowed: one of {', '.join(ROLES)}, or none to remove")
    return role


def recorded_object(arguments: dict) -> dict:
    """A field's arguments as the record keeps them: whole when short, else cut."""
    text = json.dumps(arguments, default=str, sort_keys=True)
    return arguments if len(text) <= OBJECT_CHARS else {"cut": text[:OBJECT_CHARS]}


class People:
    """The door's tables, over a small pool of connections (the door's requests run in
    threads beside each other; a browser asks for a page's files six at a time). A thread
    waits for a free connection: psycopg2's pool would refuse it instead."""

    def __init__(self, database_url: str):
        self.pool = psycopg2.pool.ThreadedConnectionPool(1, CONNECTIONS, database_url)
        self.free = threading.BoundedSemaphore(CONNECTIONS)
        # Passwords already checked against their hash: bcrypt is slow on purpose, and a
        # browser sends the login with every request. Keyed by the stored hash too, so a
        # new password or a removal counts at once.
        self.verified = set()
        self.seen = {}
        self.lock = threading.Lock()
        with self.cursor() as cursor:
            cursor.execute(SCHEMA)

    @contextmanager
    def cursor(self):
        with self.free:
            connection = self.pool.getconn()
            try:
                with connection, connection.cursor() as cursor:
                    yield cursor
            finally:
                self.pool.putconn(connection)

    def close(self) -> None:
        self.pool.closeall()

    def set(self, name: str, role: str) -> Optional[str]:
        """Creates the person or changes their role, with a new password (returned, never
        stored); role none removes them (None)."""
        checked_name(name)
        if checked_role(role) == "none":
            with self.cursor() as cursor:
                cursor.execute("DELETE FROM door.person WHERE name = %s", (name,))
                if not cursor.rowcount:
                    raise PeopleError(f"NAME={name!r} is not a person here: nothing to remove")
            return None
        password = secrets.token_urlsafe(18)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()
        with self.cursor() as cursor:
            cursor.execute(
                "INSERT INTO door.person (name, role, password_hash) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash",
                (name, role, hashed),
            )
        return password

    def listing(self) -> List[dict]:
        with self.cursor() as cursor:
            cursor.execute("SELECT name, role, created, last_seen FROM door.person ORDER BY name")
            return [dict(zip(("name", "role", "created", "last_seen"), row)) for row in cursor.fetchall()]

    def verify(self, name: str, password: str, now: float) -> Optional[Person]:
        """The person these credentials are, or None."""
        with self.cursor() as cursor:
            cursor.execute("SELECT role, password_hash FROM door.person WHERE name = %s", (name,))
            row = cursor.fetchone()
        if row is None:
            return None
        role, hashed = row
        key = hashlib.sha256(f"{name}\0{password}\0{hashed}".encode()).digest()
        if key not in self.verified:
            if not bcrypt.checkpw(password.encode(), hashed.encode()):
                return None
            with self.lock:
                self.verified.add(key)
        if now - self.seen.get(name, float("-inf")) >= SEEN_EVERY_SECONDS:
            self.seen[name] = now
            with self.cursor() as cursor:
                cursor.execute("UPDATE door.person SET last_seen = now() WHERE name = %s", (name,))
        return Person(name, role)

    def record(self, entries: List[tuple]) -> None:
        """(caller, role, field, arguments, allowed, reason) each, in one transaction."""
        with self.cursor() as cursor:
            psycopg2.extras.execute_values(
                cursor,
                "INSERT INTO door.audit (caller, role, field, object, allowed, reason) VALUES %s",
                [
                    (
                        caller,
                        role,
                        field,
                        json.dumps(recorded_object(arguments), default=str),
                        allowed,
                        reason,
                    )
                    for caller, role, field, arguments, allowed, reason in entries
                ],
            )

    def recent(self, count: int = 50) -> List[dict]:
        """The last `count` entries of the record, newest last."""
        with self.cursor() as cursor:
            cursor.execute(
                "SELECT at, caller, role, field, object, allowed, reason FROM "
                "(SELECT * FROM door.audit ORDER BY id DESC LIMIT %s) last ORDER BY id",
                (count,),
            )
            names = ("at", "caller", "role", "field", "object", "allowed", "reason")
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def forget_before(self, days: float) -> int:
        """Drops the record's entries older than `days` (0 keeps them all); how many."""
        if not days:
            return 0
        with self.cursor() as cursor:
            cursor.execute("DELETE FROM door.audit WHERE at < now() - %s * interval '1 day'", (days,))
            return cursor.rowcount
