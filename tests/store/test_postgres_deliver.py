"""The PostgreSQL one-statement delivery (store/postgres/messages.py ``_deliver_one``): the
columns it fills from parameters, the counters it moves, and its refusals, which must leave
nothing behind (the content rows are inserted by the same statement)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from courriel.store.api import INBOX, Flag, NotFound, StoreError
from tests.conftest import BACKENDS, message

pytestmark = pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL not in COURRIEL_TEST_BACKENDS")

NO_DATE = b"From: a@example.test\r\nSubject: Re: Fwd: plain\r\n\r\nbody\r\n"


@pytest.fixture
def dsn() -> Iterator[str]:
    from tests.pg import cluster

    pg = cluster()
    value = pg.fresh_dsn()
    yield value
    pg.drop(value)


def test_one_statement_delivery(dsn: str) -> None:
    import asyncio

    from courriel.store.postgres.store import PostgresStore

    async def main() -> None:
        s = await PostgresStore.open(dsn)
        try:
            await s.add_domain("example.test")
            user = await s.add_user("u@example.test", "pw")
            inbox = await s.get_mailbox(user.id, INBOX)
            assert inbox is not None
            idate = datetime(2025, 1, 2, tzinfo=UTC)
            a = await s.append(inbox.id, message("first"), Flag.SEEN | Flag.DELETED, frozenset({"$Work"}), idate)
            b = await s.append(inbox.id, NO_DATE, internal_date=idate)
            assert (a.uid, b.uid) == (1, 2) and b.modseq == a.modseq + 1
            async with await psycopg.AsyncConnection.connect(dsn) as conn:
                cur = await conn.execute(
                    "SELECT uid, flags, keywords, sort_date, sort_subject, internal_date, created_modseq, modseq"
                    " FROM messages WHERE mailbox_id = %s ORDER BY uid",
                    (inbox.id,),
                )
                rows = await cur.fetchall()
            sent = int(datetime(2026, 11, 29, tzinfo=UTC).timestamp())
            assert rows[0][:5] == (1, int(Flag.SEEN | Flag.DELETED), " $Work ", sent, "first")
            assert rows[1][:5] == (2, 0, "", int(idate.timestamp()), "plain")
            assert rows[0][5] == int(idate.timestamp()) and rows[0][6] == rows[0][7] == a.modseq
            box = await s.get_mailbox_by_id(inbox.id)
            assert box is not None and box.uidnext == 3
            assert await s.check() == []  # counters (messages, unseen, deleted, size), refs, bytes

            # A \Noselect placeholder refuses, and the content rows go with the refusal.
            await s.create_mailbox(user.id, "P/child")
            await s.delete_mailbox(user.id, "P")
            placeholder = await s.get_mailbox(user.id, "P")
            assert placeholder is not None and placeholder.noselect
            with pytest.raises(NotFound):
                await s.append(placeholder.id, message("refused"))
            # UID space exhausted: the last UID is given, then a clear refusal.
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                await conn.execute("UPDATE mailboxes SET uidnext = %s WHERE id = %s", (2**32 - 1, inbox.id))
            last = await s.append(inbox.id, message("last"))
            assert last.uid == 2**32 - 1
            with pytest.raises(StoreError, match="exhausted"):
                await s.append(inbox.id, message("one too many"))
            assert await s.check() == []
            stats = await s.stats()
            assert stats.messages == 3
            async with await psycopg.AsyncConnection.connect(dsn) as conn:
                cur = await conn.execute("SELECT count(*) FROM contents")
                assert await cur.fetchone() == (3,)
        finally:
            await s.close()

    asyncio.run(main())
