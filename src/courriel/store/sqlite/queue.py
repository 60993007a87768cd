"""The outbound queue: mutations run inside the writer's transaction (see :mod:`.db`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from courriel.store.api import (
    NotFound,
    QueuedMessage,
    QueuedRecipient,
    QueueRecipient,
    RecipientUpdate,
)
from courriel.store.sqlite.db import Tx

QUEUE_COLS = "id, mail_from, size, blob, created, envid, ret, smtputf8, body_8bit, auth_user, source"
RECIPIENT_COLS = "id, queue_id, address, notify, orcpt, state, attempts, next_attempt, last_error"


def enqueue(
    tx: Tx,
    blob: str,
    size: int,
    mail_from: str,
    recipients: Sequence[QueueRecipient],
    envid: str | None,
    ret: str | None,
    smtputf8: bool,
    body_8bit: bool,
    auth_user: str | None,
    source: str,
) -> int:
    now = int(time.time())
    cur = tx.run(
        "INSERT INTO queue (blob, size, mail_from, envid, ret, smtputf8, body_8bit, auth_user, source, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (blob, size, mail_from, envid, ret, int(smtputf8), int(body_8bit), auth_user, source, now),
    )
    queue_id = int(cur.lastrowid or 0)
    tx.conn.executemany(
        "INSERT INTO queue_recipients (queue_id, address, notify, orcpt, next_attempt) VALUES (?, ?, ?, ?, ?)",
        [(queue_id, r.address, r.notify, r.orcpt, now) for r in recipients],
    )
    tx.new_blobs.append(blob)
    return queue_id


def delete(tx: Tx, queue_id: int) -> None:
    row = tx.one("SELECT blob FROM queue WHERE id = ?", (queue_id,))
    if row is None:
        raise NotFound(f"no queued message {queue_id}")
    tx.run("DELETE FROM queue_recipients WHERE queue_id = ?", (queue_id,))
    tx.run("DELETE FROM queue WHERE id = ?", (queue_id,))
    tx.dead_blobs.append(row[0])


def update(tx: Tx, updates: Sequence[RecipientUpdate]) -> list[int]:
    """Apply attempt outcomes; remove the messages left with no waiting recipient."""
    touched: set[int] = set()
    for u in updates:
        row = tx.one("SELECT queue_id, next_attempt FROM queue_recipients WHERE id = ?", (u.id,))
        if row is None:
            continue  # deleted meanwhile (queue delete)
        touched.add(row[0])
        nxt = int(u.next_attempt.timestamp()) if u.next_attempt is not None else row[1]
        tx.run(
            "UPDATE queue_recipients SET state = ?, next_attempt = ?, last_error = ?, attempts = attempts + ?"
            " WHERE id = ?",
            (u.state, nxt, u.last_error, int(u.attempted), u.id),
        )
    removed: list[int] = []
    for queue_id in sorted(touched):
        waiting = tx.one(
            "SELECT 1 FROM queue_recipients WHERE queue_id = ? AND state IN ('queued', 'deferred') LIMIT 1",
            (queue_id,),
        )
        if waiting is None:
            delete(tx, queue_id)
            removed.append(queue_id)
    return removed


def flush(tx: Tx) -> int:
    cur = tx.run(
        "UPDATE queue_recipients SET next_attempt = ? WHERE state IN ('queued', 'deferred')", (int(time.time()),)
    )
    return int(cur.rowcount)


def _time(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def rows_to_messages(msgs: list[Any], rcpts: list[Any]) -> list[QueuedMessage]:
    by_queue: dict[int, list[QueuedRecipient]] = {}
    for rid, qid, address, notify, orcpt, state, attempts, next_attempt, last_error in rcpts:
        by_queue.setdefault(qid, []).append(
            QueuedRecipient(rid, address, notify, orcpt, state, attempts, _time(next_attempt), last_error)
        )
    return [
        QueuedMessage(
            qid, mail_from, size, blob, _time(created), envid, ret, bool(utf8), bool(b8), auth, source,
            tuple(by_queue.get(qid, ())),
        )
        for qid, mail_from, size, blob, created, envid, ret, utf8, b8, auth, source in msgs
    ]  # fmt: skip
