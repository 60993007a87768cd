"""The full-text index (schema 4) for messages stored before it existed.

New messages are indexed at delivery, inside the writer's transaction (see
:func:`courriel.store.sqlite.messages.deliver`). Rows with ``contents.indexed = 0`` came from
an older schema: this background pass reads their files in a worker thread, derives the
same text as delivery does, and indexes them through the writer in small batches, so it
never holds the writer for long. Until a row is indexed, search reads its file instead.
"""

from __future__ import annotations

import asyncio
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
