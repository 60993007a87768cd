"""Message mutations, run inside the writer's transaction (see :mod:`.db`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
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
from courriel.store.sqlite.db import Tx
from courriel.store.sqlite.rows import flag_of, ts

MAX_UID = 2**32 - 1
_NO_KW: frozenset[str] = frozenset()


def next_modseq(tx: Tx, user_id: int) -> int:
    row = tx.one("UPDATE users SET modseq = modseq + 1 WHERE id = ? RETURNING modseq", (user_id,))
    if row is None:
        raise NotFound("no such user")
    return int(row[0])


def mailbox_row(tx: Tx, mailbox_id: int) -> Any:
    row = tx.one(
        "SELECT id, user_id, uidvalidity, uidnext, noselect FROM mailboxes WHERE id = ?", (mailbox_id,)
    )
    if row is None:
        raise NotFound("no such mailbox")
    if row[4]:
        raise NotFound("mailbox is not selectable")
    return row


def check_quota(tx: Tx, user_id: int, add_bytes: int, add_messages: int) -> None:
    q = tx.one("SELECT quota_bytes, quota_messages FROM users WHERE id = ?", (user_id,))
    if q is None or (not q[0] and not q[1]):
        return
    used = tx.one(
        "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(messages), 0) FROM mailboxes WHERE user_id = ?",
        (user_id,),
    )
    if q[0] and used[0] + add_bytes > q[0]:
        raise QuotaExceeded("storage quota exceeded")
    if q[1] and used[1] + add_messages > q[1]:
        raise QuotaExceeded("message count quota exceeded")


def _add_message(
    tx: Tx,
    mbox: Any,
    content_id: int,
    size: int,
    flags: int,
    keywords: str,
    internal_date: int,
    modseq: int,
    now: int,
) -> int:
    mailbox_id, user_id, _uidvalidity, uid = mbox[0], mbox[1], mbox[2], mbox[3]
    if uid > MAX_UID:
        raise StoreError("mailbox UID space exhausted")
    tx.run(
        "INSERT INTO messages (mailbox_id, uid, content_id, modseq, flags, keywords, size,"
        " internal_date, savedate, created_modseq, sort_date, sort_subject)"
        " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(c.sent_date, ?), c.base_subject"
        " FROM contents c WHERE c.id = ?",  # the sort keys (schema 7) from the content
        (mailbox_id, uid, content_id, modseq, flags, keywords, size, internal_date, now, modseq,
         internal_date, content_id),
    )
    tx.run(
        "UPDATE mailboxes SET uidnext = ?, highestmodseq = ?, messages = messages + 1,"
        " unseen = unseen + ?, deleted = deleted + ?, size = size + ? WHERE id = ?",
        (
            uid + 1,
            modseq,
            0 if flags & Flag.SEEN else 1,
            1 if flags & Flag.DELETED else 0,
            size,
            mailbox_id,
        ),
    )
    tx.changes.append(
        MessageAdded(user_id, modseq, mailbox_id, uid, flags, decode_keywords(keywords), size, content_id)
    )
    return int(uid)


def deliver(
    tx: Tx,
    blob: str,
    summary: ContentSummary,
    targets: Sequence[AppendTarget],
    internal_date: int,
    mail_from: str | None,
    check: bool,
    file_synced: bool = False,
) -> list[Appended]:
    """Insert a content row and a message per target. The file's fsync is left to the
    writer's commit (``tx.new_blobs``) unless ``file_synced`` (its writer fsyncs it)."""
    s = summary
    cur = tx.run(
        "INSERT INTO contents (blob, size, refs, mail_from, sent_date, envelope, body, subject,"
        " base_subject, from_cf, to_cf, cc_cf, bcc_cf, subject_cf, sort_from, sort_to, sort_cc,"
        " display_from, display_to, message_id, in_reply_to, refs_header, headers, preview,"
        " has_attachment, indexed, thread_id)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,0,?)",
        (
            blob, s.size, len(targets), mail_from, s.sent_date, s.envelope, s.body, s.subject,
            s.base_subject, s.from_cf, s.to_cf, s.cc_cf, s.bcc_cf, s.subject_cf, s.sort_from,
            s.sort_to, s.sort_cc, s.display_from, s.display_to, s.message_id, s.in_reply_to,
            s.refs_header, s.headers, s.preview, int(s.has_attachment),
            thread_key(s.refs_header, s.in_reply_to, s.message_id),
        ),
    )  # fmt: skip
    content_id = int(cur.lastrowid or 0)
    # The full-text index (schema 4) is filled after the commit, off the acknowledged path
    # (fulltext.PendingIndex): ``indexed = 0`` until then, durably, so a crash leaves the
    # row to the pass at open, and search reads the file of a row not indexed yet.
    if not file_synced:
        tx.new_blobs.append(blob)
    now = int(time.time())
    out = []
    modseqs: dict[int, int] = {}
    for target in targets:
        mbox = mailbox_row(tx, target.mailbox_id)
        user_id = mbox[1]
        if check:
            check_quota(tx, user_id, s.size, 1)
        if user_id not in modseqs:
            modseqs[user_id] = next_modseq(tx, user_id)
        modseq = modseqs[user_id]
        uid = _add_message(
            tx, mbox, content_id, s.size, int(target.flags), encode_keywords(target.keywords),
            internal_date, modseq, now,
        )  # fmt: skip
        out.append(Appended(mbox[0], mbox[2], uid, modseq, content_id))
    return out


