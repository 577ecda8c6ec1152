"""The stand-in on HTTP, as apollo serves it: GraphQL at any POST path, apollo's health check
(GET /.well-known/apollo/server-health) and, for tests in other processes, GET
/standin/state (the tables and operations as JSON) and POST /standin/towel (one pass of
towel's zombie killer and lazarus; body {"heartbeat_older_than": seconds})."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from demo.users_api import Server


def serve(standin, host: str, port: int, lifetime: float) -> ThreadingHTTPServer:
    """Serves `standin` in a background thread until `lifetime` seconds have passed."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status, payload):
            data = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.startswith("/.well-known/apollo/server-health"):
                return self.reply(200, {"status": "pass"})
            if self.path.startswith("/standin/state"):
                with standin.lock:
                    return self.reply(200, {"tables": standin.tables, "operations": standin.operations})
            self.reply(404, {"error": "not here"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            payload = json.loads(self.rfile.read(length) or b"{}")
            if self.path.startswith("/standin/towel"):
                return self.reply(200, standin.run_towel(float(payload["heartbeat_older_than"])))
            headers = {name.lower(): value for name, value in self.headers.items()}
            self.reply(200, standin.execute(payload.get("query", ""), payload.get("variables"), headers))

    server = Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    deadline = threading.Timer(lifetime, standin.stop)
    deadline.daemon = True
    deadline.start()
    return server
