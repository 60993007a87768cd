"""A node whose LISTEN connection was lost misses nothing: on reconnecting, its change feed
publishes a FeedGap and every subscriber reads the store again.

Node B is paused (SIGSTOP) while its LISTEN backend is terminated and node A commits, so
those commits certainly happen while B listens to nothing; B then resumes, reconnects and
must announce them to its selected IMAP sessions (EXISTS during IDLE, EXPUNGE, FETCH).
In-process tests cover the store side: the FeedGap after a reconnection, with the user's
MODSEQ, and after a change_log row that is gone.
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import re
import signal
import smtplib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from imapclient import IMAPClient

from courriel.store.changes import Change, FeedGap, MessageAdded
from courriel.store.postgres.store import PostgresStore
from tests.harness import CourrielServer
from tests.nodes.cluster import running_nodes

USER, PASSWORD = "alice@example.test", "alice-pw"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CourrielServer]]:
    with running_nodes(tmp_path_factory.mktemp("gap")) as nodes:
        yield nodes


def _message(subject: str) -> str:
    return f"From: x@remote.example\r\nTo: {USER}\r\nSubject: {subject}\r\nMessage-ID: <{subject}@test>\r\n\r\nbody\r\n"


def _client(node: CourrielServer) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=node.port("imap"), ssl=False, timeout=30)
    client.login(USER, PASSWORD)
    return client


def _append(client: IMAPClient, mailbox: str, subject: str) -> int:
    reply = client.append(mailbox, _message(subject).encode())
    m = re.search(rb"APPENDUID \d+ (\d+)", reply)
    assert m, reply
    return int(m.group(1))


def _listen_backends(dsn: str, pid: int) -> list[int]:
    """The PostgreSQL backends LISTENing for the node process ``pid``: named by the listener
    after its node id, which starts with the pid in hex (feed.node_id). Its last query is
    LISTEN, or the MODSEQ read of a gap after a reconnection."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"courriel-listen {pid:x}%",),
        ).fetchall()
    return [int(r[0]) for r in rows]


@contextmanager
def listener_lost(node: CourrielServer) -> Iterator[None]:
    """Inside: ``node`` is paused and its LISTEN backend is gone, so what is committed
    meanwhile is never notified to it. At exit the node resumes (and must reconnect)."""
    assert node.proc is not None
    dsn = node.env["COURRIEL_STORE_DSN"]
    before = _listen_backends(dsn, node.proc.pid)
    assert len(before) == 1, before
    os.kill(node.proc.pid, signal.SIGSTOP)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT pg_terminate_backend(%s)", (before[0],)).fetchone() == (True,)
            deadline = time.monotonic() + 30
            while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (before[0],)).fetchone():
                assert time.monotonic() < deadline, "the LISTEN backend does not end"
                time.sleep(0.02)
        yield
    finally:
        os.kill(node.proc.pid, signal.SIGCONT)


def _wait_for(client: IMAPClient, done: Any, what: str) -> list[Any]:
    """NOOP until ``done(responses so far)``; the responses."""
    seen: list[Any] = []
    deadline = time.monotonic() + 60
    while not done(seen):
        assert time.monotonic() < deadline, (what, seen)
        seen += client.noop()[1]
        time.sleep(0.05)
    return seen


