"""A live IMAP session (courriel.imap.session) on fuzzed client bytes, in process, against a
real SQLite store in the work directory: the session's own framing (lines, literals,
LITERAL+, APPEND continuations), the dispatch table, every handler, IDLE and COMPRESS.

Input layout: byte 0 picks where the session starts (bits 0-1: not authenticated,
authenticated, SELECT or EXAMINE of a mailbox with messages; bit 2: ENABLE CONDSTORE
QRESYNC; bit 3: ENABLE IMAP4rev2); the rest is what the client sends, then EOF.

Invariants: the session ends on EOF without an exception other than the connection ones
the listener expects; no handler fails (no log at ERROR, no [SERVERBUG]); the output is
made of untagged, continuation and tagged responses (literals counted), each tagged one
OK/NO/BAD for a tag the client sent, no more of them than command lines; the store's
invariants (Store.check) hold, checked every CHECK inputs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from courriel.auth import passwords
from courriel.auth.limits import AuthLimiter
from courriel.config import build_config
from courriel.imap.commands import TABLE
from courriel.imap.server import ImapSettings
from courriel.imap.session import Session
from courriel.net import Connection
from courriel.server import Context
from courriel.store import open_store
from courriel.store.api import Store
from fuzz.common import check, constants

USER = "fuzz@example.test"
PASSWORD = "fuzz-pw"
RESET = 2000  # inputs per store (a fresh data directory, so that the store stays small)
CHECK = 250  # Store.check() every CHECK inputs
PREFIXES = (
    b"",
    b"L LOGIN fuzz@example.test fuzz-pw\r\n",
    b"L LOGIN fuzz@example.test fuzz-pw\r\nS SELECT Fuzz\r\n",
    b"L LOGIN fuzz@example.test fuzz-pw\r\nS EXAMINE Fuzz\r\n",
)
MESSAGES = (
    b"From: Bob <bob@example.test>\r\nTo: fuzz@example.test\r\nSubject: one\r\nMessage-ID: <1@x>\r\n"
    b"Date: Sun, 29 Nov 2026 10:00:00 +0100\r\n\r\nHello.\r\n",
    b"From: =?utf-8?q?J=C3=A9r=C3=B4me?= <j@example.test>\r\nSubject: two\r\nIn-Reply-To: <1@x>\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nCaf\xc3\xa9\r\n--b\r\nContent-Type: application/pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\nJVBERi0=\r\n--b--\r\n",
    b"From: c@example.test\r\nSubject: three\r\nReferences: <1@x>\r\n\r\nBye.\r\n",
)
_TAGGED = re.compile(rb"([\x21-\x7e]+) (OK|NO|BAD)[ \r]")


class _Transport(asyncio.Transport):
    """Collects what the session writes."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def can_write_eof(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("192.0.2.7", 50000), "sockname": ("192.0.2.1", 143)}.get(name, default)


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


class _Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.errors = _Errors()
        logger = logging.getLogger("courriel")
        logger.setLevel(logging.WARNING)
        logger.addHandler(self.errors)
        self.store: Store | None = None
        self.settings: ImapSettings | None = None
        self.count = 0

    def reset(self) -> None:
        if self.store is not None:
            self.check_store()
            self.loop.run_until_complete(self.store.close())
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        raw: dict[str, Any] = {
            "imap": {"allow_plaintext_auth": True},
            "limits": {"max_auth_failures": 1_000_000_000, "max_message_size": 1 << 20},
        }
        cfg = build_config(raw, env={}, data_dir=self.root)
        self.store = store = self.loop.run_until_complete(open_store(cfg))
        ctx = Context(cfg, store)
        ctx.auth_limiter = AuthLimiter(max_failures=1_000_000_000, max_delay=0.0)
        self.settings = ImapSettings(ctx, starttls=False)
        self.loop.run_until_complete(self._populate(store))

    def check_store(self) -> None:
        assert self.store is not None
        problems = self.loop.run_until_complete(self.store.check())
        check(not problems, f"store invariants broken: {problems}")

    async def _populate(self, store: Store) -> None:
        await store.add_domain("example.test")
        user = await store.add_user(USER, PASSWORD, quota_bytes=8 << 20, quota_messages=3000)
        box = await store.create_mailbox(user.id, "Fuzz")
        for data in MESSAGES:
            await store.append(box.id, data)
        inbox = await store.get_mailbox(user.id, "INBOX")
        assert inbox is not None
        await store.append(inbox.id, MESSAGES[0])

    def run(self, stream: bytes) -> bytes:
        if self.count % RESET == 0:
            self.reset()
        elif self.count % CHECK == 0:
            self.check_store()
        self.count += 1
        assert self.settings is not None
        loop = self.loop
        reader = asyncio.StreamReader(limit=self.settings.max_line_length, loop=loop)
        transport = _Transport()
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        protocol.connection_made(transport)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        reader.feed_data(stream)
        reader.feed_eof()
        session = Session(Connection(reader, writer, "imap"), self.settings, TABLE)
        before = asyncio.all_tasks(loop)
        try:
            loop.run_until_complete(asyncio.wait_for(session.run(), 60))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # what the listener expects from a connection (courriel.net.Listener)
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))
        for task in asyncio.all_tasks(loop) - before:
            task.cancel()
        return bytes(transport.out)