def _select(tx: Tx, mailbox_id: int, uids: Sequence[int]) -> list[Any]:
    if not uids:
        return []
    rows: list[Any] = []
    uniq = sorted(set(uids))
    if uniq[-1] - uniq[0] + 1 == len(uniq):  # a range (1:1000): one statement
        return tx.all(
            "SELECT uid, modseq, flags, keywords, size, internal_date, content_id"
            " FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid",
            (mailbox_id, uniq[0], uniq[-1]),
        )
    for i in range(0, len(uniq), 500):
        chunk = uniq[i : i + 500]
        rows.extend(
            tx.all(
                "SELECT uid, modseq, flags, keywords, size, internal_date, content_id"
                f" FROM messages WHERE mailbox_id = ? AND uid IN ({','.join('?' * len(chunk))})"
                " ORDER BY uid",
                (mailbox_id, *chunk),
            )
        )
    return rows


def copy(tx: Tx, src_id: int, uids: Sequence[int], dst_id: int, expunge_source: bool) -> list[tuple[int, int]]:
    src = mailbox_row(tx, src_id)
    dst = mailbox_row(tx, dst_id)
    rows = _select(tx, src_id, uids)
    if not rows:
        return []
    if not expunge_source or src[1] != dst[1]:
        check_quota(tx, dst[1], sum(r[4] for r in rows), len(rows))
    modseq = next_modseq(tx, dst[1])
    src_modseq = modseq if src[1] == dst[1] else next_modseq(tx, src[1])
    now = int(time.time())
    pairs = []
    uidnext = dst[3]
    for uid, _m, flags, keywords, size, idate, content_id in rows:
        new_uid = _add_message(
            tx, (dst[0], dst[1], dst[2], uidnext), content_id, size, flags, keywords, idate, modseq, now
        )
        uidnext += 1
        pairs.append((uid, new_uid))
        if not expunge_source:
            tx.run("UPDATE contents SET refs = refs + 1 WHERE id = ?", (content_id,))
    if expunge_source:
        _remove(tx, src, rows, src_modseq, drop_content=False)
    return pairs


def _remove(tx: Tx, mbox: Any, rows: list[Any], modseq: int, drop_content: bool = True) -> list[int]:
    """Delete message rows, leave tombstones, fix counters, release contents."""
    mailbox_id, user_id = mbox[0], mbox[1]
    uids = []
    unseen = deleted = size = 0
    for uid, _m, flags, _k, msize, _d, content_id in rows:
        gone = tx.one(
            "DELETE FROM messages WHERE mailbox_id = ? AND uid = ? RETURNING created_modseq", (mailbox_id, uid)
        )
        tx.run(
            "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq, content_id, created_modseq)"
            " VALUES (?, ?, ?, ?, ?)",
            (mailbox_id, uid, modseq, content_id, gone[0] if gone else 0),
        )
        uids.append(uid)
        unseen += 0 if flags & Flag.SEEN else 1
        deleted += 1 if flags & Flag.DELETED else 0
        size += msize
        if drop_content:
            release_content(tx, content_id)
    tx.run(
        "UPDATE mailboxes SET highestmodseq = ?, messages = messages - ?, unseen = unseen - ?,"
        " deleted = deleted - ?, size = size - ? WHERE id = ?",
        (modseq, len(uids), unseen, deleted, size, mailbox_id),
    )
    tx.changes.append(MessagesExpunged(user_id, modseq, mailbox_id, tuple(uids)))
    return uids


def release_content(tx: Tx, content_id: int) -> None:
    row = tx.one("UPDATE contents SET refs = refs - 1 WHERE id = ? RETURNING refs, blob", (content_id,))
    if row is not None and row[0] <= 0:
        tx.run("DELETE FROM contents WHERE id = ?", (content_id,))
        tx.run("DELETE FROM contents_fts WHERE rowid = ?", (content_id,))
        tx.dead_blobs.append(row[1])


def expunge(tx: Tx, mailbox_id: int, uids: Sequence[int] | None) -> list[int]:
    mbox = mailbox_row(tx, mailbox_id)
    if uids is None:
        rows = tx.all(
            "SELECT uid, modseq, flags, keywords, size, internal_date, content_id FROM messages"
            " WHERE mailbox_id = ? AND (flags & ?) != 0 ORDER BY uid",
            (mailbox_id, int(Flag.DELETED)),
        )
    else:
        rows = [r for r in _select(tx, mailbox_id, uids) if r[2] & Flag.DELETED]
    if not rows:
        return []
    return _remove(tx, mbox, rows, next_modseq(tx, mbox[1]))


