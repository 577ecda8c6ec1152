"""An offline stand-in for the randomuser API: for demos without internet
(`make up OFFLINE=1`), the tests and the benchmark.

It answers `GET /api/?results=N&format=csv&seed=S&page=P` like the real API: the API's CSV
columns, at most 5,000 users a request, the same users again for the same seed, page and
size. Names carry accents and some values quoted commas. It can add latency, fail a share
of requests with 503 (to show retries), limit each client as the real API does (see
`DemoUsersAPI.limit`) and, for tests, answer with chosen faults (see
`DemoUsersAPI.faults`). Tests run it on 127.0.0.1 with a lifetime, so it stops by itself.

    python -m demo.users_api --port 8999 --latency 0.05 --fail-rate 0.2
"""

import argparse
import csv
import io
import json
import random
import sys
import threading
import time
import uuid
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MAX_RESULTS = 5000
MAX_PAGE = 10_000
# The real API's answer once a client is over its limit (RandomAPI/Randomuser.me-Node
# ac8e874, routes/api.js), whatever format was asked for.
LIMIT_MESSAGE = (
    "Whoa, ease up there cowboy. You've requested {} users in the last minute. Help us "
    "keep this service free and spare some bandwidth for other users please :)"
)
COLUMNS = (
    "gender,name.title,name.first,name.last,location.street.number,location.street.name,"
    "location.city,location.state,location.country,location.postcode,"
    "location.coordinates.latitude,location.coordinates.longitude,"
    "location.timezone.offset,location.timezone.description,email,login.uuid,"
    "login.username,login.password,login.salt,login.md5,login.sha1,login.sha256,"
    "dob.date,dob.age,registered.date,registered.age,phone,cell,id.name,id.value,"
    "picture.large,picture.medium,picture.thumbnail,nat"
).split(",")

# nat: (country, cities with their states, postcode pattern, id name)
COUNTRIES = {
    "BR": ("Brazil", [("São Paulo", "São Paulo"), ("Niterói", "Rio de Janeiro")], "#####-###", "CPF"),
    "ES": ("Spain", [("Logroño", "La Rioja"), ("Málaga", "Andalucía")], "#####", "DNI"),
    "FR": ("France", [("Besançon", "Doubs"), ("Orléans", "Loiret")], "#####", "INSEE"),
    "DE": ("Germany", [("Köln", "Nordrhein-Westfalen"), ("Nürnberg", "Bayern")], "#####", "SVNR"),
    "NO": ("Norway", [("Tromsø", "Troms"), ("Bærum", "Akershus")], "####", "FN"),
    "US": (
        "United States",
        [("Washington, D.C.", "District of Columbia"), ("Austin", "Texas")],
        "#####",
        "SSN",
    ),
}
FIRST_NAMES = {
    "female": ["Amélie", "Zoë", "Ana Júlia", "Søs", "Inés", "Chloé", "Mary-Ann", "Björk"],
    "male": ["José", "João", "François", "Jürgen", "Øyvind", "Ángel", "Noah", "Seán"],
}
LAST_NAMES = ["D'Ávila", "Gonçalves", "Müller", "Ødegård", "Peña", "Lefèvre", "Smith, Jr.", "Araújo"]
STREETS = ["Rua da Conceição", "Calle de Alcalá", "Rue de l'Église", "Königstraße", "Main Street"]
TIMEZONES = [
    ("-3:00", "Brazil, Buenos Aires, Georgetown"),
    ("+1:00", "Brussels, Copenhagen, Madrid, Paris"),
    ("-5:00", "Eastern Time (US & Canada), Bogota, Lima"),
]


