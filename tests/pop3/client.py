"""A tiny POP3 client for byte-exact transcripts: send raw lines, read raw replies."""

from __future__ import annotations

import socket
import ssl

#: Every client opened, closed after each test by the autouse fixture in conftest.py.
OPEN: list[RawClient] = []


class RawClient:
    def __init__(self, port: int, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        OPEN.append(self)
        sock = socket.create_connection((host, port), timeout=30)
        self.sock: socket.socket = tls.wrap_socket(sock, server_hostname="localhost") if tls else sock
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def line(self) -> bytes:
        """One reply line with its CRLF (b"" at EOF)."""
        return self.file.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: str | bytes) -> bytes:
        """Send one command (CRLF added) and return the first reply line."""
        raw = line.encode() if isinstance(line, str) else line
        self.send(raw + b"\r\n")
        return self.line()

    def multi(self) -> bytes:
        """The rest of a multi-line reply, raw, up to and including the ".\\r\\n" line."""
        out = []
        while True:
            line = self.line()
            if not line:
                raise EOFError("connection closed inside a multi-line reply")
            out.append(line)
            if line == b".\r\n":
                return b"".join(out)

    def cmd_multi(self, line: str) -> tuple[bytes, bytes]:
        first = self.cmd(line)
        return first, (self.multi() if first.startswith(b"+OK") else b"")

    def login(self, user: str, password: str) -> bytes:
        assert self.cmd(f"USER {user}").startswith(b"+OK")
        return self.cmd(f"PASS {password}")

    def starttls(self, ctx: ssl.SSLContext) -> None:
        self.file.close()
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")

    def closed(self) -> bool:
        """True when the server has closed the connection (EOF after any pending lines)."""
        while True:
            try:
                line = self.line()
            except (ConnectionError, TimeoutError):
                line = b""
            if not line:
                self.close()
                return True

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass
