"""`make user`, `make users`, `make audit`: run in the door's container, where the database
is reachable.

  python -m door user NAME ROLE   create or change a person (ROLE none: remove); the new
                                  password is the last line, shown only then
  python -m door users            every person: name, role, created, last seen
  python -m door audit            the record's last 50 entries, newest last
"""

import json
import os
import sys

from door.people import People, PeopleError


def when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "never"


def audit_line(entry: dict) -> str:
    verdict = "allowed" if entry["allowed"] else f"REFUSED: {entry['reason']}"
    what = json.dumps(entry["object"], sort_keys=True)
    return f"{when(entry['at'])}  {entry['caller']} ({entry['role']})  {entry['field']}  {verdict}  {what}"


def main(argv) -> int:
    command, *arguments = argv or ["help"]
    usage = {"user": 2, "users": 0, "audit": 0}
    if usage.get(command) != len(arguments):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        people = People(os.environ["DOOR_DATABASE_URL"])
        if command == "user":
            name, role = arguments
            password = people.set(name, role)
            print(f"{name}: removed" if password is None else f"{name}: {role}\npassword: {password}")
        elif command == "users":
            for person in people.listing():
                print(
                    f"{person['name']:<20} {person['role']:<10} created {when(person['created'])}"
                    f"  last seen {when(person['last_seen'])}"
                )
        else:
            for entry in people.recent():
                print(audit_line(entry))
    except PeopleError as error:
        print(f"door: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
