"""The hostile-input suite's tools: one real ``courriel serve`` per module, raw sockets for
the attacks, and the three checks every attack ends with (see :class:`Guard`):

1. a separate well-behaved client (smtplib, imaplib, poplib) still logs in and works;
2. the server's resident memory stays bounded (VmRSS of the ``serve`` process);
3. no stored message changed (every mailbox's UIDs, sizes, flags, MODSEQs and content ids).

The attacker's own replies are asserted by each test.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import poplib
import resource
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from courriel.store.sqlite.store import SQLiteStore
from tests.harness import CourrielServer

#: The victims (their mail must never change) and the well-behaved client's own account.
USERS = {
    "alice@example.test": "alice-pw",
    "bob@example.test": "bob-pw",
    "good@example.test": "good-pw",
}
#: Where the well-behaved client delivers: the one mailbox allowed to grow.
GOOD = "good@example.test"
SERVICES = ("smtp", "submission", "imap", "pop3", "managesieve", "lmtp")
#: The server most modules share (test_slowloris has its own, with short timeouts): limits
#: that the attacks reach quickly and that stay out of the way of the well-behaved client,
#: which connects from 127.0.0.1 while attackers use 127.0.0.2 and up.
MAX_AUTH_FAILURES = 3
SHARED_ENV = {
    "COURRIEL_LIMITS_MAX_AUTH_FAILURES": str(MAX_AUTH_FAILURES),
    "COURRIEL_SMTP_MAX_AUTH_ATTEMPTS": "10",
    "COURRIEL_LIMITS_MAX_CONNECTIONS": "5000",
    # 5,000 idle connections are opened one after the other before being checked.
    "COURRIEL_IMAP_LOGIN_TIMEOUT": "900",
}

#: Resident memory bounds for the server process. An idle server with every listener is
#: ~60-80 MB here; the attacks read at most a 64 KB block per connection at a time, a
#: message is bounded by limits.max_message_size (set to 16 MB in this suite: a 10 MB header
#: is parsed at ~4 times its size), so 300 MB in total leaves room for the Python heap the
#: biggest legitimate message needs and nothing for an attack that would buffer what it is sent.
RSS_LIMIT_KB = 300 * 1024
#: After an attack is over, RSS may stay above the module's baseline by this much (CPython
#: and glibc keep freed arenas; a leak per attack connection or per byte sent would show far
#: beyond: the attacks send 10 MB and more each).
RSS_GROWTH_KB = 64 * 1024
#: SQLite's page cache: 32 MB (db.py's cache_size) for the writer and each of 4 readers,
#: filled by big messages' header and text columns; it stays full by design.
SQLITE_CACHE_KB = 5 * 32 * 1024
#: Password checks: argon2id with 19 MiB each (auth/passwords.py), at most one per thread of
#: the default executor (min(32, CPUs + 4)) at a time; glibc keeps those blocks for reuse.
ARGON2_KB = 19 * 1024 * min(32, (os.cpu_count() or 1) + 4)


def start_server(root: Path, env: dict[str, str] | None = None, only: tuple[str, ...] = SERVICES) -> CourrielServer:
    base = {
        "COURRIEL_LIMITS_MAX_MESSAGE_SIZE": str(16 * 1024 * 1024),
        # glibc raises its mmap threshold after the first large free and then keeps big
        # blocks in the heap, so RSS would show what the allocator keeps, not what is live.
        # A fixed threshold returns every block of 128 KB and more to the system when freed:
        # RSS after an attack then measures memory still in use (a leak), not history.
        "MALLOC_MMAP_THRESHOLD_": "131072",
    }
    srv = CourrielServer(root, users=dict(USERS), only=only, env={**base, **(env or {})}, plaintext_auth=True)
    srv.env["COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH"] = "true"
    srv.start()
    if "smtp" in only:
        # Something to protect: two messages in every victim's INBOX.
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as s:
            for address in USERS:
                if address != GOOD:
                    for n in (1, 2):
                        s.sendmail("sender@remote.test", [address], message(f"victim {n}", to=address))
    return srv


def raise_nofile() -> int:
    """Raise this process's open-file limit to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kb(srv: CourrielServer) -> int:
    assert srv.proc is not None
    with open(f"/proc/{srv.proc.pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def message(subject: str, to: str = GOOD, body: str = "hello\r\n") -> bytes:
    return (
        f"From: Good <{GOOD}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4()}@example.test>\r\n\r\n{body}"
    ).encode()


@pytest.fixture(scope="package")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    raise_nofile()  # inherited by the server too
    server = start_server(tmp_path_factory.mktemp("hostile"), env=SHARED_ENV)
    # For test_open_relay: a domain whose catch-all takes every name.
    server.cli("domain", "add", "catchall.test")
    server.cli("alias", "add", "@catchall.test", GOOD)
    try:
        yield server
    finally:
        server.stop()


# --- the store as it is on disk --------------------------------------------------------------

Snapshot = dict[tuple[str, str], list[tuple[int, int, int, int, frozenset[str], int]]]


async def _snapshot(data: Path, skip: tuple[str, str] | None) -> Snapshot:
    store = await SQLiteStore.open(data / "courriel.db", data / "blobs")
    try:
        out: Snapshot = {}
        for address in USERS:
            user = await store.get_user(address)
            assert user is not None
            for box in await store.list_mailboxes(user.id):
                if (address, box.name) == skip:
                    continue
                infos = await store.list_messages(box.id)
                out[(address, box.name)] = [
                    (i.uid, i.modseq, int(i.flags), i.size, i.keywords, i.content_id) for i in infos
                ]
        return out
    finally:
        await store.close()


def snapshot(srv: CourrielServer) -> Snapshot:
    """Every message of every victim (not the well-behaved client's INBOX), as stored."""
    return asyncio.run(_snapshot(srv.data, (GOOD, "INBOX")))


async def _inbox(data: Path, address: str) -> list[bytes]:
    store = await SQLiteStore.open(data / "courriel.db", data / "blobs")
    try:
        user = await store.get_user(address)
        assert user is not None
        box = await store.get_mailbox(user.id, "INBOX")
        assert box is not None
        records = await store.get_records(box.id, [i.uid for i in await store.list_messages(box.id)])
        return [await store.read_message(r.blob) for r in records]
    finally:
        await store.close()


def inbox(srv: CourrielServer, address: str) -> list[bytes]:
    return asyncio.run(_inbox(srv.data, address))


async def _queue_size(data: Path) -> int:
    store = await SQLiteStore.open(data / "courriel.db", data / "blobs")
    try:
        return len(await store.list_queue())
    finally:
        await store.close()


def queue_size(srv: CourrielServer) -> int:
    return asyncio.run(_queue_size(srv.data))


# --- the well-behaved client ----------------------------------------------------------------


def good_smtp(srv: CourrielServer, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as s:
        s.ehlo("good.test")
        refused = s.sendmail("someone@remote.test", [GOOD], message(subject))
        assert refused == {}


def good_imap(srv: CourrielServer, subject: str | None = None) -> None:
    """Log in, EXAMINE (read-only: \\Recent and \\Seen stay untouched) and read; with
    ``subject``, the well-behaved SMTP client's message must be there."""
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=60)
    try:
        assert imap.login(GOOD, USERS[GOOD])[0] == "OK"
        typ, _ = imap.select("INBOX", readonly=True)
        assert typ == "OK"
        if subject is not None:
            typ, found = imap.search(None, "SUBJECT", f'"{subject}"')
            assert typ == "OK" and found[0], f"{subject} not delivered"
            typ, fetched = imap.fetch(found[0].split()[-1], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            first = fetched[0]
            assert typ == "OK" and isinstance(first, tuple) and subject.encode() in first[1]
        assert imap.noop()[0] == "OK"
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            imap.logout()


def good_pop3(srv: CourrielServer) -> None:
    pop = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=60)
    try:
        pop.user(GOOD)
        assert pop.pass_(USERS[GOOD]).startswith(b"+OK")
        count, _ = pop.stat()
        if count:
            assert pop.retr(count)[0].startswith(b"+OK")
    finally:
        with contextlib.suppress(OSError, poplib.error_proto):
            pop.quit()


_served = 0


def serve_others(srv: CourrielServer) -> None:
    """A well-behaved user delivers over SMTP, then reads over IMAP and POP3."""
    global _served
    _served += 1
    subject = f"good-{_served}-{uuid.uuid4().hex[:8]}"
    good_smtp(srv, subject)
    good_imap(srv, subject)
    good_pop3(srv)


class Guard:
    """Wrap an attack: ``with guard.attack(): ...``; afterwards the well-behaved client is
    served, memory is bounded and no stored message changed."""

    def __init__(self, srv: CourrielServer, growth_kb: int = RSS_GROWTH_KB) -> None:
        self.srv = srv
        self.growth_kb = growth_kb
        serve_others(srv)  # warm up every code path once before the baseline
        self.baseline_kb = rss_kb(srv)
        self.peak_kb = self.baseline_kb

    def check_memory(self) -> int:
        now = rss_kb(self.srv)
        self.peak_kb = max(self.peak_kb, now)
        assert now < RSS_LIMIT_KB, f"server RSS {now // 1024} MB"
        assert now - self.baseline_kb < self.growth_kb, f"server RSS grew {(now - self.baseline_kb) // 1024} MB"
        return now

    @contextlib.contextmanager
    def attack(self, allow: frozenset[tuple[str, str]] = frozenset()) -> Iterator[None]:
        """``allow``: mailboxes the attack may add messages to (a MIME bomb accepted)."""
        before = snapshot(self.srv)
        yield
        assert self.srv.proc is not None and self.srv.proc.poll() is None, "the server died"
        serve_others(self.srv)
        after = snapshot(self.srv)
        for key, messages in before.items():
            if key in allow:
                assert after[key][: len(messages)] == messages, key
            else:
                assert after.get(key) == messages, f"{key} changed"
        assert set(after) == set(before), "mailboxes created or deleted"
        self.check_memory()


# --- raw connections -------------------------------------------------------------------------


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """A byte-level client: send these bytes, read lines back."""

    def __init__(self, port: int, source: str | None = None, timeout: float = 60, rcvbuf: int | None = None) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source is not None:
            sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        self.port = port
        self.sock: socket.socket = sock
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        """One line with its CRLF; b"" at EOF."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                out, self.buf = self.buf, b""
                return out
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def smtp_reply(self) -> bytes:
        out = b""
        while True:
            line = self.line()
            out += line
            if not line or line[3:4] != b"-":
                return out

    def cmd(self, data: bytes) -> bytes:
        self.send(data)
        return self.smtp_reply()

    def until_tagged(self, tag: bytes) -> bytes:
        """IMAP: everything up to and including the tagged response (or EOF)."""
        out = b""
        while True:
            line = self.line()
            out += line
            if not line or line.startswith(tag + b" "):
                return out

    def closed(self, timeout: float = 60) -> bool:
        """True once the server closed the connection (reading whatever it still sends)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def established(self) -> bool:
        """Whether the kernel still has this connection established (read from
        /proc/net/tcp, so that nothing is read from it: a reader would keep a flow-controlled
        server busy, which is exactly what a client that never reads does not do)."""
        local = self.sock.getsockname()[1]
        with open("/proc/net/tcp") as fh:
            for row in fh.readlines()[1:]:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == local and int(fields[2].rsplit(":", 1)[1], 16) == self.port:
                    return fields[3] == "01"
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def wait_for(predicate: object, what: str, limit: float = 60) -> None:
    """Poll ``predicate`` (a callable) until true; bounded, not a timing assertion."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")
