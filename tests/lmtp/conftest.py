"""LMTP test fixtures: one courriel server (lmtp on TCP and a Unix socket, lookup, imap) for
the package, and reading delivered mail back over IMAP, byte for byte."""

from __future__ import annotations

import asyncio
import imaplib
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from courriel.store.sqlite.store import SQLiteStore
from tests.harness import CourrielServer, courriel_cmd
from tests.lmtp.mtas import private_dir

USERS = {
    "alice@example.test": "alice-pw",
    "bob@example.test": "bob-pw",
    "carol@example.test": "carol-pw",
    "full@example.test": "full-pw",
}
MAX_SIZE = 200_000
ENV = {"COURRIEL_LIMITS_MAX_MESSAGE_SIZE": str(MAX_SIZE), "COURRIEL_SMTP_MAX_RECIPIENTS": "10"}


#: carol's active Sieve script: delivery over LMTP goes through the same MDA path as SMTP.
SIEVE = """require ["ereject"];
if header :contains "subject" "sieve-refuse" { ereject "Carol does not want this"; }
"""


async def _sieve(data: Path, address: str, script: str) -> None:
    store = await SQLiteStore.open(data / "courriel.db", data / "blobs")
    try:
        user = await store.get_user(address)
        assert user is not None
        await store.put_sieve_script(user.id, "main", script)
        await store.set_active_sieve_script(user.id, "main")
    finally:
        await store.close()


class Lmtp(CourrielServer):
    socket_path: Path


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lmtp]:
    # The socket's folder must be reachable by the MTAs' own users (pytest's tree is 0700).
    sockdir = private_dir("courriel-lmtp-")
    root = tmp_path_factory.mktemp("lmtp")
    env = {**ENV, "COURRIEL_LMTP_SOCKET": str(sockdir / "lmtp.sock")}
    srv = Lmtp(
        root, users=dict(USERS), only=("lmtp", "lookup", "imap"), env=env, plaintext_auth=True
    )
    srv.socket_path = sockdir / "lmtp.sock"
    courriel_cmd(
        "init",
        str(srv.data),
        "--domain",
        "example.test",
        "--hostname",
        "mail.example.test",
        env=srv.env,
    )
    for address, password in USERS.items():
        srv.cli("user", "add", address, "--password-stdin", stdin=password + "\n")
    srv.cli("user", "quota", "full@example.test", "--bytes", "3000")
    srv.cli("domain", "add", "other.test")
    srv.cli("alias", "add", "team@example.test", "alice@example.test", "bob@example.test")
    srv.cli("alias", "add", "@other.test", "carol@example.test")
    srv.cli("alias", "add", "loop1@example.test", "loop2@example.test")
    srv.cli("alias", "add", "loop2@example.test", "loop1@example.test")
    asyncio.run(_sieve(srv.data, "carol@example.test", SIEVE))
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(sockdir, ignore_errors=True)


def imap_messages(srv: CourrielServer, address: str) -> list[bytes]:
    """Every message of the user's INBOX, fetched over IMAP (BODY.PEEK[], exact bytes)."""
    with imaplib.IMAP4("127.0.0.1", srv.port("imap")) as c:
        c.login(address, USERS[address])
        c.select("INBOX", readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        return [item[1] for item in data if isinstance(item, tuple)]


def wait_message(
    srv: CourrielServer,
    address: str,
    marker: bytes,
    log: Callable[[], str] = str,
    timeout: float = 60,
) -> bytes:
    """The one message of ``address`` containing ``marker`` (waits for the MTA's delivery)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in imap_messages(srv, address) if marker in m]
        if found:
            assert len(found) == 1, f"{len(found)} copies of {marker!r}"
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{marker!r} not delivered to {address}; MTA log:\n{log()}")
        time.sleep(0.2)


def message(tag: str, body: bytes = b"Hello.\r\n") -> tuple[bytes, bytes]:
    """A message with a unique marker in its Subject; returns (message, marker)."""
    marker = f"{tag}-{secrets.token_hex(6)}".encode()
    head = (
        b"From: Sender <sender@remote.test>\r\nTo: alice@example.test\r\nSubject: "
        + marker
        + b"\r\n"
        b"Date: Sun, 29 Nov 2026 00:00:00 +0000\r\nMessage-ID: <"
        + marker
        + b"@remote.test>\r\n\r\n"
    )
    return head + body, marker


TRACE_FIELDS = (b"return-path:", b"received:")


def split_trace(stored: bytes, original: bytes) -> list[bytes]:
    """Check that ``stored`` is trace fields followed by ``original`` byte for byte; return
    the trace fields (each with its folded lines)."""
    assert stored.endswith(original), stored
    head = stored[: len(stored) - len(original)]
    fields: list[bytes] = []
    for line in head.split(b"\r\n")[:-1]:
        if line[:1] in (b" ", b"\t"):
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    assert head.endswith(b"\r\n") or not head
    assert all(f.lower().startswith(TRACE_FIELDS) for f in fields), fields
    return fields
