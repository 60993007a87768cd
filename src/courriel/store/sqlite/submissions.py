"""JMAP EmailSubmission records on SQLite (table email_submissions, migration 0010).

Change numbers are per user: the next is one more than the user's largest, read inside the
write transaction (SQLite has one writer, so two submissions never get the same number).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from courriel.store.api import AlreadyExists, EmailSubmissionRecord, NotFound
from courriel.store.sqlite.db import Tx

_COLUMNS = (
    "id, user_id, identity_id, email_id, thread_id, envelope, send_at, queue_id, delivery, created, changed, destroyed"
)


def _next(tx: Tx, user_id: int) -> int:
    if tx.one("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
        raise NotFound("no such user")
    row = tx.one("SELECT MAX(changed) FROM email_submissions WHERE user_id = ?", (user_id,))
    return int(row[0] or 0) + 1


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def add(tx: Tx, r: EmailSubmissionRecord) -> int:
    change = _next(tx, r.user_id)
    if tx.one("SELECT 1 FROM email_submissions WHERE user_id = ? AND id = ?", (r.user_id, r.id)) is not None:
        raise AlreadyExists(f"submission {r.id} exists")
    tx.run(
        f"INSERT INTO email_submissions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        (r.id, r.user_id, r.identity_id, r.email_id, r.thread_id, _json(r.envelope), r.send_at, r.queue_id,
         _json(r.delivery), change, change),
    )  # fmt: skip
    return change


def of(c: sqlite3.Connection, user_id: int, tombstones: bool) -> list[EmailSubmissionRecord]:
    where = "" if tombstones else " AND destroyed = 0"
    rows = c.execute(
        f"SELECT {_COLUMNS} FROM email_submissions WHERE user_id = ?{where} ORDER BY created", (user_id,)
    ).fetchall()
    return [
        EmailSubmissionRecord(
            str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), json.loads(r[5]), float(r[6]),
            None if r[7] is None else int(r[7]), json.loads(r[8]), int(r[9]), int(r[10]), bool(r[11]),
        )
        for r in rows
    ]


def update(tx: Tx, user_id: int, submission_id: str, delivery: dict[str, Any]) -> int:
    change = _next(tx, user_id)
    n = tx.run(
        "UPDATE email_submissions SET delivery = ?, changed = ? WHERE user_id = ? AND id = ? AND destroyed = 0",
        (_json(delivery), change, user_id, submission_id),
    ).rowcount
    if not n:
        raise NotFound(f"no submission {submission_id}")
    return change


def destroy(tx: Tx, user_id: int, ids: Sequence[str]) -> list[str]:
    change = _next(tx, user_id)
    out = []
    for sid in dict.fromkeys(ids):
        n = tx.run(
            "UPDATE email_submissions SET destroyed = 1, changed = ? WHERE user_id = ? AND id = ? AND destroyed = 0",
            (change, user_id, sid),
        ).rowcount
        if n:
            out.append(sid)
    return out
