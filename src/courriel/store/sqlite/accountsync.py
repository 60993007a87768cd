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
        by_content = (  # from the content index: a join from mailboxes would scan each mailbox
            f"SELECT {_ACCOUNT_COLS} FROM messages m JOIN contents c ON c.id = m.content_id"
            " WHERE m.content_id IN ({}) AND m.mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?)"
        )
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows += c.execute(by_content.format(",".join("?" * len(chunk))), (*chunk, user_id)).fetchall()
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


#: Rows of the mailbox read at a time by :func:`received_page` beyond the page's size (the
#: first batch; each next one is twice as large).
PAGE_BATCH = 256


def page_of(first: dict[int, float], edge: tuple[float, int] | None, count: int) -> list[tuple[int, float]] | None:
    """The first ``count`` of the contents seen so far, by (earliest date, content id)
    descending, when they are known to be first; None when more rows must be read.

    The mailbox's rows are read by (date, content id) descending down to ``edge`` (None: all
    of them read). A content's earliest date is at most the date of each of its rows, so every
    content ordered at or above ``edge`` has been seen, with its earliest date over the
    account in ``first``."""
    ready = sorted(((d, c) for c, d in first.items() if edge is None or (d, c) >= edge), reverse=True)
    if edge is not None and len(ready) < count:
        return None
    return [(c, d) for d, c in ready[:count]]


def received_page(
    c: sqlite3.Connection, user_id: int, mailbox_id: int, count: int, total: bool
) -> tuple[list[tuple[int, float]], int | None]:
    """See :meth:`Store.received_page`: the mailbox's rows in the index on (mailbox_id,
    internal_date, content_id) from the newest, each content's earliest date over the user's
    copies looked up through the content index, until the page is known."""
    if c.execute("SELECT 1 FROM mailboxes WHERE id = ? AND user_id = ?", (mailbox_id, user_id)).fetchone() is None:
        return [], (0 if total else None)
    n = None
    if total:
        n = int(c.execute("SELECT COUNT(DISTINCT content_id) FROM messages WHERE mailbox_id = ?", (mailbox_id,)).fetchone()[0])
    if count <= 0:
        return [], n
    rows = c.execute(
        "SELECT content_id, internal_date FROM messages WHERE mailbox_id = ? ORDER BY internal_date DESC, content_id DESC",
        (mailbox_id,),
    )  # one statement: the lookups below read the same snapshot while it is open
    first: dict[int, float] = {}
    size = PAGE_BATCH + count
    while True:
        chunk: list[tuple[int, float]] = rows.fetchmany(size)
        new = list(dict.fromkeys(cid for cid, _ in chunk if cid not in first))
        for i in range(0, len(new), 500):
            part = new[i : i + 500]
            first.update(
                c.execute(  # by the content index (a join from mailboxes would scan each mailbox)
                    f"SELECT content_id, MIN(internal_date) FROM messages WHERE content_id IN ({','.join('?' * len(part))})"
                    " AND mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?) GROUP BY content_id",
                    (*part, user_id),
                ).fetchall()
            )
        for cid, d in chunk:  # found above unless gone meanwhile; then this mailbox's dates
            if cid not in first or d < first[cid]:
                first[cid] = d
        done = len(chunk) < size
        page = page_of(first, None if done else (chunk[-1][1], chunk[-1][0]), count)
        if page is not None:
            rows.close()
            return page, n
        size = min(size * 2, 8192)


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
        for r in c.execute(  # by the content index, as in account_messages
            "SELECT content_id, mailbox_id, uid, created_modseq, modseq FROM messages"
            f" WHERE content_id IN ({','.join('?' * len(chunk))})"
            " AND mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?)",
            (*chunk, user_id),
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
