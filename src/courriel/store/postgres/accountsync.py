"""Account-wide reads (JMAP's view of a user's mail) and bearer tokens on PostgreSQL
(semantics of :mod:`courriel.store.sqlite.accountsync`)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from courriel.store.api import (
    AccessToken,
    AccountMessage,
    CopyChange,
    Flag,
    MailboxChange,
    NotFound,
)
from courriel.store.names import decode_keywords
from courriel.store.postgres.db import Row, Tx
from courriel.store.sqlite import accountsync as walk
from courriel.store.sqlite.rows import ts

_ACCOUNT_COLS = (
    "m.mailbox_id, m.uid, m.content_id, m.modseq, m.flags, m.keywords, m.size, m.internal_date,"
    " c.sent_date, c.base_subject, c.sort_from, c.sort_to, c.message_id, c.in_reply_to, c.refs_header, c.thread_id"
)


async def account_messages(tx: Tx, user_id: int, content_ids: Sequence[int] | None = None) -> list[AccountMessage]:
    """Every copy in the user's mailboxes (or the copies of ``content_ids``), by mailbox and UID."""
    sql = (
        f"SELECT {_ACCOUNT_COLS} FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id"
        " JOIN contents c ON c.id = m.content_id WHERE b.user_id = %s"
    )
    if content_ids is None:
        rows = await tx.all(sql + " ORDER BY m.mailbox_id, m.uid", (user_id,))
    else:
        rows = await tx.all(
            sql + " AND m.content_id = ANY(%s::bigint[]) ORDER BY m.mailbox_id, m.uid", (user_id, sorted(set(content_ids)))
        )
    return [
        AccountMessage(
            int(r[0]), int(r[1]), int(r[2]), int(r[3]), Flag(r[4]), decode_keywords(r[5]), int(r[6]), ts(r[7]),
            ts(r[8]) if r[8] is not None else None, r[9], r[10], r[11], r[12], r[13], r[14], r[15],
        )
        for r in rows
    ]


async def account_received(tx: Tx, user_id: int, mailbox_id: int | None) -> list[tuple[int, float]]:
    """(content id, earliest internal date of its copies in the user's mailboxes) of each content
    with a copy in ``mailbox_id`` (any mailbox when None), by that date then content id."""
    if mailbox_id is None:
        rows = await tx.all(
            "SELECT m.content_id, MIN(m.internal_date) FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id"
            " WHERE b.user_id = %s GROUP BY m.content_id ORDER BY 2, 1",
            (user_id,),
        )
    else:
        rows = await tx.all(
            "SELECT m.content_id, MIN(m.internal_date) FROM mailboxes b JOIN messages m ON m.mailbox_id = b.id"
            " WHERE b.user_id = %s AND m.content_id IN (SELECT x.content_id FROM messages x JOIN mailboxes xb"
            " ON xb.id = x.mailbox_id WHERE x.mailbox_id = %s AND xb.user_id = %s)"
            " GROUP BY m.content_id ORDER BY 2, 1",
            (user_id, mailbox_id, user_id),
        )
    return [(int(r[0]), float(r[1])) for r in rows]


async def received_page(
    tx: Tx, user_id: int, mailbox_id: int, count: int, total: bool
) -> tuple[list[tuple[int, float]], int | None]:
    """See :func:`courriel.store.sqlite.accountsync.received_page` (same walk, in batches of
    the index on (mailbox_id, internal_date, content_id); run in a snapshot)."""
    if await tx.one("SELECT 1 FROM mailboxes WHERE id = %s AND user_id = %s", (mailbox_id, user_id)) is None:
        return [], (0 if total else None)
    n = None
    if total:
        row = await tx.one("SELECT COUNT(DISTINCT content_id) FROM messages WHERE mailbox_id = %s", (mailbox_id,))
        n = int(row[0]) if row is not None else 0
    if count <= 0:
        return [], n
    first: dict[int, float] = {}
    size, offset = walk.PAGE_BATCH + count, 0
    while True:
        chunk = [
            (int(r[0]), float(r[1]))
            for r in await tx.all(
                "SELECT content_id, internal_date FROM messages WHERE mailbox_id = %s"
                " ORDER BY internal_date DESC, content_id DESC LIMIT %s OFFSET %s",
                (mailbox_id, size, offset),
            )
        ]
        offset += len(chunk)
        new = sorted({cid for cid, _ in chunk if cid not in first})
        if new:
            for r in await tx.all(
                "SELECT m.content_id, MIN(m.internal_date) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id"
                " WHERE b.user_id = %s AND m.content_id = ANY(%s::bigint[]) GROUP BY m.content_id",
                (user_id, new),
            ):
                first[int(r[0])] = float(r[1])
        for cid, d in chunk:
            if cid not in first or d < first[cid]:
                first[cid] = d
        done = len(chunk) < size
        page = walk.page_of(first, None if done else (chunk[-1][1], chunk[-1][0]), count)
        if page is not None:
            return page, n
        size = min(size * 2, 8192)


