"""The PostgreSQL store beside the SQLite store and a Maildir MDA, in one run.

``Store.append`` of 5 KB messages from 1, 10 and 50 concurrent writers, durable before
returning: SQLite (WAL + message files, group commit) and PostgreSQL (bytea in the same
transaction, synchronous_commit on) through the same API, and the Maildir reference of
bench/store_append.py. Then ``snapshot`` (IMAP SELECT) and ``search BODY`` over the
mailboxes filled. PostgreSQL is a private cluster (tests/pg.py) on this machine, fsync on.
Reported as messages per second and ratios PostgreSQL / SQLite and PostgreSQL / Maildir.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.store_append import maildir_rate, message
from courriel.store.api import INBOX, BodyContains, Store
from courriel.store.postgres.store import PostgresStore
from courriel.store.sqlite.store import SQLiteStore


async def _rates(store: Store, n: int, concurrency: int) -> tuple[float, float, float]:
    """(appends/s, snapshot seconds, search seconds) on a new user's INBOX."""
    address = f"u{concurrency}@example.test"
    user = await store.add_user(address, "pw")
    inbox = await store.get_mailbox(user.id, INBOX)
    assert inbox is not None
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await store.append(inbox.id, message(i))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = n / (time.perf_counter() - start)
    start = time.perf_counter()
    snap = await store.snapshot(inbox.id)
    snap_s = time.perf_counter() - start
    assert len(snap.uids) == n
    start = time.perf_counter()
    await store.search(inbox.id, BodyContains("lazy dog, again"))
    return rate, snap_s, time.perf_counter() - start


async def run(quick: bool = False) -> list[tuple[int, float, float, float]]:
    from tests.pg import cluster

    n = 200 if quick else 2000
    pg = cluster()
    dsn = pg.fresh_dsn("bench")
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        sq = await SQLiteStore.open(Path(tmp) / "courriel.db", Path(tmp) / "blobs")
        pq = await PostgresStore.open(dsn)
        try:
            for s in (sq, pq):
                await s.add_domain("example.test")
            print(f"store append, 5 KB messages, {n} per run, durable before returning; SQLite vs PostgreSQL")
            print(f"{'writers':>7} {'SQLite/s':>9} {'PG/s':>7} {'Maildir/s':>10} {'PG/SQLite':>10} {'PG/Maildir':>11}"
                  f" {'SELECT sq/pg ms':>16} {'BODY sq/pg ms':>14}")  # fmt: skip
            for conc in (1, 10, 50):
                s_rate, s_snap, s_search = await _rates(sq, n, conc)
                p_rate, p_snap, p_search = await _rates(pq, n, conc)
                with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as m:
                    ref = await asyncio.to_thread(maildir_rate, Path(m), n, conc)
                rows.append((conc, s_rate, p_rate, ref))
                print(f"{conc:>7} {s_rate:>9.0f} {p_rate:>7.0f} {ref:>10.0f} {p_rate / s_rate:>10.2f}"
                      f" {p_rate / ref:>11.2f} {s_snap * 1000:>7.1f}/{p_snap * 1000:<8.1f}"
                      f" {s_search * 1000:>6.1f}/{p_search * 1000:<7.1f}")  # fmt: skip
        finally:
            await sq.close()
            await pq.close()
            pg.drop(dsn)
    return rows


if __name__ == "__main__":
    import sys

    asyncio.run(run(quick="--quick" in sys.argv))
