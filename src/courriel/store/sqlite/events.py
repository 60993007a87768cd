"""Message events on SQLite (table message_events, migration 0008): one INSERT per batch
(executemany), read by (user_id, content_id)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from courriel.store.api import MessageEvent
from courriel.store.sqlite.db import Tx


def add(tx: Tx, events: Sequence[MessageEvent]) -> None:
    users = {e.user_id for e in events}
    known = {
        r[0] for r in tx.all(f"SELECT id FROM users WHERE id IN ({','.join('?' * len(users))})", tuple(users))
    } if users else set()  # fmt: skip
    rows = [
        (e.user_id, e.content_id, e.time, e.kind, e.protocol, e.client, json.dumps(e.details, separators=(",", ":")))
        for e in events
        if e.user_id in known
    ]
    tx.conn.executemany(
        "INSERT INTO message_events (user_id, content_id, time, kind, protocol, client, details)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def of(c: sqlite3.Connection, user_id: int, content_id: int) -> list[MessageEvent]:
    rows = c.execute(
        "SELECT id, user_id, content_id, time, kind, protocol, client, details FROM message_events"
        " WHERE user_id = ? AND content_id = ? ORDER BY time, id",
        (user_id, content_id),
    ).fetchall()
    return [MessageEvent(r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[0]) for r in rows]


def prune(tx: Tx, before: float) -> int:
    return int(tx.run("DELETE FROM message_events WHERE time < ?", (before,)).rowcount)


def delete_user(tx: Tx, user_id: int) -> None:
    tx.run("DELETE FROM message_events WHERE user_id = ?", (user_id,))
