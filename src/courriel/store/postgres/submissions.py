"""JMAP EmailSubmission records on PostgreSQL (table email_submissions, migration 0004).

Change numbers are per user: the next is one more than the user's largest, read after
locking the user's row, so concurrent submissions of one user are numbered one after the
other and a client never sees a later number commit before an earlier one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from courriel.store.api import AlreadyExists, EmailSubmissionRecord, NotFound
from courriel.store.postgres.db import Tx

_COLUMNS = (
    "id, user_id, identity_id, email_id, thread_id, envelope, send_at, queue_id, delivery, created, changed, destroyed"
)


async def _next(tx: Tx, user_id: int) -> int:
    if await tx.one("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user_id,)) is None:
        raise NotFound("no such user")
    row = await tx.one("SELECT MAX(changed) FROM email_submissions WHERE user_id = %s", (user_id,))
    return int(row[0] or 0) + 1 if row is not None else 1


async def add(tx: Tx, r: EmailSubmissionRecord) -> int:
    change = await _next(tx, r.user_id)
    if await tx.one("SELECT 1 FROM email_submissions WHERE user_id = %s AND id = %s", (r.user_id, r.id)) is not None:
        raise AlreadyExists(f"submission {r.id} exists")
    await tx.run(
        f"INSERT INTO email_submissions ({_COLUMNS})"
        " VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s::jsonb, %s, %s, false)",
        (r.id, r.user_id, r.identity_id, r.email_id, r.thread_id, json.dumps(r.envelope), r.send_at, r.queue_id,
         json.dumps(r.delivery), change, change),
    )  # fmt: skip
    return change


async def of(tx: Tx, user_id: int, tombstones: bool) -> list[EmailSubmissionRecord]:
    where = "" if tombstones else " AND NOT destroyed"
    cols = _COLUMNS.replace("envelope", "envelope::text").replace("delivery", "delivery::text")
    rows = await tx.all(f"SELECT {cols} FROM email_submissions WHERE user_id = %s{where} ORDER BY created", (user_id,))
    return [
        EmailSubmissionRecord(
            str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), json.loads(str(r[5])), float(r[6]),
            None if r[7] is None else int(r[7]), json.loads(str(r[8])), int(r[9]), int(r[10]), bool(r[11]),
        )
        for r in rows
    ]


async def update(tx: Tx, user_id: int, submission_id: str, delivery: dict[str, Any]) -> int:
    change = await _next(tx, user_id)
    n = await tx.run(
        "UPDATE email_submissions SET delivery = %s::jsonb, changed = %s"
        " WHERE user_id = %s AND id = %s AND NOT destroyed",
        (json.dumps(delivery), change, user_id, submission_id),
    )
    if not n:
        raise NotFound(f"no submission {submission_id}")
    return change


async def destroy(tx: Tx, user_id: int, ids: Sequence[str]) -> list[str]:
    change = await _next(tx, user_id)
    out = []
    for sid in dict.fromkeys(ids):
        n = await tx.run(
            "UPDATE email_submissions SET destroyed = true, changed = %s WHERE user_id = %s AND id = %s AND NOT destroyed",
            (change, user_id, sid),
        )
        if n:
            out.append(sid)
    return out
