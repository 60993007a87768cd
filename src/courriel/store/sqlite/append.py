"""One message appended (IMAP APPEND): its file made durable while its rows are prepared.

:meth:`SQLiteStore.deliver` parses the message and writes its file in a worker thread, then
hands the rows to the writer, which fsyncs the file and commits: file fsync, then commit
fsync, one after the other, on the path to the client's OK. Here the file is written and
fsynced in a thread of its own from the start, while the writer parses the message (one
thread hop less than parsing in a worker: the parse holds the GIL wherever it runs; when
the writer is busy with other commits, a worker parses it meanwhile) and inserts the rows; the operation waits for the file's fsync at its end, inside the writer's
transaction, so the commit still comes after the file is on disk (a crash never leaves a row
naming a file that is not complete) and both are durable before the caller hears of it. The
file is one the blob pool created ahead (its directory entry already durable): a new name
costs no directory fsync either.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING

from courriel.store.api import Appended, AppendTarget
from courriel.store.content import ContentSummary, summarize
from courriel.store.sqlite import messages as msg_ops
from courriel.store.sqlite.db import Tx

if TYPE_CHECKING:
    from courriel.store.sqlite.store import SQLiteStore


async def append_one(
    store: SQLiteStore,
    files: concurrent.futures.Executor,
    blob: str,
    data: bytes,
    target: AppendTarget,
    internal_date: int,
    mail_from: str | None,
) -> Appended:
    """Store ``data`` in the pool file ``blob`` (from ``store.blobs.reserve``) for ``target``."""
    written = files.submit(store.blobs.write, blob, data)
    targets = [target]
    depth = store.max_mime_depth
    parsed: ContentSummary | None = None
    if not store._writer.idle():
        # The writer is busy with others' commits: parse meanwhile rather than after them.
        try:
            parsed = await asyncio.to_thread(summarize, data, depth)
        except BaseException:
            written.add_done_callback(lambda _f: store.blobs.delete(blob))  # not stored
            raise

    def op(tx: Tx) -> tuple[Appended, ContentSummary]:
        try:
            summary = parsed if parsed is not None else summarize(data, depth)
            out = msg_ops.deliver(tx, blob, summary, targets, internal_date, mail_from, True, file_synced=True)
        finally:
            written.exception()  # waits: never leave the file being written behind
        written.result()  # a failed write fails the operation: its rows are rolled back
        return out[0], summary

    outcome: tuple[Appended, ContentSummary] = await store._write(op, orphan_blobs=[blob])  # failed: file deleted
    result, summary = outcome
    await store._fulltext.add([(result.content_id, summary.head_text, summary.body_text)])
    return result
