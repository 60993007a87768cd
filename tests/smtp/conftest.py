"""SMTP test fixtures: one courriel server per test module run, a raw client for byte-exact
transcripts, and reading delivered mail back from the store."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.store.api import INBOX, QueuedMessage
from tests.harness import CourrielServer, open_data_store

USERS = {
    "alice@example.test": "alice-pw",
    "bob@example.test": "bob-pw",
    "carol@example.test": "carol-pw",
}
#: Small limits so that the error paths are cheap to reach.
MAX_SIZE = 100_000
MAX_RCPTS = 5
ENV = {
    "COURRIEL_LIMITS_MAX_MESSAGE_SIZE": str(MAX_SIZE),
    "COURRIEL_SMTP_MAX_RECIPIENTS": str(MAX_RCPTS),
    "COURRIEL_LIMITS_MAX_LINE_LENGTH": "2000",
}


def start_server(root: Path, env: dict[str, str] | None = None, plaintext_auth: bool = True) -> CourrielServer:
    srv = CourrielServer(
        root, users=dict(USERS), only=("smtp", "submission", "submissions"), env={**ENV, **(env or {})},
        plaintext_auth=plaintext_auth,
    )  # fmt: skip
    srv.start()
    return srv


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    root = tmp_path_factory.mktemp("smtp")
    srv = CourrielServer(root, users=dict(USERS), only=("smtp", "submission", "submissions"), env=ENV, plaintext_auth=True)
    # Aliases before the server starts: they are read through the store at RCPT time.
    from tests.harness import courriel_cmd

    courriel_cmd("init", str(srv.data), "--domain", "example.test", "--hostname", "mail.example.test", env=srv.env)
    for address, password in USERS.items():
        srv.cli("user", "add", address, "--password-stdin", stdin=password + "\n")
    srv.cli("domain", "add", "other.test")
    srv.cli("alias", "add", "team@example.test", "alice@example.test", "bob@example.test")
    srv.cli("alias", "add", "sales@example.test", "carol@example.test", "partner@remote.test")
    srv.cli("alias", "add", "loop1@example.test", "loop2@example.test")
    srv.cli("alias", "add", "loop2@example.test", "loop1@example.test")
    srv.cli("alias", "add", "alice.smith@example.test", "alice@example.test")
    srv.cli("alias", "add", "@other.test", "bob@example.test")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """A byte-level SMTP client: send exactly these bytes, read exactly those replies."""

    def __init__(self, port: int, tls: bool = False) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock: socket.socket = client_tls().wrap_socket(sock) if tls else sock
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def reply(self) -> bytes:
        """One complete (possibly multi-line) reply, as sent."""
        out = b""
        while True:
            line = self._line()
            out += line
            if line[3:4] != b"-":
                return out

    def cmd(self, data: bytes) -> bytes:
        self.send(data)
        return self.reply()

    def starttls(self) -> bytes:
        r = self.cmd(b"STARTTLS\r\n")
        assert r.startswith(b"220 ")
        self.sock = client_tls().wrap_socket(self.sock)
        return r

    def closed(self) -> bool:
        """True when the server closed the connection (EOF with nothing left)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


def auth_plain(user: str, password: str) -> bytes:
    import base64

    return b"AUTH PLAIN " + base64.b64encode(f"\0{user}\0{password}".encode()) + b"\r\n"


async def _inbox(data: Path, address: str) -> list[bytes]:
    store = await open_data_store(data)
    try:
        user = await store.get_user(address)
        assert user is not None, address
        box = await store.get_mailbox(user.id, INBOX)
        assert box is not None
        infos = await store.list_messages(box.id)
        records = await store.get_records(box.id, [i.uid for i in infos])
        return [await store.read_message(r.blob) for r in records]
    finally:
        await store.close()


def inbox(srv: CourrielServer, address: str) -> list[bytes]:
    """Every message in the user's INBOX, read back through the store API, in UID order."""
    return asyncio.run(_inbox(srv.data, address))


def split_trace(stored: bytes) -> tuple[list[bytes], bytes]:
    """(the trace fields courriel added, the rest): Return-Path then one Received field."""
    assert stored.startswith(b"Return-Path: <"), stored[:80]
    rp_end = stored.index(b"\r\n") + 2
    pos = rp_end
    assert stored[pos:].startswith(b"Received: ")
    end = stored.index(b"\r\n", pos) + 2
    while stored[end : end + 1] == b"\t":
        end = stored.index(b"\r\n", end) + 2
    return [stored[:rp_end], stored[rp_end:end]], stored[end:]


def delivered(srv: CourrielServer, address: str, original: bytes) -> tuple[list[bytes], bytes]:
    """The one stored copy of ``original`` (byte-exact after courriel's trace fields)."""
    matches = [m for m in inbox(srv, address) if split_trace(m)[1] == original]
    assert len(matches) == 1, f"{address}: {len(matches)} copies of the message"
    trace, _ = split_trace(matches[0])
    return trace, matches[0]


def unique(tag: str, sender: str = "alice@example.test") -> bytes:
    import uuid

    return (
        f"From: Someone <{sender}>\r\nTo: bob@example.test\r\nSubject: {tag}\r\n"
        f"Message-ID: <{uuid.uuid4()}@example.test>\r\n\r\nbody of {tag}\r\n"
    ).encode()


async def _queued(data: Path) -> list[tuple[QueuedMessage, bytes]]:
    store = await open_data_store(data)
    try:
        return [(m, await store.read_message(m.blob)) for m in await store.list_queue()]
    finally:
        await store.close()


def queued(srv: CourrielServer) -> list[tuple[QueuedMessage, bytes]]:
    """The outbound queue with each message's stored bytes."""
    return asyncio.run(_queued(srv.data))
