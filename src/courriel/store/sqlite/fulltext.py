"""The full-text index (schema 4): filled after delivery, and caught up at open.

A new message is committed with ``contents.indexed = 0`` (:func:`courriel.store.sqlite.
messages.deliver`); its text, already extracted by the MIME parse, waits in
:class:`PendingIndex` and is indexed right after, in a batch of its own that does not wait
for the disk: the FTS5 insert (and its occasional segment merge) stays off the path that
acknowledges the message, and its fsync is shared with the next durable commit. A search
through the index first indexes what is pending. Rows still at ``indexed = 0`` at open
(a crash before their batch reached the disk, or stored by a schema older than 4) are
indexed by :func:`backfill`, which reads their files in a worker thread and indexes them
through the writer in small batches. Until a row is indexed, search reads its file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from typing import TYPE_CHECKING

from courriel.store.content import index_texts
from courriel.store.sqlite.db import Tx

if TYPE_CHECKING:
    from courriel.store.sqlite.store import SQLiteStore

log = logging.getLogger(__name__)
BATCH = 100


def _pending(c: sqlite3.Connection, after: int) -> list[tuple[int, str]]:
    rows = c.execute(
        "SELECT id, blob FROM contents WHERE indexed = 0 AND id > ? ORDER BY id LIMIT ?", (after, BATCH)
    ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def _index(tx: Tx, items: list[tuple[int, str, str]]) -> None:
    for content_id, head, body in items:
        row = tx.one("SELECT indexed FROM contents WHERE id = ?", (content_id,))
        if row is None or row[0]:
            continue  # gone meanwhile, or indexed by another pass
        tx.run("DELETE FROM contents_fts WHERE rowid = ?", (content_id,))
        tx.run("INSERT INTO contents_fts (rowid, head, body) VALUES (?, ?, ?)", (content_id, head, body))
        tx.run("UPDATE contents SET indexed = 1 WHERE id = ?", (content_id,))


#: Pending texts above this many: the delivery waits for them to be indexed (bounds memory).
MAX_PENDING = 1000
#: How long a burst may accumulate before its texts are indexed together. Each batch is a
#: new FTS5 segment (merged later with others) and a transaction: a batch of dozens costs a
#: fraction per message of what batches of one or two cost (0.3-0.4 ms less of the writer's
#: CPU per APPEND at 0.25 s than at 0.02 s, 100,000-message INBOX); searches flush first.
DELAY = 0.25


class PendingIndex:
    """Texts of new messages committed but not indexed yet, indexed in the background."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self.items: list[tuple[int, str, str]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, items: list[tuple[int, str, str]]) -> None:
        self.items.extend(items)
        if len(self.items) >= MAX_PENDING:
            await self.flush()
        elif self._task is None or self._task.done():
            self._task = asyncio.create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(DELAY)
        try:
            await self.flush()
        except Exception:  # search reads the files meanwhile; backfill retries at open
            log.exception("full-text indexing failed")

    async def flush(self) -> None:
        """Index everything pending (before a search through the index, and at close)."""
        while self.items:
            items, self.items = self.items, []
            await self._store._writer.submit(lambda tx, items=items: _index(tx, items), durable=False)  # type: ignore[misc]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.flush()


async def backfill(store: SQLiteStore) -> int:
    """Index every content row not indexed yet; returns how many were indexed."""
    done = 0
    after = 0
    while True:
        batch = await store._readers.run(lambda c, after=after: _pending(c, after))  # type: ignore[misc]
        if not batch:
            return done
        after = batch[-1][0]

        def texts(batch: list[tuple[int, str]] = batch) -> list[tuple[int, str, str]]:
            out = []
            for content_id, blob in batch:
                try:
                    head, body = index_texts(store.blobs.get(blob))
                except FileNotFoundError:
                    continue
                out.append((content_id, head, body))
            return out

        items = await asyncio.to_thread(texts)
        await store._write(lambda tx, items=items: _index(tx, items))  # type: ignore[misc]
        done += len(items)


async def run_backfill(store: SQLiteStore) -> None:
    try:
        n = await backfill(store)
    except asyncio.CancelledError:
        raise
    except Exception:  # the index is an optimisation: search still works without it
        log.exception("full-text backfill failed")
        return
    if n:
        log.info("full-text index: %d older messages indexed", n)