def test_idle_and_uid_sync_on_b_after_lost_listen(pair: list[CourrielServer]) -> None:
    a, b = pair
    idler, syncer = _client(b), _client(b)
    try:
        before = idler.select_folder("INBOX")[b"EXISTS"]
        syncer.select_folder("INBOX", readonly=True)
        last = max(syncer.search(["ALL"]) or [0])
        idler.idle()
        with listener_lost(b):
            for i in range(3):
                with smtplib.SMTP("127.0.0.1", a.port("smtp"), timeout=30) as smtp:
                    smtp.sendmail("x@remote.example", [USER], _message(f"gap-{i}"))
        seen: list[Any] = []
        deadline = time.monotonic() + 60
        try:
            while not any(r[1:2] == (b"EXISTS",) and r[0] == before + 3 for r in seen):
                assert time.monotonic() < deadline, seen
                seen += idler.idle_check(timeout=1)
        finally:
            idler.idle_done()
        # A client syncing by UID (RFC 9051 §2.3.1.1) on B gets the three, in order.
        _wait_for(syncer, lambda rs: any(r[1:2] == (b"EXISTS",) for r in rs), "EXISTS on the syncer")
        new = syncer.search(["UID", f"{last + 1}:*"])
        new = [u for u in new if u > last]
        assert len(new) == 3 and new == sorted(new)
        subjects = syncer.fetch(new, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        got = sorted(v[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip() for v in subjects.values())
        assert got == [b"Subject: gap-0", b"Subject: gap-1", b"Subject: gap-2"]
        # B reconnected: one LISTEN backend again.
        assert b.proc is not None and len(_listen_backends(b.env["COURRIEL_STORE_DSN"], b.proc.pid)) == 1
    finally:
        idler.logout()
        syncer.logout()


def test_expunge_and_flags_on_a_reach_b_after_lost_listen(pair: list[CourrielServer]) -> None:
    a, b = pair
    writer = _client(a)
    writer.create_folder("Gap2")
    uids = [_append(writer, "Gap2", f"g2-{i}") for i in range(3)]
    watcher = _client(b)
    try:
        assert watcher.select_folder("Gap2")[b"EXISTS"] == 3
        assert watcher.search(["ALL"]) == uids
        writer.select_folder("Gap2")
        with listener_lost(b):
            writer.add_flags([uids[0]], [b"\\Flagged"])
            writer.add_flags([uids[1]], [b"\\Deleted"])
            writer.expunge()
            fourth = _append(writer, "Gap2", "g2-3")
        seen = _wait_for(watcher, lambda rs: any(r[1:2] == (b"EXISTS",) for r in rs), "the resync on B")
        assert (2, b"EXPUNGE") in seen, seen
        fetches = [r for r in seen if r[1:2] == (b"FETCH",)]
        assert len(fetches) == 1 and fetches[0][0] == 1, seen
        assert b"\\Flagged" in dict(zip(fetches[0][2][::2], fetches[0][2][1::2], strict=True))[b"FLAGS"]
        assert (3, b"EXISTS") in seen, seen
        # The session's view is the store's now.
        flags = watcher.get_flags(watcher.search(["ALL"]))
        assert sorted(flags) == [uids[0], uids[2], fourth]
        assert b"\\Flagged" in flags[uids[0]] and b"\\Flagged" not in flags[uids[2]]
        # And a new session on B sees the same (the shared index was dropped, not kept stale).
        fresh = _client(b)
        try:
            fresh.select_folder("Gap2", readonly=True)
            assert fresh.search(["FLAGGED"]) == [uids[0]]
            assert fresh.search(["ALL"]) == [uids[0], uids[2], fourth]
        finally:
            fresh.logout()
    finally:
        watcher.logout()
        writer.logout()


# --- the store side, in this process -----------------------------------------------------


def _dsn() -> Iterator[str]:
    from tests.pg import cluster

    pg = cluster()
    dsn = pg.fresh_dsn("gap")
    try:
        yield dsn
    finally:
        pg.drop(dsn)


@pytest.fixture
def dsn() -> Iterator[str]:
    yield from _dsn()


def _into(queue: asyncio.Queue[Change]) -> Callable[[Sequence[Change]], None]:
    def put(items: Sequence[Change]) -> None:
        for c in items:
            queue.put_nowait(c)

    return put


async def _next_gap(queue: asyncio.Queue[Change]) -> FeedGap:
    while True:
        change = await asyncio.wait_for(queue.get(), 30)
        if isinstance(change, FeedGap):
            return change


def test_store_publishes_a_gap_after_reconnecting(dsn: str) -> None:
    async def main() -> None:
        store = await PostgresStore.open(dsn)
        other = await PostgresStore.open(dsn, listen=False)  # another node that commits
        try:
            await store.add_domain("example.test")
            user = await store.add_user(USER, PASSWORD)
            inbox = await other.get_mailbox(user.id, "INBOX")
            assert inbox is not None
            queue: asyncio.Queue[Change] = asyncio.Queue()
            every: list[Change] = []
            store.changes.subscribe(user.id, _into(queue))
            store.changes.subscribe(None, every.extend)
            first = store.listener.gaps
            backends = await asyncio.to_thread(_listen_backends, dsn, os.getpid())
            assert len(backends) == 1
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute("SELECT pg_terminate_backend(%s)", (backends[0],))
            gap = await _next_gap(queue)
            assert store.listener.gaps == first + 1
            again = await store.get_user_by_id(user.id)
            assert again is not None and gap.modseq == again.modseq > 0
            assert FeedGap(user.id, gap.modseq) in every and FeedGap(0, 0) in every
            # The feed works again after the gap: another node's append comes as a change.
            await other.append(inbox.id, b"Subject: after\r\n\r\nx\r\n")
            while not isinstance(change := await asyncio.wait_for(queue.get(), 30), MessageAdded):
                pass
            assert change.mailbox_id == inbox.id
        finally:
            await other.close()
            await store.close()

    asyncio.run(main())


def test_store_publishes_a_gap_for_a_lost_change_log_row(dsn: str) -> None:
    async def main() -> None:
        store = await PostgresStore.open(dsn)
        try:
            await store.add_domain("example.test")
            user = await store.add_user(USER, PASSWORD)
            queue: asyncio.Queue[Change] = asyncio.Queue()
            store.changes.subscribe(user.id, _into(queue))
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                # Another node's notification of a batch whose change_log row is gone.
                await conn.execute("SELECT pg_notify('courriel_changes', 'othernode#1 @987654321')")
            gap = await _next_gap(queue)
            assert gap.user_id == user.id and gap.modseq > 0
        finally:
            await store.close()

    asyncio.run(main())


def test_gap_reaches_every_subscriber_in_order(tmp_path: Path) -> None:
    """ChangeHub.gap: after the batches published before it, before those after it."""
    from courriel.store.changes import ChangeHub, FlagsChanged

    async def main() -> list[Change]:
        hub = ChangeHub()
        hub.bind(asyncio.get_running_loop())
        got: list[Change] = []
        hub.subscribe(7, got.extend)
        hub.subscribe(8, got.extend)
        hub.publish([FlagsChanged(7, 3, 1, 1, 0, frozenset())])
        hub.gap({7: 5})
        hub.publish([FlagsChanged(7, 6, 1, 1, 0, frozenset())])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return got

    got = asyncio.run(main())
    assert [type(c).__name__ for c in got] == ["FlagsChanged", "FeedGap", "FeedGap", "FlagsChanged"]
    assert FeedGap(7, 5) in got and FeedGap(8, 0) in got


def test_gap_during_fetch_defers_the_expunge(pair: list[CourrielServer]) -> None:
    """RFC 9051 §7.5.1: the resync may end a FETCH by sequence number with FETCH and
    EXISTS responses, but the EXPUNGE waits for a command that allows it."""
    a, b = pair
    writer = _client(a)
    writer.create_folder("Gap3")
    uids = [_append(writer, "Gap3", f"g3-{i}") for i in range(3)]
    watcher = imaplib.IMAP4("127.0.0.1", b.port("imap"), timeout=30)
    try:
        watcher.login(USER, PASSWORD)
        assert watcher.select("Gap3")[0] == "OK"
        writer.select_folder("Gap3")
        assert b.proc is not None
        with listener_lost(b):
            writer.add_flags([uids[1]], [b"\\Deleted"])
            writer.expunge()
        # B reconnected and read the MODSEQs of its gap (then publishes it at once).
        dsn, deadline = b.env["COURRIEL_STORE_DSN"], time.monotonic() + 60
        while not _gap_read(dsn, b.proc.pid):
            assert time.monotonic() < deadline, "node B does not reconnect"
            time.sleep(0.05)
        time.sleep(0.2)
        typ, data = watcher.fetch("1:3", "(UID)")
        assert typ == "OK"
        assert watcher.response("EXPUNGE")[1] == [None], "EXPUNGE during FETCH by number"
        expunged: list[bytes | None] = []
        deadline = time.monotonic() + 60
        while not expunged:
            assert time.monotonic() < deadline, "no EXPUNGE after the gap"
            watcher.noop()
            expunged = [x for x in watcher.response("EXPUNGE")[1] if x is not None]
        assert expunged == [b"2"]
        typ, data = watcher.uid("SEARCH", "ALL")
        assert typ == "OK" and data[0] is not None and list(map(int, data[0].split())) == [uids[0], uids[2]]
    finally:
        watcher.logout()
        writer.logout()


def _gap_read(dsn: str, pid: int) -> bool:
    """Whether the node's new LISTEN connection has read the MODSEQs of its gap."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE application_name LIKE %s", (f"courriel-listen {pid:x}%",)
        ).fetchone()
    return row is not None and str(row[0]).startswith("SELECT id, modseq")


def test_notify_status_after_gap(pair: list[CourrielServer]) -> None:
    """RFC 5465: a NOTIFY session on B gets a STATUS for a mailbox changed during the gap."""
    a, b = pair
    writer = _client(a)
    writer.create_folder("Gap4")
    imaplib.Commands.setdefault("NOTIFY", ("AUTH", "SELECTED"))
    notified = imaplib.IMAP4("127.0.0.1", b.port("imap"), timeout=30)
    try:
        notified.login(USER, PASSWORD)
        typ, _ = notified._simple_command("NOTIFY", "SET", "(personal (MessageNew MessageExpunge))")
        assert typ == "OK"
        notified.response("STATUS")  # forget what came so far
        with listener_lost(b):
            _append(writer, "Gap4", "g4-0")
        statuses: list[bytes] = []
        deadline = time.monotonic() + 60
        while not any(b"Gap4" in s and b"MESSAGES 1" in s for s in statuses):
            assert time.monotonic() < deadline, statuses
            notified.noop()
            statuses += [s for s in notified.response("STATUS")[1] if isinstance(s, bytes)]
    finally:
        notified.logout()
        writer.logout()


def test_push_state_after_gap() -> None:
    """JMAP push: a gap moves every type, to the user's MODSEQ read after it."""
    from courriel.jmap.push import changed_types

    assert changed_types([FeedGap(7, 42)]) == {"Mailbox": 42, "Email": 42, "Thread": 42, "EmailDelivery": 42}
