"""What only the PostgreSQL backend does: several nodes on one database (changes over
LISTEN/NOTIFY, UIDs under concurrent appends, the queue claimed by one node at a time),
message files in a shared directory, and text PostgreSQL cannot hold."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from courriel.store.api import (
    INBOX,
    BodyContains,
    Flag,
    FlagMode,
    HeaderContains,
    QueueRecipient,
    RecipientUpdate,
)
from courriel.store.changes import Change, FlagsChanged, MessageAdded, MessagesExpunged
from tests.conftest import BACKENDS, message

pytestmark = pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL not in COURRIEL_TEST_BACKENDS")


@pytest.fixture
def dsn() -> Iterator[str]:
    from tests.pg import cluster

    pg = cluster()
    value = pg.fresh_dsn()
    yield value
    pg.drop(value)


async def _wait_for(pred: object, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


def test_changes_cross_nodes(dsn: str) -> None:
    from courriel.store.postgres.store import PostgresStore

    async def main() -> None:
        a = await PostgresStore.open(dsn)
        b = await PostgresStore.open(dsn)
        try:
            await a.add_domain("example.test")
            user = await a.add_user("u@example.test", "pw")
            inbox = await a.get_mailbox(user.id, INBOX)
            assert inbox is not None
            seen_b: list[Change] = []
            seen_a: list[Change] = []
            b.changes.subscribe(user.id, seen_b.extend)
            a.changes.subscribe(user.id, seen_a.extend)
            added = await a.append(inbox.id, message("cross"))
            await b.store_flags(inbox.id, [added.uid], FlagMode.ADD, Flag.DELETED)
            # a batch far above NOTIFY's 8000-byte payload travels by reference (change_log)
            many = await a.append_many(inbox.id, [_new(i) for i in range(400)])
            await a.store_flags(inbox.id, [m.uid for m in many], FlagMode.ADD, Flag.SEEN)
            await _wait_for(lambda: sum(isinstance(c, FlagsChanged) for c in seen_b) == 401)
            await _wait_for(lambda: sum(isinstance(c, FlagsChanged) for c in seen_a) == 401)
            # (the user's mailboxes, created before the subscriptions, may show up too)
            msgs_a = [c for c in seen_a if isinstance(c, MessageAdded | FlagsChanged)]
            msgs_b = [c for c in seen_b if isinstance(c, MessageAdded | FlagsChanged)]
            assert [type(c) for c in msgs_b[:2]] == [MessageAdded, FlagsChanged]
            assert isinstance(msgs_b[0], MessageAdded) and msgs_b[0].uid == added.uid
            # each node saw every change exactly once, its own ones (local) and the other's (NOTIFY)
            assert len(msgs_a) == len(msgs_b) == 1 + 1 + 400 + 400
            assert [c.modseq for c in msgs_b] == sorted(c.modseq for c in msgs_b)
            assert b.listener.received >= 2
            await a.expunge(inbox.id)
            await _wait_for(lambda: any(isinstance(c, MessagesExpunged) for c in seen_b))
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def _new(i: int) -> object:
    from courriel.store.api import NewMessage

    return NewMessage(message(f"bulk {i}"))


def test_concurrent_appends_from_two_nodes_keep_uids_in_commit_order(dsn: str) -> None:
    """UIDs are unique and ascending, and a reader never sees a UID appear below one it has
    already seen (the mailbox row lock orders commits like UIDs)."""
    from courriel.store.postgres.store import PostgresStore

    async def main() -> None:
        a = await PostgresStore.open(dsn)
        b = await PostgresStore.open(dsn)
        try:
            await a.add_domain("example.test")
            user = await a.add_user("u@example.test", "pw")
            inbox = await a.get_mailbox(user.id, INBOX)
            assert inbox is not None
            done = False
            violations: list[str] = []

            async def reader() -> None:
                seen: set[int] = set()
                while not done:
                    uids = {m.uid for m in await b.list_messages(inbox.id)}
                    top = max(seen, default=0)
                    late = sorted(u for u in uids - seen if u < top)
                    if late:
                        violations.append(f"UIDs {late} appeared after {top}")
                    seen |= uids

            async def writer(store: PostgresStore, tag: str) -> list[int]:
                out = []
                for i in range(25):
                    out.append((await store.append(inbox.id, message(f"{tag} {i}"))).uid)
                return out

            watch = asyncio.create_task(reader())
            results = await asyncio.gather(*(writer(s, f"{n}{k}") for n, s in (("a", a), ("b", b)) for k in range(4)))
            done = True
            await watch
            every = [u for r in results for u in r]
            assert len(every) == len(set(every)) == 200
            assert all(r == sorted(r) for r in results)
            assert sorted(every) == list(range(1, 201))
            assert violations == []
            assert await a.check() == []
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_queue_claimed_by_one_node(dsn: str) -> None:
    from courriel.store.postgres.store import PostgresStore

    async def main() -> None:
        a = await PostgresStore.open(dsn)
        b = await PostgresStore.open(dsn)
        try:
            qid = await a.enqueue(message("out"), "u@example.test", [QueueRecipient("x@remote.test")])
            now = datetime.now(UTC) + timedelta(seconds=1)
            (got,) = await a.due_queue(now)
            assert got.id == qid and got.recipients[0].next_attempt <= now
            # node b sees the message, but its recipient is claimed by a: not due for b
            for msg in await b.due_queue(now):
                assert all(r.next_attempt > now for r in msg.recipients)
            # a's next poll still gets it (its worker keeps track of what it runs)
            (again,) = await a.due_queue(now)
            assert again.recipients[0].next_attempt <= now
            rid = got.recipients[0].id
            later = datetime.now(UTC) + timedelta(seconds=1)
            await a.update_queue([RecipientUpdate(rid, "deferred", next_attempt=later - timedelta(seconds=1))])
            # deferred and unclaimed: the next due poll of either node may take it
            (by_b,) = await b.due_queue(later)
            assert by_b.recipients[0].next_attempt <= later
            assert await b.update_queue([RecipientUpdate(rid, "delivered")]) == [qid]
            assert await a.list_queue() == []
            with pytest.raises(FileNotFoundError):
                await a.read_message(got.blob)
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_blob_dir_mode(dsn: str, tmp_path: Path) -> None:
    from courriel.store.postgres.store import PostgresStore

    async def main() -> None:
        store = await PostgresStore.open(dsn, tmp_path / "blobs")
        try:
            await store.add_domain("example.test")
            user = await store.add_user("u@example.test", "pw")
            inbox = await store.get_mailbox(user.id, INBOX)
            assert inbox is not None
            data = message("files")
            a = await store.append(inbox.id, data, Flag.DELETED)
            (rec,) = await store.get_records(inbox.id, [a.uid])
            assert (tmp_path / "blobs" / rec.blob).read_bytes() == data
            assert await store.read_messages(inbox.id, [a.uid]) == {a.uid: data}
            assert await store.check() == []
            row = await store.db.one("SELECT COUNT(*) FROM blob_data")
            assert row is not None and row[0] == 0  # nothing in the database
            await store.expunge(inbox.id)
            assert not (tmp_path / "blobs" / rec.blob).exists()
        finally:
            await store.close()

    asyncio.run(main())


def test_text_postgresql_cannot_hold(dsn: str) -> None:
    """NUL bytes and undecodable header bytes in a message: stored byte-exact, searchable."""
    from courriel.store.postgres.store import PostgresStore

    async def main() -> None:
        store = await PostgresStore.open(dsn)
        try:
            await store.add_domain("example.test")
            user = await store.add_user("u@example.test", "pw")
            inbox = await store.get_mailbox(user.id, INBOX)
            assert inbox is not None
            data = b"Subject: nul\x00here \xff\xfe\r\nX-Odd: a\x00b\r\n\r\nbody with \x00 nul and needle\r\n"
            a = await store.append(inbox.id, data)
            (rec,) = await store.get_records(inbox.id, [a.uid])
            assert await store.read_message(rec.blob) == data
            assert await store.search(inbox.id, BodyContains("needle")) == [a.uid]
            assert await store.search(inbox.id, HeaderContains("x-odd", "a")) == [a.uid]
            assert await store.search(inbox.id, HeaderContains("subject", "nul")) == [a.uid]
        finally:
            await store.close()

    asyncio.run(main())
