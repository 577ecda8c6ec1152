"""An incoming-webhook receiver, as Slack's would take the server's alerts: records each
POSTed JSON body; answers 200, or (`mode`) 500, or only after `hang_seconds`. Stops by
itself after `lifetime` seconds. On loopback for the tests; `make e2e` runs it on the
stack's network, where it prints each body as a line of JSON:

    python -m tests.support.webhook_receiver --host 0.0.0.0 --port 8998
"""

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support import ServedForAWhile


class WebhookReceiver(ServedForAWhile):
    def __init__(self, mode="ok", hang_seconds=5.0, lifetime=120.0, host="127.0.0.1", port=0, echo=False):
        self.mode, self.hang_seconds, self.bodies = mode, hang_seconds, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.bodies.append(json.loads(body))
                if echo:
                    print(body.decode(), flush=True)
                if receiver.mode == "hang":
                    time.sleep(receiver.hang_seconds)
                self.send_response(500 if receiver.mode == "500" else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.serve(ThreadingHTTPServer((host, port), Handler), lifetime)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/T000/B000/secret"

    def texts(self, seconds=5.0) -> list:
        """The alerts' lines of text, once one has arrived (or after `seconds`)."""
        deadline = time.monotonic() + seconds
        while not self.bodies and time.monotonic() < deadline:
            time.sleep(0.05)
        return [[block["text"]["text"] for block in body["blocks"]] for body in self.bodies]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8998)
    parser.add_argument("--lifetime", type=float, default=600)
    args = parser.parse_args()
    receiver = WebhookReceiver(lifetime=args.lifetime, host=args.host, port=args.port, echo=True)
    time.sleep(args.lifetime)
