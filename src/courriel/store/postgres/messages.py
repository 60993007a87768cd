"""Message mutations on PostgreSQL, inside one transaction (see :mod:`.db`).

Every mutation first locks the rows of the users it changes (ascending id), which
serialises each user's changes: MODSEQs, UIDs and commits come in the same order, and a
quota check sees every earlier delivery. UIDs are allocated by ``UPDATE mailboxes SET
uidnext = uidnext + n ... RETURNING``, under those locks until COMMIT.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from courriel.store.api import (
    Appended,
    AppendTarget,
    Flag,
    FlagMode,
    FlagResult,
    MessageInfo,
    NotFound,
    QuotaExceeded,
    StoreError,
)
from courriel.store.changes import FlagsChanged, MessageAdded, MessagesExpunged
from courriel.store.content import ContentSummary, thread_key
from courriel.store.names import decode_keywords, encode_keywords
from courriel.store.postgres.db import Row, Tx
from courriel.store.sqlite.rows import message_info

MAX_UID = 2**32 - 1
SEL_COLS = "uid, modseq, flags, keywords, size, internal_date, content_id, created_modseq"


def clean(text: str | None) -> str | None:
    """PostgreSQL text holds neither NUL nor lone surrogates: replace them."""
    if text is None:
        return None
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


async def lock_users(tx: Tx, user_ids: Sequence[int]) -> None:
    """Lock user rows in ascending id order (FOR NO KEY UPDATE: foreign keys still work)."""
    await tx.run(
        "SELECT 1 FROM users WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE", (sorted(set(user_ids)),)
    )


async def next_modseq(tx: Tx, user_id: int) -> int:
    row = await tx.one("UPDATE users SET modseq = modseq + 1 WHERE id = %s RETURNING modseq", (user_id,))
    if row is None:
        raise NotFound("no such user")
    return int(row[0])


async def mailbox_row(tx: Tx, mailbox_id: int) -> Row:
    row = await tx.one(
        "SELECT id, user_id, uidvalidity, uidnext, noselect FROM mailboxes WHERE id = %s", (mailbox_id,)
    )
    if row is None:
        raise NotFound("no such mailbox")
    if row[4]:
        raise NotFound("mailbox is not selectable")
    return row


async def locked_mailbox(tx: Tx, mailbox_id: int) -> Row:
    """:func:`mailbox_row` with its owner's row locked (db.py's lock order), one round trip.

    The mailbox columns come from the statement's snapshot, taken before any wait for the
    lock: only ``id`` and ``user_id`` (never changed) and ``noselect`` are used, as the
    separate read before the lock gave them; what is read after it is current."""
    row = await tx.one(
        "SELECT mb.id, mb.user_id, mb.uidvalidity, mb.uidnext, mb.noselect FROM mailboxes mb"
        " JOIN users u ON u.id = mb.user_id WHERE mb.id = %s FOR NO KEY UPDATE OF u",
        (mailbox_id,),
    )
    if row is None:
        raise NotFound("no such mailbox")
    if row[4]:
        raise NotFound("mailbox is not selectable")
    return row


async def check_quota(
    tx: Tx, user_id: int, add_bytes: int, add_messages: int, quotas: tuple[int, int] | None = None
) -> None:
    q = quotas or await tx.one("SELECT quota_bytes, quota_messages FROM users WHERE id = %s", (user_id,))
    if q is None or (not q[0] and not q[1]):
        return
    used = await tx.one(
        "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(messages), 0) FROM mailboxes WHERE user_id = %s", (user_id,)
    )
    assert used is not None
    if q[0] and used[0] + add_bytes > q[0]:
        raise QuotaExceeded("storage quota exceeded")
    if q[1] and used[1] + add_messages > q[1]:
        raise QuotaExceeded("message count quota exceeded")


async def _allocate(tx: Tx, mailbox_id: int, rows: Sequence[tuple[int, int, int]], modseq: int) -> tuple[int, int]:
    """Take ``len(rows)`` UIDs and update the counters for (flags, size, _) rows.

    Returns (first UID, UIDVALIDITY)."""
    n = len(rows)
    unseen = sum(1 for f, _, _ in rows if not f & Flag.SEEN)
    deleted = sum(1 for f, _, _ in rows if f & Flag.DELETED)
    size = sum(s for _, s, _ in rows)
    row = await tx.one(
        "UPDATE mailboxes SET uidnext = uidnext + %s, highestmodseq = %s, messages = messages + %s,"
        " unseen = unseen + %s, deleted = deleted + %s, size = size + %s"
        " WHERE id = %s AND NOT noselect AND uidnext + %s - 1 <= %s RETURNING uidnext - %s, uidvalidity",
        (n, modseq, n, unseen, deleted, size, mailbox_id, n, MAX_UID, n),
    )
    if row is None:  # say why
        cur = await tx.one("SELECT uidnext FROM mailboxes WHERE id = %s AND NOT noselect", (mailbox_id,))
        if cur is None:
            raise NotFound("no such mailbox")
        raise StoreError("mailbox UID space exhausted")
    assert row is not None
    return int(row[0]), int(row[1])


async def _insert_rows(
    tx: Tx, mailbox_id: int, user_id: int, first_uid: int, modseq: int, now: int,
    items: Sequence[tuple[int, int, int, str, int]],
) -> list[int]:  # fmt: skip
    """Insert message rows (content_id, size, flags, keywords, internal_date) from ``first_uid``."""
    uids = list(range(first_uid, first_uid + len(items)))
    await tx.run(
        "INSERT INTO messages (mailbox_id, uid, content_id, modseq, flags, keywords, size, internal_date,"
        " savedate, created_modseq, sort_date, sort_subject)"
        " SELECT %s, t.uid, t.cid, %s, t.flags, t.kw, t.size, t.idate, %s, %s,"
        " COALESCE(c.sent_date, t.idate), c.base_subject"
        " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::int[], %s::text[], %s::bigint[])"
        " AS t(uid, cid, size, flags, kw, idate) JOIN contents c ON c.id = t.cid ORDER BY t.uid",
        (
            mailbox_id, modseq, now, modseq, uids, [i[0] for i in items], [i[1] for i in items],
            [i[2] for i in items], [i[3] for i in items], [i[4] for i in items],
        ),
    )  # fmt: skip
    for uid, (_, size, flags, kw, _) in zip(uids, items):
        tx.changes.append(MessageAdded(user_id, modseq, mailbox_id, uid, flags, decode_keywords(kw), size))
    return uids


_CONTENT_CTE = (
    "WITH b AS (INSERT INTO blob_data (blob, data) SELECT %s, %s WHERE %s),"
    " c AS (INSERT INTO contents (blob, size, refs, mail_from, sent_date, envelope, body, subject,"
    " base_subject, from_cf, to_cf, cc_cf, bcc_cf, subject_cf, sort_from, sort_to, sort_cc,"
    " display_from, display_to, message_id, in_reply_to, refs_header, headers, preview,"
    " has_attachment, thread_id)"
    " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id),"
    " t AS (INSERT INTO contents_text (content_id, head, body) SELECT id, %s, %s FROM c)"
)

# One delivery to one mailbox in one round trip (the owner is locked and its MODSEQ taken
# before): the content rows, UIDNEXT advanced under the mailbox row lock, the message row.
# The statements of a WITH share one snapshot, so the message row's sort columns come from
# the parameters, not from the contents row inserted beside it. No UID (NULL) when the
# mailbox is not selectable or its UID space is exhausted.
_DELIVER_ONE = (
    _CONTENT_CTE + ","
    " m AS (UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = %s, messages = messages + 1,"
    " unseen = unseen + %s, deleted = deleted + %s, size = size + %s"
    " WHERE id = %s AND NOT noselect AND uidnext <= %s RETURNING uidnext - 1 AS uid, uidvalidity),"
    " i AS (INSERT INTO messages (mailbox_id, uid, content_id, modseq, flags, keywords, size, internal_date,"
    " savedate, created_modseq, sort_date, sort_subject)"
    " SELECT %s::bigint, m.uid, c.id, %s::bigint, %s::int, %s::text, %s::bigint, %s::bigint, %s::bigint,"
    " %s::bigint, %s::bigint, %s::text FROM m, c)"
    " SELECT c.id, m.uid, m.uidvalidity FROM c LEFT JOIN m ON true"
)


def _content_args(blob: str, data: bytes | None, s: ContentSummary, refs: int, mail_from: str | None) -> list[Any]:
    return [
        blob, data if data is not None else b"", data is not None, *(clean(v) if isinstance(v, str) else v for v in (
            blob, s.size, refs, mail_from, s.sent_date, s.envelope, s.body, s.subject,
            s.base_subject, s.from_cf, s.to_cf, s.cc_cf, s.bcc_cf, s.subject_cf, s.sort_from,
            s.sort_to, s.sort_cc, s.display_from, s.display_to, s.message_id, s.in_reply_to,
            s.refs_header, s.headers, s.preview, s.has_attachment,
            thread_key(s.refs_header, s.in_reply_to, s.message_id),
        )), clean(s.head_text.casefold()), clean(s.body_text.casefold()),
    ]  # fmt: skip


async def insert_content(
    tx: Tx, blob: str, data: bytes | None, s: ContentSummary, refs: int, mail_from: str | None
) -> int:
    # One round trip: the bytes (bytea mode), the content row and its full-text row.
    row = await tx.one(_CONTENT_CTE + " SELECT id FROM c", _content_args(blob, data, s, refs, mail_from))
    assert row is not None
    content_id = int(row[0])
    return content_id


async def _deliver_one(
    tx: Tx, blob: str, data: bytes | None, s: ContentSummary, t: AppendTarget, user_id: int, modseq: int,
    internal_date: int, mail_from: str | None,
) -> Appended:  # fmt: skip
    flags, kw, now = int(t.flags), encode_keywords(t.keywords), int(time.time())
    sort_date = s.sent_date if s.sent_date is not None else internal_date
    row = await tx.one(
        _DELIVER_ONE,
        [
            *_content_args(blob, data, s, 1, mail_from),
            modseq, 0 if flags & Flag.SEEN else 1, 1 if flags & Flag.DELETED else 0, s.size, t.mailbox_id, MAX_UID,
            t.mailbox_id, modseq, flags, kw, s.size, internal_date, now, modseq, sort_date, clean(s.base_subject),
        ],
    )  # fmt: skip
    assert row is not None
    if row[1] is None:  # say why (the savepoint or transaction is rolled back)
        cur = await tx.one("SELECT uidnext FROM mailboxes WHERE id = %s AND NOT noselect", (t.mailbox_id,))
        if cur is None:
            raise NotFound("no such mailbox")
        raise StoreError("mailbox UID space exhausted")
    uid = int(row[1])
    tx.changes.append(MessageAdded(user_id, modseq, t.mailbox_id, uid, flags, decode_keywords(kw), s.size))
    return Appended(t.mailbox_id, int(row[2]), uid, modseq, int(row[0]))


async def deliver(
    tx: Tx,
    blob: str,
    data: bytes | None,
    summary: ContentSummary,
    targets: Sequence[AppendTarget],
    internal_date: int,
    mail_from: str | None,
    check: bool,
) -> list[Appended]:
    ids = [t.mailbox_id for t in targets]
    quotas: dict[int, tuple[int, int]] = {}
    if len(set(ids)) == 1:
        # The common case in one round trip: lock the owner, take its MODSEQ.
        row = await tx.one(
            "UPDATE users SET modseq = modseq + 1 WHERE id = (SELECT user_id FROM mailboxes WHERE id = %s)"
            " RETURNING id, modseq, quota_bytes, quota_messages",
            (ids[0],),
        )
        if row is None:
            raise NotFound("no such mailbox")
        owners = {ids[0]: int(row[0])}
        modseqs = {int(row[0]): int(row[1])}
        quotas[int(row[0])] = (int(row[2]), int(row[3]))
    else:
        owners = {r[0]: int(r[1]) for r in await tx.all(
            "SELECT id, user_id FROM mailboxes WHERE id = ANY(%s::bigint[])", (ids,)
        )}  # fmt: skip
        if any(i not in owners for i in ids):
            raise NotFound("no such mailbox")
        users = sorted(set(owners.values()))
        await lock_users(tx, users)
        modseqs = {u: await next_modseq(tx, u) for u in users}
    if len(targets) == 1 and not (check and any(quotas.get(owners[ids[0]], (1, 1)))):
        t = targets[0]
        user_id = owners[t.mailbox_id]
        return [await _deliver_one(tx, blob, data, summary, t, user_id, modseqs[user_id], internal_date, mail_from)]
    content_id = await insert_content(tx, blob, data, summary, len(targets), mail_from)
    now = int(time.time())
    out = []
    for t in targets:
        user_id = owners[t.mailbox_id]
        if check:
            await check_quota(tx, user_id, summary.size, 1, quotas.get(user_id))
        modseq = modseqs[user_id]
        first, uidvalidity = await _allocate(tx, t.mailbox_id, [(int(t.flags), summary.size, 0)], modseq)
        kw = encode_keywords(t.keywords)
        await _insert_rows(
            tx, t.mailbox_id, user_id, first, modseq, now, [(content_id, summary.size, int(t.flags), kw, internal_date)]
        )
        out.append(Appended(t.mailbox_id, uidvalidity, first, modseq, content_id))
    return out


async def select(tx: Tx, mailbox_id: int, uids: Sequence[int]) -> list[Row]:
    if not uids:
        return []
    return await tx.all(
        f"SELECT {SEL_COLS} FROM messages WHERE mailbox_id = %s AND uid = ANY(%s::bigint[]) ORDER BY uid",
        (mailbox_id, sorted(set(uids))),
    )


async def copy(tx: Tx, src_id: int, uids: Sequence[int], dst_id: int, expunge_source: bool) -> list[tuple[int, int]]:
    src = await mailbox_row(tx, src_id)
    dst = await mailbox_row(tx, dst_id)
    await lock_users(tx, [src[1], dst[1]])
    rows = await select(tx, src_id, uids)
    if not rows:
        return []
    if not expunge_source or src[1] != dst[1]:
        await check_quota(tx, dst[1], sum(r[4] for r in rows), len(rows))
    modseq = await next_modseq(tx, dst[1])
    src_modseq = modseq if src[1] == dst[1] else await next_modseq(tx, src[1])
    now = int(time.time())
    first, _ = await _allocate(tx, dst_id, [(r[2], r[4], 0) for r in rows], modseq)
    new_uids = await _insert_rows(
        tx, dst_id, dst[1], first, modseq, now, [(r[6], r[4], r[2], r[3], r[5]) for r in rows]
    )
    if not expunge_source:
        await _add_refs(tx, Counter(int(r[6]) for r in rows))
    else:
        await remove(tx, src, rows, src_modseq, drop_content=False)
    return [(int(r[0]), new) for r, new in zip(rows, new_uids)]


async def _add_refs(tx: Tx, counts: Counter[int]) -> None:
    await tx.run(
        "UPDATE contents c SET refs = c.refs + t.n FROM unnest(%s::bigint[], %s::int[]) AS t(id, n)"
        " WHERE c.id = t.id",
        (list(counts), list(counts.values())),
    )


async def remove(tx: Tx, mbox: Row, rows: Sequence[Row], modseq: int, drop_content: bool = True) -> list[int]:
    """Delete message rows, leave tombstones, fix counters, release contents."""
    mailbox_id, user_id = mbox[0], mbox[1]
    uids = [int(r[0]) for r in rows]
    unseen = sum(1 for r in rows if not r[2] & Flag.SEEN)
    deleted = sum(1 for r in rows if r[2] & Flag.DELETED)
    size = sum(int(r[4]) for r in rows)
    await tx.run("DELETE FROM messages WHERE mailbox_id = %s AND uid = ANY(%s::bigint[])", (mailbox_id, uids))
    await tx.run(
        "INSERT INTO expunged (mailbox_id, uid, modseq, content_id, created_modseq)"
        " SELECT %s, t.uid, %s, t.cid, t.cm FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS t(uid, cid, cm)"
        " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq, content_id = EXCLUDED.content_id,"
        " created_modseq = EXCLUDED.created_modseq",
        (mailbox_id, modseq, uids, [int(r[6]) for r in rows], [int(r[7]) for r in rows]),
    )
    await tx.run(
        "UPDATE mailboxes SET highestmodseq = %s, messages = messages - %s, unseen = unseen - %s,"
        " deleted = deleted - %s, size = size - %s WHERE id = %s",
        (modseq, len(uids), unseen, deleted, size, mailbox_id),
    )
    tx.changes.append(MessagesExpunged(user_id, modseq, mailbox_id, tuple(uids)))
    if drop_content:
        await release_contents(tx, Counter(int(r[6]) for r in rows))
    return uids


async def release_content(tx: Tx, content_id: int) -> None:
    await release_contents(tx, Counter({content_id: 1}))


async def release_contents(tx: Tx, counts: Counter[int]) -> None:
    if not counts:
        return
    rows = await tx.all(
        "UPDATE contents c SET refs = c.refs - t.n FROM unnest(%s::bigint[], %s::int[]) AS t(id, n)"
        " WHERE c.id = t.id RETURNING c.id, c.refs, c.blob",
        (list(counts), list(counts.values())),
    )
    await drop_contents(tx, [(int(r[0]), str(r[2])) for r in rows if r[1] <= 0])


async def drop_contents(tx: Tx, dead: Sequence[tuple[int, str]]) -> None:
    """Delete unreferenced contents (id, blob): their text rows, bytes (bytea mode) and
    rows, in one round trip; in files mode the blobs are unlinked after the commit."""
    if not dead:
        return
    ids = [d[0] for d in dead]
    blobs = [d[1] for d in dead]
    await tx.run(
        "WITH t AS (DELETE FROM contents_text WHERE content_id = ANY(%s::bigint[])),"
        " b AS (DELETE FROM blob_data WHERE %s AND blob = ANY(%s::text[]))"
        " DELETE FROM contents WHERE id = ANY(%s::bigint[])",
        (ids, tx.bytea, blobs, ids),
    )
    if not tx.bytea:
        tx.dead_blobs.extend(blobs)


# An expunge in one round trip after the owner's lock: the message rows deleted (their
# columns RETURNING), the owner's MODSEQ (only when some were), the tombstones, the
# mailbox's counters, the contents' reference counts ({where}: which rows go).
_EXPUNGE = (
    "WITH d AS (DELETE FROM messages WHERE mailbox_id = %(mb)s{where}"
    " RETURNING uid, flags, size, content_id, created_modseq),"
    " s AS (UPDATE users SET modseq = modseq + 1 WHERE id = %(user)s AND EXISTS (SELECT 1 FROM d)"
    " RETURNING modseq),"
    " e AS (INSERT INTO expunged (mailbox_id, uid, modseq, content_id, created_modseq)"
    " SELECT %(mb)s, d.uid, s.modseq, d.content_id, d.created_modseq FROM d, s"
    " ON CONFLICT (mailbox_id, uid) DO UPDATE SET modseq = EXCLUDED.modseq, content_id = EXCLUDED.content_id,"
    " created_modseq = EXCLUDED.created_modseq),"
    " b AS (UPDATE mailboxes SET highestmodseq = s.modseq, messages = messages - (SELECT count(*) FROM d),"
    " unseen = unseen - (SELECT count(*) FROM d WHERE (d.flags & %(seen)s) = 0),"
    " deleted = deleted - (SELECT count(*) FROM d WHERE (d.flags & %(del)s) != 0),"
    " size = size - (SELECT COALESCE(sum(d.size), 0) FROM d) FROM s WHERE id = %(mb)s),"
    " r AS (UPDATE contents c SET refs = c.refs - t.n"
    " FROM (SELECT content_id, count(*) AS n FROM d GROUP BY content_id) AS t WHERE c.id = t.content_id"
    " RETURNING c.id, c.refs, c.blob)"
    " SELECT (SELECT modseq FROM s), (SELECT array_agg(uid ORDER BY uid) FROM d),"
    " (SELECT array_agg(id ORDER BY id) FROM r WHERE refs <= 0),"
    " (SELECT array_agg(blob ORDER BY id) FROM r WHERE refs <= 0)"
)
_EXPUNGE_DELETED = _EXPUNGE.format(where=" AND (flags & %(del)s) != 0")
_EXPUNGE_DELETED_UIDS = _EXPUNGE.format(where=" AND uid = ANY(%(uids)s::bigint[]) AND (flags & %(del)s) != 0")
_EXPUNGE_UIDS = _EXPUNGE.format(where=" AND uid = ANY(%(uids)s::bigint[])")


async def _expunge(tx: Tx, mbox: Row, sql: str, uids: Sequence[int] = ()) -> list[int]:
    mailbox_id, user_id = int(mbox[0]), int(mbox[1])
    args: dict[str, Any] = {"mb": mailbox_id, "user": user_id, "seen": int(Flag.SEEN), "del": int(Flag.DELETED),
            "uids": sorted(set(uids))}  # fmt: skip
    row = await tx.one(sql, args)
    assert row is not None
    if row[0] is None:  # nothing matched
        return []
    modseq, gone = int(row[0]), [int(u) for u in row[1]]
    tx.changes.append(MessagesExpunged(user_id, modseq, mailbox_id, tuple(gone)))
    if row[2]:
        await drop_contents(tx, [(int(i), str(b)) for i, b in zip(row[2], row[3])])
    return gone


async def expunge(tx: Tx, mailbox_id: int, uids: Sequence[int] | None) -> list[int]:
    mbox = await locked_mailbox(tx, mailbox_id)
    if uids is None:
        return await _expunge(tx, mbox, _EXPUNGE_DELETED)
    if not uids:
        return []
    return await _expunge(tx, mbox, _EXPUNGE_DELETED_UIDS, uids)


async def delete_messages(tx: Tx, mailbox_id: int, uids: Sequence[int]) -> list[int]:
    """\\Deleted + expunge of exactly ``uids`` under one MODSEQ (POP3 UPDATE)."""
    mbox = await locked_mailbox(tx, mailbox_id)
    if not uids:
        return []
    return await _expunge(tx, mbox, _EXPUNGE_UIDS, uids)


async def store_flags(
    tx: Tx,
    mailbox_id: int,
    uids: Sequence[int],
    mode: FlagMode,
    flags: Flag,
    keywords: frozenset[str],
    unchanged_since: int | None,
) -> FlagResult:
    encode_keywords(keywords)  # validates
    mbox = await locked_mailbox(tx, mailbox_id)
    if mode is not FlagMode.REPLACE and not keywords and unchanged_since is None:
        return await _add_remove_flags(tx, mbox, uids, flags if mode is FlagMode.ADD else Flag(0),
                                       flags if mode is FlagMode.REMOVE else Flag(0))  # fmt: skip
    rows = await select(tx, mailbox_id, uids)
    changed: list[MessageInfo] = []
    modified: list[int] = []
    updates: list[tuple[int, int, str]] = []
    done: list[tuple[int, int, str, frozenset[str], int, int, int]] = []
    d_unseen = d_deleted = 0
    for uid, old_modseq, old_flags, old_kw_text, size, idate, content_id, _cm in rows:
        if unchanged_since is not None and old_modseq > unchanged_since:
            modified.append(uid)  # RFC 7162 §3.2
            continue
        old_kw = decode_keywords(old_kw_text)
        if mode is FlagMode.ADD:
            new_flags, new_kw = old_flags | int(flags), old_kw | keywords
        elif mode is FlagMode.REMOVE:
            new_flags, new_kw = old_flags & ~int(flags), old_kw - keywords
        else:
            new_flags, new_kw = int(flags), keywords
        if new_flags == old_flags and new_kw == old_kw:
            continue
        kw_text = encode_keywords(new_kw)
        updates.append((uid, new_flags, kw_text))
        done.append((uid, new_flags, kw_text, new_kw, size, idate, content_id))
        d_unseen += _bit(old_flags, Flag.SEEN) - _bit(new_flags, Flag.SEEN)
        d_deleted += _bit(new_flags, Flag.DELETED) - _bit(old_flags, Flag.DELETED)
    if updates:
        # The owner's MODSEQ, the message rows and the mailbox's counters in one round trip.
        row = await tx.one(
            "WITH s AS (UPDATE users SET modseq = modseq + 1 WHERE id = %s RETURNING modseq),"
            " w AS (UPDATE messages m SET flags = t.f, keywords = t.k, modseq = s.modseq"
            " FROM s, unnest(%s::bigint[], %s::int[], %s::text[]) AS t(uid, f, k)"
            " WHERE m.mailbox_id = %s AND m.uid = t.uid),"
            " b AS (UPDATE mailboxes SET highestmodseq = s.modseq, unseen = unseen + %s, deleted = deleted + %s"
            " FROM s WHERE id = %s)"
            " SELECT modseq FROM s",
            (mbox[1], [u[0] for u in updates], [u[1] for u in updates], [u[2] for u in updates], mailbox_id,
             d_unseen, d_deleted, mailbox_id),
        )  # fmt: skip
        if row is None:
            raise NotFound("no such user")
        modseq = int(row[0])
        for uid, new_flags, kw_text, new_kw, size, idate, content_id in done:
            changed.append(message_info((uid, modseq, new_flags, kw_text, size, idate, content_id)))
            tx.changes.append(FlagsChanged(mbox[1], modseq, mailbox_id, uid, new_flags, new_kw))
    return FlagResult(changed, modified)


# +FLAGS / -FLAGS of system flags (the common STORE) in one round trip after the owner's
# lock: the rows that change (old and new flags), the owner's MODSEQ only when some do,
# the rows updated (RETURNING what the result and the changes need), the mailbox's
# counters from the old and new flags.
_FLAGS_DELTA = "(SELECT count(*) FILTER (WHERE (new & {bit}) != 0 AND (old & {bit}) = 0)" \
    " - count(*) FILTER (WHERE (new & {bit}) = 0 AND (old & {bit}) != 0) FROM o)"  # fmt: skip
_ADD_REMOVE_FLAGS = (
    "WITH o AS (SELECT uid, flags AS old, (flags | %(add)s::int) & ~%(rm)s::int AS new FROM messages"
    " WHERE mailbox_id = %(mb)s AND uid = ANY(%(uids)s::bigint[]) AND ((flags | %(add)s::int) & ~%(rm)s::int) != flags),"
    " s AS (UPDATE users SET modseq = modseq + 1 WHERE id = %(user)s AND EXISTS (SELECT 1 FROM o) RETURNING modseq),"
    " w AS (UPDATE messages m SET flags = o.new, modseq = s.modseq FROM o, s WHERE m.mailbox_id = %(mb)s"
    " AND m.uid = o.uid RETURNING m.uid, m.flags, m.keywords, m.size, m.internal_date, m.content_id),"
    " b AS (UPDATE mailboxes SET highestmodseq = s.modseq,"
    f" unseen = unseen - {_FLAGS_DELTA.format(bit=int(Flag.SEEN))},"
    f" deleted = deleted + {_FLAGS_DELTA.format(bit=int(Flag.DELETED))} FROM s WHERE id = %(mb)s)"
    " SELECT s.modseq, w.uid, w.flags, w.keywords, w.size, w.internal_date, w.content_id FROM w, s ORDER BY w.uid"
)


async def _add_remove_flags(tx: Tx, mbox: Row, uids: Sequence[int], add: Flag, remove: Flag) -> FlagResult:
    if not uids:
        return FlagResult([], [])
    mailbox_id, user_id = int(mbox[0]), int(mbox[1])
    args = {"mb": mailbox_id, "user": user_id, "add": int(add), "rm": int(remove), "uids": sorted(set(uids))}
    rows = await tx.all(_ADD_REMOVE_FLAGS, args)
    changed: list[MessageInfo] = []
    for modseq, uid, new_flags, kw_text, size, idate, content_id in rows:
        changed.append(message_info((uid, modseq, new_flags, kw_text, size, idate, content_id)))
        tx.changes.append(FlagsChanged(user_id, int(modseq), mailbox_id, int(uid), int(new_flags),
                                       decode_keywords(kw_text)))  # fmt: skip
    return FlagResult(changed, [])


def _bit(flags: int, bit: Flag) -> int:
    return 1 if flags & bit else 0


def info_rows(rows: Sequence[Any]) -> list[MessageInfo]:
    return [message_info(r) for r in rows]
