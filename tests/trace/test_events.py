"""Message events written by the sessions: an IMAP session that FETCHes the bodies of 1,000
messages (imaplib, in a thread) costs one batched write of 1,000 rows, each message once
however often it is fetched; POP3 RETR and TOP likewise (poplib). The IMAP and POP3 services
run in this process on a store that counts its ``add_message_events`` calls."""

from __future__ import annotations

import asyncio
import imaplib
import poplib
from collections.abc import Sequence
from pathlib import Path

from courriel.config import build_config
from courriel.imap.server import imap_service
from courriel.pop3.server import pop3_service
from courriel.server import Context
from courriel.store.api import INBOX, MessageEvent, NewMessage
from courriel.store.sqlite.store import SQLiteStore
from courriel.trace import events
from tests.harness import free_port

USER, PASSWORD = "alice@example.test", "alice-Pw-1"


class CountingStore(SQLiteStore):
    calls: list[int]

    async def add_message_events(self, evs: Sequence[MessageEvent]) -> None:
        self.calls.append(len(evs))
        await super().add_message_events(evs)


def _message(i: int) -> bytes:
    return (f"From: bob@example.org\r\nTo: {USER}\r\nSubject: n{i}\r\nMessage-ID: <m{i}@example.org>\r\n"
            f"Date: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nbody {i}\r\n").encode()  # fmt: skip


async def _setup(tmp: Path, count: int) -> tuple[CountingStore, Context, list[int]]:
    store = await CountingStore.open(tmp / "courriel.db", tmp / "blobs")
    assert isinstance(store, CountingStore)
    store.calls = []
    await store.add_domain("example.test")
    user = await store.add_user(USER, PASSWORD)
    inbox = await store.get_mailbox(user.id, INBOX)
    assert inbox is not None
    appended = await store.append_many(inbox.id, [NewMessage(_message(i)) for i in range(count)])
    env = {"COURRIEL_IMAP_LISTEN": f"127.0.0.1:{free_port()}", "COURRIEL_POP3_LISTEN": f"127.0.0.1:{free_port()}",
           "COURRIEL_IMAP_ALLOW_PLAINTEXT_AUTH": "true", "COURRIEL_POP3_ALLOW_PLAINTEXT_AUTH": "true"}  # fmt: skip
    ctx = Context(build_config({}, env=env, data_dir=tmp), store)
    return store, ctx, [a.content_id for a in appended]


def _imap_fetch_all(port: int) -> int:
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login(USER, PASSWORD)
    imap.select("INBOX")
    typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    imap.fetch("1:10", "(BODY[])")  # the same messages again: no new event
    imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER])")  # headers alone: not a retrieval
    imap.logout()
    return sum(1 for d in data if isinstance(d, tuple))


def test_imap_fetch_of_1000_messages_is_one_batched_write(tmp_path: Path) -> None:
    async def main() -> None:
        store, ctx, contents = await _setup(tmp_path, 1000)
        service = imap_service(ctx)
        ((_, port),) = await service.start()
        try:
            assert await asyncio.to_thread(_imap_fetch_all, port) == 1000
            await events.drain()
        finally:
            await service.stop()
        assert store.calls == [1000]
        user = await store.get_user(USER)
        assert user is not None
        first = await store.message_events(user.id, contents[0])
        assert [(e.kind, e.protocol, e.details) for e in first] == [("retrieved", "IMAP", {"peek": True})]
        assert first[0].client.startswith("127.0.0.1:")
        rows = await store._readers.run(lambda c: c.execute("SELECT COUNT(*) FROM message_events").fetchone())
        assert rows[0] == 1000
        await store.close()

    asyncio.run(main())


def _pop3_session(port: int) -> None:
    pop = poplib.POP3("127.0.0.1", port)
    pop.user(USER)
    pop.pass_(PASSWORD)
    pop.retr(1)
    pop.retr(1)
    pop.top(2, 0)
    pop.quit()


def test_pop3_retr_and_top(tmp_path: Path) -> None:
    async def main() -> None:
        store, ctx, contents = await _setup(tmp_path, 3)
        service = pop3_service(ctx)
        ((_, port),) = await service.start()
        try:
            await asyncio.to_thread(_pop3_session, port)
            await events.drain()
        finally:
            await service.stop()
        assert store.calls == [2]
        user = await store.get_user(USER)
        assert user is not None
        got = [await store.message_events(user.id, c) for c in contents]
        assert [[(e.protocol, e.details["peek"]) for e in evs] for evs in got] == [[("POP3", False)], [("POP3", True)], []]
        await store.close()

    asyncio.run(main())


def test_events_off(tmp_path: Path) -> None:
    async def main() -> None:
        store, ctx, _ = await _setup(tmp_path, 2)
        ctx.cfg.trace.message_events = False
        service = pop3_service(ctx)
        ((_, port),) = await service.start()
        try:
            await asyncio.to_thread(_pop3_session, port)
            await events.drain()
        finally:
            await service.stop()
        assert store.calls == []
        await store.close()

    asyncio.run(main())
