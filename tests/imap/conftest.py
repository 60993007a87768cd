"""A courriel server for the IMAP tests (shared by the whole package) and a raw client."""

from __future__ import annotations

import base64
import imaplib
import socket
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import CourrielServer

PASSWORD = "secret-pw"
USERS = {f"{name}@example.test": PASSWORD for name in ("alice", "bob", "carol", "dave", "erin")}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    # Failed logins are part of several tests; the lockout has its own server (test_limits).
    env = {"COURRIEL_LIMITS_MAX_AUTH_FAILURES": "1000"}
    with CourrielServer(tmp_path_factory.mktemp("imap"), users=USERS, only=("imap", "imaps"),
                        plaintext_auth=True, env=env) as srv:  # fmt: skip
        yield srv


class Raw:
    """A byte-level IMAP client for transcripts: send a line, read until the tagged reply."""

    def __init__(self, port: int, tls_cert: Path | None = None) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        if tls_cert is not None:
            ctx = ssl.create_default_context(cafile=str(tls_cert))
            ctx.check_hostname = False
            sock = ctx.wrap_socket(sock)
        self.sock = sock
        self.file = sock.makefile("rb")
        self.greeting = self.file.readline()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def read_response(self, tag: bytes) -> list[bytes]:
        """Lines (with literals inlined) up to and including the tagged one."""
        out = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("closed; got " + repr(out))
            while line.endswith(b"}\r\n") and b"{" in line:
                n = int(line[line.rindex(b"{") + 1 : -3].rstrip(b"+"))
                line += self.file.read(n) + self.file.readline()
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    def cmd(self, line: bytes | str) -> list[bytes]:
        if isinstance(line, str):
            line = line.encode()
        tag = line.split(b" ", 1)[0]
        self.send(line + b"\r\n")
        return self.read_response(tag)

    def ok(self, line: bytes | str) -> list[bytes]:
        out = self.cmd(line)
        assert b" OK " in out[-1], out
        return out

    def login(self, user: str, password: str = PASSWORD) -> None:
        self.ok(f"L LOGIN {user} {password}")

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def raw(server: CourrielServer) -> Iterator[Raw]:
    client = Raw(server.port("imap"))
    yield client
    client.close()


def plain(user: str, password: str = PASSWORD) -> bytes:
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())


def unique(prefix: str = "box") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def imap(server: CourrielServer, user: str = "alice@example.test") -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    client.login(user, PASSWORD)
    return client


def message(subject: str = "hello", body: str = "Hello there.\r\n", sender: str = "bob@example.test",
            extra: str = "") -> bytes:  # fmt: skip
    return (
        f"From: Bob <{sender}>\r\nTo: Alice <alice@example.test>\r\nSubject: {subject}\r\n"
        f"Date: Sun, 29 Nov 2026 10:00:00 +0100\r\nMessage-ID: <{uuid.uuid4().hex}@example.test>\r\n{extra}"
        f"\r\n{body}"
    ).encode()