async def message_changes(tx: Tx, user_id: int, since: int) -> tuple[list[CopyChange], bool]:
    complete = (
        await tx.one("SELECT 1 FROM mailbox_tombstones WHERE user_id = %s AND modseq > %s LIMIT 1", (user_id, since))
        is None
    )
    boxes = [int(r[0]) for r in await tx.all("SELECT id FROM mailboxes WHERE user_id = %s", (user_id,))]
    touched = {
        int(r[0])
        for r in await tx.all(
            "SELECT content_id FROM messages WHERE mailbox_id = ANY(%s::bigint[]) AND modseq > %s", (boxes, since)
        )
    }
    removed = await tx.all(
        "SELECT content_id, mailbox_id, uid, created_modseq, modseq FROM expunged"
        " WHERE mailbox_id = ANY(%s::bigint[]) AND modseq > %s",
        (boxes, since),
    )
    touched.update(int(r[0]) for r in removed)
    out = [CopyChange(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), True) for r in removed]
    if touched:
        for r in await tx.all(
            "SELECT m.content_id, m.mailbox_id, m.uid, m.created_modseq, m.modseq FROM messages m"
            " WHERE m.mailbox_id = ANY(%s::bigint[]) AND m.content_id = ANY(%s::bigint[])",
            (boxes, sorted(touched)),
        ):
            out.append(CopyChange(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), False))
    return out, complete


async def mailbox_changes(tx: Tx, user_id: int, since: int) -> list[MailboxChange]:
    live = await tx.all(
        "SELECT id, created_modseq, highestmodseq FROM mailboxes WHERE user_id = %s AND highestmodseq > %s",
        (user_id, since),
    )
    gone = await tx.all(
        "SELECT mailbox_id, modseq FROM mailbox_tombstones WHERE user_id = %s AND modseq > %s"
        " AND mailbox_id NOT IN (SELECT id FROM mailboxes WHERE user_id = %s)",
        (user_id, since, user_id),
    )
    return [MailboxChange(int(r[0]), int(r[1]), int(r[2]), False) for r in live] + [
        MailboxChange(int(r[0]), 0, int(r[1]), True) for r in gone
    ]


_TOKEN_COLS = "t.id, t.user_id, u.address, t.label, t.created"


def _token(r: Row) -> AccessToken:
    return AccessToken(int(r[0]), int(r[1]), r[2], r[3], ts(r[4]))


async def add_token(tx: Tx, user_id: int, token_hash: bytes, label: str) -> AccessToken:
    if await tx.one("SELECT 1 FROM users WHERE id = %s", (user_id,)) is None:
        raise NotFound("no such user")
    row = await tx.one(
        "INSERT INTO access_tokens (user_id, hash, label, created) VALUES (%s, %s, %s, %s) RETURNING id",
        (user_id, token_hash, label, int(time.time())),
    )
    assert row is not None
    tok = await tx.one(
        f"SELECT {_TOKEN_COLS} FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = %s", (row[0],)
    )
    assert tok is not None
    return _token(tok)


async def list_tokens(tx: Tx, user_id: int | None) -> list[AccessToken]:
    sql = f"SELECT {_TOKEN_COLS} FROM access_tokens t JOIN users u ON u.id = t.user_id"
    if user_id is None:
        rows = await tx.all(sql + " ORDER BY t.id")
    else:
        rows = await tx.all(sql + " WHERE t.user_id = %s ORDER BY t.id", (user_id,))
    return [_token(r) for r in rows]


async def delete_token(tx: Tx, token_id: int) -> None:
    if await tx.run("DELETE FROM access_tokens WHERE id = %s", (token_id,)) == 0:
        raise NotFound(f"no token {token_id}")


async def token_user_id(tx: Tx, token_hash: bytes) -> int | None:
    row = await tx.one(
        "SELECT t.user_id FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = %s AND NOT u.disabled",
        (token_hash,),
    )
    return None if row is None else int(row[0])
