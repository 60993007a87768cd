"""MIME bombs delivered over SMTP (and LMTP): 1,000 nested multiparts, 100,000 parts, a
10 MB header. Each is accepted (all are under limits.max_message_size, 16 MB here) and
parsed once at delivery; the body structure is cut at limits.max_mime_depth (100) levels;
FETCH BODYSTRUCTURE works and its size is proportional to the message; another client's
NOOPs are answered while the server parses and renders.
"""

from __future__ import annotations

import imaplib
import smtplib
import threading
from collections.abc import Callable

import pytest

from courriel.mime.parse import DEFAULT_MAX_PARTS
from tests.harness import CourrielServer
from tests.hostile.conftest import GOOD, RSS_GROWTH_KB, SQLITE_CACHE_KB, USERS, Guard, rss_kb

MAX_DEPTH = 100  # limits.max_mime_depth's default


def nested(levels: int) -> bytes:
    out = [b"From: bomb@remote.test\r\nTo: good@example.test\r\nSubject: nested\r\nMIME-Version: 1.0\r\n"]
    for i in range(levels):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\ncore\r\n")
    out.extend(b"--b%d--\r\n" % i for i in reversed(range(levels)))
    return b"".join(out)


def many_parts(n: int) -> bytes:
    out = [
        b"From: bomb@remote.test\r\nTo: good@example.test\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
    ]
    out.extend(b"--x\r\n\r\np%d\r\n" % i for i in range(n))
    out.append(b"--x--\r\n")
    return b"".join(out)


def big_header(size: int) -> bytes:
    folded = b"\r\n ".join([b"h" * 70] * (size // 73))
    return b"From: bomb@remote.test\r\nTo: good@example.test\r\nSubject: header\r\nX-Big: " + folded + b"\r\n\r\nbody\r\n"


BOMBS: dict[str, Callable[[], bytes]] = {
    "nested-1000": lambda: nested(1000),
    "parts-100000": lambda: many_parts(100_000),
    "header-10MB": lambda: big_header(10 * 1024 * 1024),
}


@pytest.fixture(scope="module")
def srv(shared: CourrielServer) -> CourrielServer:
    return shared


@pytest.fixture(scope="module")
def guard(srv: CourrielServer) -> Guard:
    return Guard(srv, growth_kb=RSS_GROWTH_KB + SQLITE_CACHE_KB)


class Noops:
    """Another client sending NOOPs (alice, over IMAP) until stopped: all must be answered."""

    def __init__(self, srv: CourrielServer) -> None:
        self.imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=120)
        self.imap.login("alice@example.test", USERS["alice@example.test"])
        self.imap.select("INBOX", readonly=True)
        self.answered = 0
        self.failed: list[object] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                typ, _ = self.imap.noop()
            except Exception as exc:  # reported by the test
                self.failed.append(exc)
                return
            if typ == "OK":
                self.answered += 1
            else:
                self.failed.append(typ)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(120)
        self.imap.logout()
        assert not self.failed, self.failed
        return self.answered


def fetch_new(srv: CourrielServer, subject: str, items: str) -> bytes:
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=300)
    try:
        imap.login(GOOD, USERS[GOOD])
        imap.select("INBOX", readonly=True)
        typ, found = imap.uid("SEARCH", "HEADER", "Subject", subject)
        assert typ == "OK" and found[0], subject
        uid = found[0].split()[-1]
        typ, data = imap.uid("FETCH", uid, f"({items})")
        assert typ == "OK", data
        return b"".join(part if isinstance(part, bytes) else b"".join(part) for part in data if part)
    finally:
        imap.logout()


@pytest.mark.parametrize("name", list(BOMBS))
def test_mime_bomb_over_smtp(srv: CourrielServer, guard: Guard, name: str) -> None:
    message = BOMBS[name]()
    subject = message.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode()
    with guard.attack(allow=frozenset({(GOOD, "INBOX")})):
        noops = Noops(srv)
        with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=300) as smtp:
            assert smtp.sendmail("bomb@remote.test", [GOOD], message) == {}
        structure = fetch_new(srv, subject, "BODYSTRUCTURE ENVELOPE RFC822.SIZE")
        assert noops.finish() > 0
        guard.check_memory()
    assert b"RFC822.SIZE" in structure
    # Rendered once from what delivery stored: bounded by the message and the depth limit.
    assert len(structure) < 10 * len(message) + 4096
    depth = max_paren_depth(structure)
    assert depth <= MAX_DEPTH + 10, depth
    if name == "parts-100000":
        # Parts beyond the parser's limit (mime.parse.DEFAULT_MAX_PARTS) stay inside the
        # last one: the structure is bounded, the content still all there.
        parts = structure.count(b'("text" "plain"')
        assert 0 < parts <= DEFAULT_MAX_PARTS + 1, parts
        assert b"p99999" in fetch_new(srv, subject, "BODY.PEEK[TEXT]")
    if name == "nested-1000":
        assert depth >= MAX_DEPTH  # cut at the limit, not flattened away


def max_paren_depth(data: bytes) -> int:
    depth = best = 0
    quoted = False
    for byte in data:
        if byte == 0x22:
            quoted = not quoted
        elif not quoted and byte == 0x28:
            depth += 1
            best = max(best, depth)
        elif not quoted and byte == 0x29:
            depth -= 1
    return best


def test_nested_bomb_over_lmtp(srv: CourrielServer, guard: Guard) -> None:
    message = nested(1000).replace(b"Subject: nested", b"Subject: nested-lmtp")
    with guard.attack(allow=frozenset({(GOOD, "INBOX")})):
        with smtplib.LMTP("127.0.0.1", srv.port("lmtp"), timeout=300) as lmtp:
            assert lmtp.sendmail("bomb@remote.test", [GOOD], message) == {}
        assert max_paren_depth(fetch_new(srv, "nested-lmtp", "BODYSTRUCTURE")) <= MAX_DEPTH + 10


def test_repeated_bombs_do_not_accumulate(srv: CourrielServer, guard: Guard) -> None:
    """The same 10 MB header twice more: memory stays where the first one left it
    (caches full, nothing kept per message)."""
    with guard.attack(allow=frozenset({(GOOD, "INBOX")})):
        after: list[int] = []
        for i in range(2):
            message = big_header(10 * 1024 * 1024).replace(b"Subject: header", b"Subject: again-%d" % i)
            with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=300) as smtp:
                assert smtp.sendmail("bomb@remote.test", [GOOD], message) == {}
            fetch_new(srv, f"again-{i}", "ENVELOPE RFC822.SIZE")
            after.append(rss_kb(srv))
        assert after[-1] - after[0] < 32 * 1024, after