def _random_user(rng: random.Random, user_id: str) -> list:
    gender = rng.choice(("female", "male"))
    nat = rng.choice(tuple(COUNTRIES))
    country, places, postcode, id_name = COUNTRIES[nat]
    city, state = rng.choice(places)
    first, last = rng.choice(FIRST_NAMES[gender]), rng.choice(LAST_NAMES)
    offset, zone = rng.choice(TIMEZONES)
    username = f"{first.split()[0].lower()}{rng.randrange(1000)}"
    digest = f"{rng.getrandbits(256):064x}"
    born, registered = 1950 + rng.randrange(55), 2002 + rng.randrange(20)
    folder = "women" if gender == "female" else "men"
    picture = f"https://randomuser.me/api/portraits/{{}}{folder}/{rng.randrange(100)}.jpg"
    phone, cell = (
        f"(0{rng.randrange(10, 99)}) {rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}"
        for _ in range(2)
    )
    return [
        gender,
        "Ms" if gender == "female" else "Mr",
        first,
        last,
        rng.randrange(1, 9999),
        rng.choice(STREETS),
        city,
        state,
        country,
        "".join(str(rng.randrange(10)) if c == "#" else c for c in postcode),
        f"{rng.uniform(-90, 90):.4f}",
        f"{rng.uniform(-180, 180):.4f}",
        offset,
        zone,
        f"{username}@example.com",
        user_id,
        username,
        f"pw{rng.randrange(10**6)}",
        digest[:8],
        digest[:32],
        digest[:40],
        digest,
        f"{born}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T10:20:30.000Z",
        2026 - born,
        f"{registered}-11-0{rng.randrange(1, 10)}T08:00:00.000Z",
        2026 - registered,
        phone,
        cell,
        id_name,
        "" if rng.random() < 0.1 else str(rng.randrange(10**9)),
        picture.format(""),
        picture.format("med/"),
        picture.format("thumb/"),
        nat,
    ]


@lru_cache(maxsize=1)
def _user_pool(size=1009):
    """CSV lines of varied users, split where login.uuid goes: pages are cut from these
    so that the fake stays much faster than the pipeline it serves."""
    rng, placeholder = random.Random("pool"), "<login.uuid>"
    pool = []
    for _ in range(size):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(_random_user(rng, placeholder))
        pool.append(tuple(out.getvalue().split(placeholder)))
    return pool


def users_csv(seed: str, page: int, results: int) -> str:
    """The CSV for one page: the same seed, page and size give the same users."""
    rng, pool = random.Random(f"{seed}/{page}/{results}"), _user_pool()
    lines = [",".join(COLUMNS) + "\n"]
    for _ in range(results):
        before, after = pool[rng.randrange(len(pool))]
        lines.append(f"{before}{uuid.UUID(int=rng.getrandbits(128), version=4)}{after}")
    return "".join(lines)