def delete_messages(tx: Tx, mailbox_id: int, uids: Sequence[int]) -> list[int]:
    """\\Deleted + expunge of exactly ``uids`` under one MODSEQ; the change feed reports the
    expunge (a flag change immediately expunged is not worth a FlagsChanged)."""
    mbox = mailbox_row(tx, mailbox_id)
    rows = _select(tx, mailbox_id, uids)
    if not rows:
        return []
    return _remove(tx, mbox, rows, next_modseq(tx, mbox[1]))


def store_flags(
    tx: Tx,
    mailbox_id: int,
    uids: Sequence[int],
    mode: FlagMode,
    flags: Flag,
    keywords: frozenset[str],
    unchanged_since: int | None,
) -> FlagResult:
    mbox = mailbox_row(tx, mailbox_id)
    rows = _select(tx, mailbox_id, uids)
    encode_keywords(keywords)  # validates
    modseq = 0
    changed: list[MessageInfo] = []
    modified: list[int] = []
    updates: list[tuple[int, str, int, int, int]] = []
    d_unseen = d_deleted = 0
    bits, seen, deleted = int(flags), int(Flag.SEEN), int(Flag.DELETED)  # ints: Flag's operators are slow
    # Without keywords, ADD and REMOVE leave each message's keywords as they are.
    same_kw = not keywords and mode is not FlagMode.REPLACE
    kw_cache: dict[str, frozenset[str]] = {}
    dates: dict[int, datetime] = {}
    feed, user_id = tx.changes, mbox[1]
    for uid, old_modseq, old_flags, old_kw_text, size, idate, content_id in rows:
        if unchanged_since is not None and old_modseq > unchanged_since:
            modified.append(uid)  # RFC 7162 §3.2
            continue
        if same_kw:
            new_flags = old_flags | bits if mode is FlagMode.ADD else old_flags & ~bits
            if new_flags == old_flags:
                continue
            kw_text = old_kw_text
        else:
            old_kw = decode_keywords(old_kw_text)
            if mode is FlagMode.ADD:
                new_flags, new_kw = old_flags | bits, old_kw | keywords
            elif mode is FlagMode.REMOVE:
                new_flags, new_kw = old_flags & ~bits, old_kw - keywords
            else:
                new_flags, new_kw = bits, keywords
            if new_flags == old_flags and new_kw == old_kw:
                continue
            kw_text = encode_keywords(new_kw)
        if not modseq:
            modseq = next_modseq(tx, mbox[1])
        updates.append((new_flags, kw_text, modseq, mailbox_id, uid))
        d_unseen += bool(old_flags & seen) - bool(new_flags & seen)
        d_deleted += bool(new_flags & deleted) - bool(old_flags & deleted)
        # MessageInfo built here rather than by rows.message_info: keywords decoded once per
        # distinct text and dates converted once per distinct value (1,000-message STOREs).
        kw = kw_cache.get(kw_text)
        if kw is None:
            kw = kw_cache[kw_text] = decode_keywords(kw_text) if kw_text else _NO_KW
        date = dates.get(idate)
        if date is None:
            date = dates[idate] = ts(idate)
        changed.append(MessageInfo(uid, modseq, flag_of(new_flags), kw, size, date, content_id))
        feed.append(FlagsChanged(user_id, modseq, mailbox_id, uid, new_flags, kw))
    if modseq and same_kw and unchanged_since is None and rows[-1][0] - rows[0][0] + 1 == len(rows):
        # Every UID of the range was selected: one statement changes the same rows as above
        # (half the cost of one per message).
        if mode is FlagMode.ADD:
            tx.run(
                "UPDATE messages SET flags = flags | ?, modseq = ?"
                " WHERE mailbox_id = ? AND uid BETWEEN ? AND ? AND (flags & ?) != ?",
                (bits, modseq, mailbox_id, rows[0][0], rows[-1][0], bits, bits),
            )
        else:
            tx.run(
                "UPDATE messages SET flags = flags & ?, modseq = ?"
                " WHERE mailbox_id = ? AND uid BETWEEN ? AND ? AND (flags & ?) != 0",
                (~bits, modseq, mailbox_id, rows[0][0], rows[-1][0], bits),
            )
    elif modseq:
        tx.conn.executemany(
            "UPDATE messages SET flags = ?, keywords = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?", updates
        )
    if modseq:
        tx.run(
            "UPDATE mailboxes SET highestmodseq = ?, unseen = unseen + ?, deleted = deleted + ?"
            " WHERE id = ?",
            (modseq, d_unseen, d_deleted, mailbox_id),
        )
    return FlagResult(changed, modified)
