"""door/people.py on a real PostgreSQL: people with hashed passwords, their roles, the
record, and what it forgets."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from door.__main__ import audit_line
from door.people import CONNECTIONS, OBJECT_CHARS, People, PeopleError


def test_a_person_gets_a_password_that_is_kept_only_as_its_hash(people):
    password = people.set("ana", "operator")
    assert len(password) >= 20
    with people.cursor() as cursor:
        cursor.execute("SELECT role, password_hash FROM door.person WHERE name = 'ana'")
        role, hashed = cursor.fetchone()
    assert role == "operator" and hashed.startswith("$2b$") and password not in hashed
    assert people.verify("ana", password, 0.0).role == "operator"
    assert people.verify("ana", password + "x", 0.0) is None
    assert people.verify("bruno", password, 0.0) is None


def test_a_new_role_or_removal_counts_at_once_and_the_old_password_stops(people):
    first = people.set("ana", "viewer")
    assert people.verify("ana", first, 0.0).role == "viewer"
    second = people.set("ana", "maintainer")
    assert people.verify("ana", first, 1.0) is None  # cached as verified, but its hash changed
    assert people.verify("ana", second, 1.0).role == "maintainer"
    assert people.set("ana", "none") is None
    assert people.verify("ana", second, 2.0) is None and people.listing() == []


@pytest.mark.parametrize(
    "name, role, said",
    [
        ("Ana", "viewer", "NAME='Ana' is not allowed: a lower-case letter, then up to 39 of a-z, 0-9, '.', '_', '-'"),
        ("ana;drop", "viewer", "NAME='ana;drop' is not allowed"),
        ("", "viewer", "NAME='' is not allowed"),
        ("ana", "root", "ROLE='root' is not allowed: one of viewer, operator, maintainer, admin, or none to remove"),
        ("nobody", "none", "NAME='nobody' is not a person here: nothing to remove"),
    ],
)  # fmt: skip
def test_a_bad_name_or_role_changes_nothing(people, name, role, said):
    people.set("ana", "viewer")
    before = people.listing()
    with pytest.raises(PeopleError) as refused:
        people.set(name, role)
    assert str(refused.value).startswith(said)
    assert people.listing() == before


def test_last_seen_is_written_once_a_minute_not_on_every_request(people):
    password = people.set("ana", "viewer")
    assert people.listing()[0]["last_seen"] is None
    people.verify("ana", password, 1000.0)
    seen = people.listing()[0]["last_seen"]
    people.verify("ana", password, 1030.0)
    assert people.listing()[0]["last_seen"] == seen
    people.verify("ana", password, 1061.0)
    assert people.listing()[0]["last_seen"] > seen


def test_the_record_newest_last_big_arguments_cut(people):
    people.record(
        [("ana", "operator", "create_flow_run", {"input": {"parameters": {"n_users": 37}}}, True, None)]
    )
    big = {"input": {"states": [{"state": {"type": "Success", "_result": "x" * 10_000}}]}}
    people.record([("ana", "operator", "set_task_run_states", big, False, "a state carrying _result")])
    first, last = people.recent()
    assert first["object"] == {"input": {"parameters": {"n_users": 37}}} and first["allowed"]
    assert last["reason"] == "a state carrying _result" and len(last["object"]["cut"]) == OBJECT_CHARS
    line = audit_line(first)
    assert "  ana (operator)  create_flow_run  allowed  " in line and json.dumps({"n_users": 37}) in line
    assert "REFUSED: a state carrying _result" in audit_line(last)


def test_the_record_forgets_what_is_older_than_the_days_kept(people):
    people.record([("ana", "admin", "delete_flow_run", {}, True, None)] * 3)
    with people.cursor() as cursor:
        cursor.execute(
            "UPDATE door.audit SET at = now() - interval '40 days' WHERE id = (SELECT min(id) FROM door.audit)"
        )
    assert people.forget_before(0) == 0  # 0 keeps everything, as SERVER_KEEP_DAYS=0 does
    assert people.forget_before(30) == 1 and len(people.recent()) == 2


def test_the_schema_is_made_once_whoever_starts_first(postgres_url, people):
    again = People(postgres_url)  # a second process (make user beside the door)
    again.close()
    assert people.listing() == []


def test_more_requests_at_once_than_connections_wait_their_turn(people):
    password = people.set("ana", "viewer")
    with ThreadPoolExecutor(max_workers=4 * CONNECTIONS) as pool:
        seen = list(pool.map(lambda i: people.verify("ana", password, float(i)), range(16 * CONNECTIONS)))
    assert all(person is not None and person.role == "viewer" for person in seen)