class Server(ThreadingHTTPServer):
    # Dozens of flow runs connect at once (here, and to the tests' Prefect API stand-in,
    # which serves with this class too): socketserver's default backlog of 5 resets their
    # connections, and Prefect's task runner then leaves a task Pending and its run Running.
    # apollo (Node) listens with a backlog of 511.
    request_queue_size = 512
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up (its timeout, a test's "slow" answer) is no server error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class DemoUsersAPI:
    """The fake API on 127.0.0.1 in a background thread; a context manager.

    `faults` is a list of answers for the next requests, one each, in order:
    a status code ("503", "500", "404", ...), "slow" (waits `slow_seconds` before answering),
    "cut" (closes the connection halfway through the body), "empty" (200 with no body),
    "headerless" (CSV without its header line), "short" (fewer users than asked),
    "ragged" (the last user cut short, in a body of consistent length).
    `always` is the answer once `faults` is used up (None: a normal answer).
    `requests` records the query of every request.

    `limit` users per client address per `window` seconds (0: no limit), as the real API
    counts them: checked before serving, fixed windows from the start, then 429 with a
    JSON body. `rejected` counts those 429s.
    """

    def __init__(
        self,
        port=0,
        latency=0.0,
        fail_rate=0.0,
        lifetime=300.0,
        max_requests=10_000,
        host="127.0.0.1",
        limit=0,
        window=300.0,
    ):
        self.latency, self.fail_rate = latency, fail_rate
        self.limit, self.window = limit, window
        self.rejected = 0
        self._served, self._served_window = {}, 0
        self._started = time.monotonic()
        self.slow_seconds = 5.0
        self.faults, self.always = [], None
        self.requests = []
        self.max_requests = max_requests
        self._lock = threading.Lock()
        self._server = Server((host, port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        # No lifetime: serve until stopped (the demo service).
        self._deadline = threading.Timer(lifetime, self.stop) if lifetime else None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def start(self) -> "DemoUsersAPI":
        self._thread.start()
        if self._deadline:
            self._deadline.daemon = True
            self._deadline.start()
        return self

    def stop(self) -> None:
        if self._deadline:
            self._deadline.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _next_fault(self, query):
        with self._lock:
            self.requests.append(query)
            if self.max_requests and len(self.requests) >= self.max_requests:
                threading.Thread(target=self.stop, daemon=True).start()
            if self.faults:
                return self.faults.pop(0)
            return self.always

    def _over_limit(self, client: str, results: int):
        """Counts `results` for `client` and returns None, or, when the client was already
        at its limit in this window, the count it had (nothing counted)."""
        if not self.limit:
            return None
        with self._lock:
            current = int((time.monotonic() - self._started) // self.window)
            if current != self._served_window:  # the real API forgets every count at once
                self._served, self._served_window = {}, current
            count = self._served.get(client, 0)
            if count >= self.limit:
                self.rejected += 1
                return count
            self._served[client] = count + results
            return None

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and
            # the client's delayed ACK add 40 ms to every answer on a kept-alive connection.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output quiet
                pass

            def send(self, status, body: bytes, length=None, content_type="text/csv; charset=utf-8"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def send_error_json(self, status, message):
                self.send(status, json.dumps({"error": message}).encode(), content_type="application/json")

            def do_GET(self):
                url = urlparse(self.path)
                query = {key: values[-1] for key, values in parse_qs(url.query).items()}
                fault = api._next_fault(query)
                time.sleep(api.latency)
                if fault is None and api.fail_rate and random.random() < api.fail_rate:
                    fault = "503"
                if fault == "slow":
                    time.sleep(api.slow_seconds)
                if fault and fault.isdigit():
                    return self.send_error_json(int(fault), f"fake users API answers {fault} as told")
                if url.path.rstrip("/") != "/api":
                    return self.send_error_json(404, "no such path")
                try:
                    results, page = int(query.get("results", 1)), int(query.get("page", 1))
                except ValueError:
                    return self.send_error_json(400, "results and page take numbers")
                # Out of range is not an error for the real API: 1 user, page 1.
                results = results if 1 <= results <= MAX_RESULTS else 1
                page = page if 1 <= page <= MAX_PAGE else 1
                count = api._over_limit(self.client_address[0], results)
                if count is not None:  # before the format: the real API answers JSON anyway
                    return self.send_error_json(429, LIMIT_MESSAGE.format(count))
                if query.get("format") != "csv":
                    return self.send_error_json(400, "this fake serves format=csv only")
                seed = query.get("seed") or uuid.uuid4().hex[:16]
                if fault == "short":
                    results = max(results - 1, 0)
                body = users_csv(seed, page, results)
                if fault == "headerless":
                    body = body.split("\n", 1)[1]
                elif fault == "ragged":
                    body = body.rstrip("\n").rsplit(",", 5)[0] + "\n"
                elif fault == "empty":
                    body = ""
                data = body.encode("utf-8")
                if fault == "cut":
                    self.send(200, data[: len(data) // 2], length=len(data))
                    self.close_connection = True
                    return
                self.send(200, data)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the offline randomuser API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8999)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of answers that are 503")
    parser.add_argument(
        "--lifetime", type=float, default=0.0, help="seconds before it stops (0: until stopped)"
    )
    parser.add_argument(
        "--limit", type=int, default=0, help="users per client per window, then 429 (0: no limit)"
    )
    parser.add_argument("--window", type=float, default=300.0, help="seconds of a limit window")
    args = parser.parse_args()
    api = DemoUsersAPI(
        args.port,
        args.latency,
        args.fail_rate,
        args.lifetime,
        max_requests=0,
        host=args.host,
        limit=args.limit,
        window=args.window,
    ).start()
    print(f"offline users API at {api.url}", flush=True)
    api._thread.join()


if __name__ == "__main__":
    main()