_ENV: _Env | None = None


def _data_dir(workdir: Path) -> Path:
    """On tmpfs when there is one: the store's fsyncs are then nearly free. Directories left
    by earlier runs (libFuzzer exits without cleaning up) are removed."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return workdir / "data"
    for old in shm.glob("courriel-fuzz-session-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    return shm / f"courriel-fuzz-session-{os.getpid()}"


def setup(workdir: Path) -> None:
    global _ENV
    # The password hash's cost is in the hash: a cheap one keeps fuzzed LOGINs fast.
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    _ENV = _Env(_data_dir(workdir))


def _check_output(stream: bytes, out: bytes) -> None:
    check(b"[SERVERBUG]" not in out, "a handler failed: [SERVERBUG]")
    check(out.startswith(b"* OK [CAPABILITY "), "no greeting")
    sent = b"\n" + stream
    tagged = 0
    pos = 0
    while pos < len(out):
        end = out.find(b"\r\n", pos)
        check(end >= 0, f"response without CRLF: {out[pos : pos + 80]!r}")
        line = out[pos : end + 2]
        start = pos
        # A line ending in a literal announcement continues after the literal.
        while True:
            m = re.search(rb"~?\{(\d+)\}\r\n\Z", line)
            if m is None:
                break
            lit_end = end + 2 + int(m.group(1))
            check(lit_end <= len(out), "literal longer than the output")
            end = out.find(b"\r\n", lit_end)
            check(end >= 0, "no CRLF after a literal")
            line = out[lit_end : end + 2]
        pos = end + 2
        head = out[start : start + 2]
        if head in (b"* ", b"+ ", b"+\r"):
            continue
        m = _TAGGED.match(out, start)
        check(m is not None, f"malformed response {out[start : start + 80]!r}")
        assert m is not None
        check(
            b"\n" + m.group(1) + b" " in sent,
            f"tagged response for a tag never sent: {m.group(1)!r}",
        )
        tagged += 1
        if b" OK DEFLATE active" in out[start:pos]:
            return  # the rest is compressed
    check(tagged <= sent.count(b"\n"), "more tagged responses than command lines")


def _prefix(mode: int) -> bytes:
    """The commands that bring the session to the state byte 0 asks for."""
    lines = PREFIXES[mode & 3].splitlines(keepends=True)
    if lines:  # after LOGIN: the ENABLEs asked for, then SELECT/EXAMINE
        if mode & 8:
            lines.insert(1, b"R ENABLE IMAP4rev2\r\n")
        if mode & 4:
            lines.insert(1, b"E ENABLE CONDSTORE QRESYNC\r\n")
    return b"".join(lines)


def test_one(data: bytes) -> None:
    if not data:
        return
    assert _ENV is not None, "setup() first"
    mode = data[0]
    stream = _prefix(mode) + data[1:]
    _ENV.errors.records.clear()
    out = _ENV.run(stream)
    check(not _ENV.errors.records, f"errors logged: {_ENV.errors.records[:3]}")
    _check_output(stream, out)
    _count(out)


#: How many inputs reached each state or continuation, printed now and then (the driver
#: shows the last line): evidence that every state is exercised.
STATES = {
    "not-authenticated": b"* OK [CAPABILITY",
    "authenticated": b"] logged in\r\n",
    "selected": b"] SELECT completed",
    "examined": b"] EXAMINE completed",
    "idle": b"+ idling\r\n",
    "literal": b"+ Ready for literal data\r\n",
    "appended": b"] APPEND completed",
    "compress": b" OK DEFLATE active",
}
_SEEN = dict.fromkeys(STATES, 0)


def _count(out: bytes) -> None:
    for name, marker in STATES.items():
        if marker in out:
            _SEEN[name] += 1
    assert _ENV is not None
    n = _ENV.count
    if n % 10_000 == 0 or (n >= 64 and n & (n - 1) == 0):
        print(
            "fuzz-stats: inputs reaching " + ", ".join(f"{k} {v}" for k, v in _SEEN.items()),
            flush=True,
        )


def seeds() -> list[bytes]:
    raw = constants("tests/imap/test_parser.py", bytes)
    cmds = [r for r in raw if r.endswith(b"\r\n") and b" " in r and b"LOGOUT" not in r]
    session = [
        b'a CAPABILITY\r\nb NOOP\r\nc LOGIN fuzz@example.test fuzz-pw\r\nd LIST "" *\r\n',
        b"a AUTHENTICATE PLAIN AGZ1enpAZXhhbXBsZS50ZXN0AGZ1enotcHc=\r\nb SELECT INBOX\r\n",
        b"a AUTHENTICATE SCRAM-SHA-256\r\nbiwsbj1mdXp6QGV4YW1wbGUudGVzdCxyPWFiY2Q=\r\n*\r\n",
        b"a LOGIN {17}\r\nfuzz@example.test {7+}\r\nfuzz-pw\r\n",
        b"a FETCH 1:* (FLAGS UID ENVELOPE BODYSTRUCTURE BODY.PEEK[1.MIME] BINARY[2] PREVIEW)\r\n",
        b"a UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.10> RFC822.SIZE MODSEQ) (CHANGEDSINCE 1)\r\n",
        b"a STORE 1:2 +FLAGS (\\Seen $Work)\r\nb UID STORE 3 -FLAGS.SILENT (\\Seen)\r\nc EXPUNGE\r\n",
        b"a SEARCH OR SUBJECT two BODY caf NOT DELETED\r\nb UID SORT (REVERSE ARRIVAL) UTF-8 ALL\r\n",
        b"a THREAD REFERENCES UTF-8 ALL\r\nb UID SEARCH RETURN (SAVE) 1:2\r\nc FETCH $ FLAGS\r\n",
        b"a IDLE\r\nDONE\r\nb NOOP\r\n",
        b"a APPEND Fuzz (\\Flagged) {23}\r\nSubject: x\r\n\r\nappended\r\nb APPEND INBOX {5+}\r\nhello {3+}\r\nabc\r\n",
        b"a COPY 1:2 INBOX\r\nb MOVE 1 INBOX\r\nc UID EXPUNGE 1:*\r\nd CLOSE\r\n",
        b'a CREATE x/y\r\nb RENAME x/y x/z\r\nc DELETE x/z\r\nd SUBSCRIBE x\r\ne LSUB "" *\r\nf STATUS Fuzz (MESSAGES UIDNEXT SIZE HIGHESTMODSEQ)\r\n',
        b"a GETQUOTAROOT INBOX\r\nb SETMETADATA INBOX (/private/comment {3+}\r\nabc)\r\nc GETMETADATA INBOX /private/comment\r\n",
        b"a NOTIFY SET (SELECTED (MessageNew MessageExpunge)) (PERSONAL (MailboxName))\r\nb NOOP\r\n",
        b"a COMPRESS DEFLATE\r\n\xcb\x05\x00",
        b'a UNSELECT\r\nb ENABLE UTF8=ACCEPT\r\nc SELECT Fuzz (CONDSTORE)\r\nd NAMESPACE\r\ne ID ("name" "x")\r\n',
        b"a SELECT Fuzz (QRESYNC (1 1 1:10))\r\nb LOGOUT\r\n",
        b"a STARTTLS\r\nb CHECK\r\n",
    ]
    out = [bytes([mode]) + s for mode in (1, 2, 6, 11) for s in session]
    out += [b"\x00" + s for s in session[:4]]
    out += [bytes([2 + (i % 2)]) + c for i, c in enumerate(cmds)]
    return out
