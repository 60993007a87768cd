"""Message events on PostgreSQL (table message_events, migration 0002): one multi-row
INSERT per batch, read by (user_id, content_id)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from courriel.store.api import MessageEvent
from courriel.store.postgres.db import Tx

_CHUNK = 1000  # rows per INSERT statement (7 parameters each, under PostgreSQL's 65535)


async def add(tx: Tx, events: Sequence[MessageEvent]) -> None:
    users = list({e.user_id for e in events})
    known = {int(r[0]) for r in await tx.all("SELECT id FROM users WHERE id = ANY(%s)", (users,))} if users else set()
    rows = [e for e in events if e.user_id in known]
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        args: list[Any] = []
        for e in chunk:
            args += [e.user_id, e.content_id, e.time, e.kind, e.protocol, e.client, json.dumps(e.details)]
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s::jsonb)"] * len(chunk))
        await tx.run(
            "INSERT INTO message_events (user_id, content_id, time, kind, protocol, client, details)"
            f" VALUES {values}",
            args,
        )


async def of(tx: Tx, user_id: int, content_id: int) -> list[MessageEvent]:
    rows = await tx.all(
        "SELECT id, user_id, content_id, time, kind, protocol, client, details::text FROM message_events"
        " WHERE user_id = %s AND content_id = %s ORDER BY time, id",
        (user_id, content_id),
    )
    return [
        MessageEvent(int(r[1]), int(r[2]), float(r[3]), str(r[4]), str(r[5]), str(r[6]), json.loads(str(r[7])), int(r[0]))
        for r in rows
    ]


async def prune(tx: Tx, before: float) -> int:
    return await tx.run("DELETE FROM message_events WHERE time < %s", (before,))
