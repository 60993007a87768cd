"""Account-wide reads (JMAP's view of a user's mail) and bearer tokens, for the SQLite store.

Readers take a connection from the reader pool; token writes run in the writer's transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from courriel.store.api import (
    AccessToken,
    AccountMessage,
    CopyChange,
    Flag,
    MailboxChange,
    NotFound,
)
from courriel.store.names import decode_keywords
from courriel.store.sqlite.db import Tx
from courriel.store.sqlite.rows import ts

_ACCOUNT_COLS = (
    "m.mailbox_id, m.uid, m.content_id, m.modseq, m.flags, m.keywords, m.size, m.internal_date,"
    " c.sent_date, c.base_subject, c.sort_from, c.sort_to, c.message_id, c.in_reply_to, c.refs_header, c.thread_id"
)


def account_messages(c: sqlite3.Connection, user_id: int, content_ids: Sequence[int] | None = None) -> list[AccountMessage]:
    base = (
        f"SELECT {_ACCOUNT_COLS} FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id"
        " JOIN contents c ON c.id = m.content_id WHERE b.user_id = ?"
    )
    if content_ids is None:
        rows = c.execute(base + " ORDER BY m.mailbox_id, m.uid", (user_id,)).fetchall()
    else:
        ids = sorted(set(content_ids))
        rows = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows += c.execute(base + f" AND m.content_id IN ({','.join('?' * len(chunk))})", (user_id, *chunk)).fetchall()
        rows.sort(key=lambda r: (r[0], r[1]))
    return [
        AccountMessage(
            r[0], r[1], r[2], r[3], Flag(r[4]), decode_keywords(r[5]), r[6], ts(r[7]),
            ts(r[8]) if r[8] is not None else None, r[9], r[10], r[11], r[12], r[13], r[14], r[15],
        )
        for r in rows
    ]


def account_received(c: sqlite3.Connection, user_id: int, mailbox_id: int | None) -> list[tuple[int, float]]:
    """See :meth:`Store.account_received`: read from the messages table alone (not the
    contents rows); for one mailbox, its rows in date order and then only the user's copies
    elsewhere of the same contents (the content index finds them), usually none."""
    if mailbox_id is None:
        sql = (
            "SELECT m.content_id, MIN(m.internal_date) FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id"
            " WHERE b.user_id = ? GROUP BY m.content_id ORDER BY 2, 1"
        )
        found: list[tuple[int, float]] = c.execute(sql, (user_id,)).fetchall()  # epoch seconds as integers
        return found
    rows: list[tuple[int, float]] = c.execute(
        "SELECT content_id, internal_date FROM messages WHERE mailbox_id = ?"
        " AND mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?) ORDER BY internal_date, content_id",
        (mailbox_id, user_id),
    ).fetchall()
    elsewhere = c.execute(
        "SELECT m.content_id, MIN(m.internal_date) FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id"
        " WHERE b.user_id = ? AND b.id <> ? AND EXISTS"
        " (SELECT 1 FROM messages x WHERE x.content_id = m.content_id AND x.mailbox_id = ?) GROUP BY m.content_id",
        (user_id, mailbox_id, mailbox_id),
    ).fetchall()
    if elsewhere or len({r[0] for r in rows}) != len(rows):  # one entry per content, its earliest date
        first: dict[int, float] = dict(elsewhere)
        for content, when in rows:
            if content not in first or when < first[content]:
                first[content] = when
        rows = sorted(first.items(), key=lambda r: (r[1], r[0]))
    return rows


def message_changes(c: sqlite3.Connection, user_id: int, since: int) -> tuple[list[CopyChange], bool]:
    complete = (
        c.execute(
            "SELECT 1 FROM mailbox_tombstones WHERE user_id = ? AND modseq > ? LIMIT 1", (user_id, since)
        ).fetchone()
        is None
    )
    boxes = [r[0] for r in c.execute("SELECT id FROM mailboxes WHERE user_id = ?", (user_id,))]
    touched: set[int] = set()
    removed: list[Any] = []
    for box in boxes:  # (mailbox_id, modseq) indexes serve both
        touched.update(
            r[0] for r in c.execute("SELECT content_id FROM messages WHERE mailbox_id = ? AND modseq > ?", (box, since))
        )
        rows = c.execute(
            "SELECT content_id, mailbox_id, uid, created_modseq, modseq FROM expunged"
            " WHERE mailbox_id = ? AND modseq > ?",
            (box, since),
        ).fetchall()
        removed.extend(rows)
        touched.update(r[0] for r in rows)
    out = [CopyChange(r[0], r[1], r[2], r[3], r[4], True) for r in removed]
    ids = sorted(touched)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for r in c.execute(
            "SELECT m.content_id, m.mailbox_id, m.uid, m.created_modseq, m.modseq FROM messages m"
            " JOIN mailboxes b ON b.id = m.mailbox_id"
            f" WHERE b.user_id = ? AND m.content_id IN ({','.join('?' * len(chunk))})",
            (user_id, *chunk),
        ):
            out.append(CopyChange(r[0], r[1], r[2], r[3], r[4], False))
    return out, complete


def mailbox_changes(c: sqlite3.Connection, user_id: int, since: int) -> list[MailboxChange]:
    live = c.execute(
        "SELECT id, created_modseq, highestmodseq FROM mailboxes WHERE user_id = ? AND highestmodseq > ?",
        (user_id, since),
    ).fetchall()
    gone = c.execute(
        "SELECT mailbox_id, modseq FROM mailbox_tombstones WHERE user_id = ? AND modseq > ?"
        " AND mailbox_id NOT IN (SELECT id FROM mailboxes WHERE user_id = ?)",
        (user_id, since, user_id),
    ).fetchall()
    return [MailboxChange(r[0], r[1], r[2], False) for r in live] + [MailboxChange(r[0], 0, r[1], True) for r in gone]


_TOKEN_COLS = "t.id, t.user_id, u.address, t.label, t.created"


def _token(r: Any) -> AccessToken:
    return AccessToken(r[0], r[1], r[2], r[3], ts(r[4]))


def add_token(tx: Tx, user_id: int, token_hash: bytes, label: str) -> AccessToken:
    if tx.one("SELECT 1 FROM users WHERE id = ?", (user_id,)) is None:
        raise NotFound("no such user")
    cur = tx.run(
        "INSERT INTO access_tokens (user_id, hash, label, created) VALUES (?, ?, ?, ?)",
        (user_id, token_hash, label, int(time.time())),
    )
    row = tx.one(
        f"SELECT {_TOKEN_COLS} FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?",
        (cur.lastrowid,),
    )
    return _token(row)


def list_tokens(c: sqlite3.Connection, user_id: int | None) -> list[AccessToken]:
    sql = f"SELECT {_TOKEN_COLS} FROM access_tokens t JOIN users u ON u.id = t.user_id"
    if user_id is None:
        rows = c.execute(sql + " ORDER BY t.id").fetchall()
    else:
        rows = c.execute(sql + " WHERE t.user_id = ? ORDER BY t.id", (user_id,)).fetchall()
    return [_token(r) for r in rows]


def delete_token(tx: Tx, token_id: int) -> None:
    if tx.run("DELETE FROM access_tokens WHERE id = ?", (token_id,)).rowcount == 0:
        raise NotFound(f"no token {token_id}")


def token_user_id(c: sqlite3.Connection, token_hash: bytes) -> int | None:
    row = c.execute(
        "SELECT t.user_id FROM access_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.hash = ? AND u.disabled = 0",
        (token_hash,),
    ).fetchone()
    return None if row is None else int(row[0])
