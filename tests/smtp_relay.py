"""A test SMTP server: what the server e-mails (sign-in codes, emergency-access notices) is
received on 127.0.0.1 and kept for the test to read. Run it with loopback_server.serving."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import BinaryIO


@dataclass
class SmtpRelay:
    """Just enough SMTP (RFC 5321) to receive messages: one connection at a time, each message
    kept whole (headers and body)."""

    port: int = 0
    messages: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    def handle(self, connection: socket.socket) -> None:
        self._session(connection.makefile("rb"), connection)

    def _session(self, reader: BinaryIO, connection: socket.socket) -> None:
        connection.sendall(b"220 test relay\r\n")
        sender, recipients = "", []
        for _ in range(100):  # bounded: a real session is a handful of commands
            line = reader.readline()
            if not line:
                return
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                connection.sendall(b"250 test relay\r\n")
            elif command.startswith(b"MAIL FROM:"):
                sender = line.strip()[10:].decode().strip("<>")
                connection.sendall(b"250 ok\r\n")
            elif command.startswith(b"RCPT TO:"):
                recipients.append(line.strip()[8:].decode().strip("<>"))
                connection.sendall(b"250 ok\r\n")
            elif command == b"DATA":
                connection.sendall(b"354 go on\r\n")
                body = b""
                while not body.endswith(b"\r\n.\r\n"):
                    chunk = reader.readline()
                    if not chunk:
                        return
                    body += chunk
                self.messages.append(body[:-5])
                self.envelopes.append((sender, recipients))
                connection.sendall(b"250 queued\r\n")
            elif command == b"QUIT":
                connection.sendall(b"221 bye\r\n")
                return
            else:
                connection.sendall(b"250 ok\r\n")
