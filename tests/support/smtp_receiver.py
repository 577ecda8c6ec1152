"""A mail server as Alertmanager's e-mail would reach one: plain SMTP on loopback (no TLS, no
login), each message kept as (recipients, the message parsed). Stops by itself after
`lifetime` seconds."""

import email
import email.policy
import socketserver
import time

from tests.support import ServedForAWhile


class SmtpReceiver(ServedForAWhile):
    def __init__(self, lifetime=120.0):
        self.messages = []
        receiver = self

        class Session(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.reply("220 localhost ESMTP test")
                recipients = []
                while line := self.rfile.readline().decode(errors="replace").rstrip("\r\n"):
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 localhost")
                    elif verb == "RCPT":
                        recipients.append(line.split(":", 1)[1].strip(" <>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = b"".join(iter(self.rfile.readline, b".\r\n"))
                        message = email.message_from_bytes(data, policy=email.policy.default)
                        receiver.messages.append((recipients, message))
                        recipients = []
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:  # MAIL, RSET, NOOP
                        self.reply("250 OK")

        self.serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session), lifetime)

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait(self, seconds=10.0) -> list:
        deadline = time.monotonic() + seconds
        while not self.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages
