"""Two nodes writing to one mailbox never deadlock: every write takes the user's row before
the mailbox's (store/postgres/db.py), also the \\Recent claim of SELECT (claim_recent).

Each node batches concurrent operations into one transaction (group commit), so one batch
can hold a mailbox row taken by one operation while the next waits for the user's row; if
any operation took the mailbox first, the other node's batch, holding the user and waiting
for the mailbox, would deadlock with it (PostgreSQL breaks that after deadlock_timeout, 1 s,
and the store retries: nothing fails, everything stalls). Counted by pg_stat_database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest

from courriel.store.api import INBOX, Flag, FlagMode
from courriel.store.postgres.store import PostgresStore

ROUNDS = 12
TASKS = 6  # concurrent operations per node: enough to form batches


@pytest.fixture
def dsn() -> Iterator[str]:
    from tests.pg import cluster

    pg = cluster()
    dsn = pg.fresh_dsn("locks")
    try:
        yield dsn
    finally:
        pg.drop(dsn)


def _deadlocks(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None
    return int(row[0])


def test_recent_claims_and_writes_on_two_nodes_do_not_deadlock(dsn: str) -> None:
    async def main() -> tuple[int, int]:
        a = await PostgresStore.open(dsn)
        b = await PostgresStore.open(dsn)
        try:
            await a.add_domain("example.test")
            user = await a.add_user("alice@example.test", "pw")
            inbox = await a.get_mailbox(user.id, INBOX)
            assert inbox is not None
            first = await a.append(inbox.id, b"Subject: 0\r\n\r\nx\r\n")
            before = await asyncio.to_thread(_deadlocks, dsn)

            async def mix(store: PostgresStore, k: int) -> None:
                for i in range(ROUNDS):
                    if (i + k) % 3 == 0:
                        await store.claim_recent(inbox.id)
                    elif (i + k) % 3 == 1:
                        await store.append(inbox.id, b"Subject: %d\r\n\r\nx\r\n" % i)
                    else:
                        await store.store_flags(inbox.id, [first.uid], FlagMode.ADD, Flag.SEEN if i % 2 else Flag.FLAGGED)

            await asyncio.gather(*(mix(store, k) for store in (a, b) for k in range(TASKS)))
            appended = len(await a.list_messages(inbox.id))
        finally:
            await a.close()
            await b.close()
        return before, appended

    before, appended = asyncio.run(main())
    assert appended == 1 + 2 * TASKS * ROUNDS // 3
    _wait_backends_gone(dsn)  # a backend flushes its statistics when it exits at the latest
    assert _deadlocks(dsn) - before == 0


def _wait_backends_gone(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the stores' connections do not end"
            time.sleep(0.05)
