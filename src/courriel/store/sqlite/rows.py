"""Row to dataclass conversions, shared by readers and the writer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from courriel.store.api import Flag, Mailbox, MessageInfo, MessageRecord, User
from courriel.store.names import decode_keywords

USER_COLS = "id, address, domain_id, quota_bytes, quota_messages, disabled, modseq"
MAILBOX_COLS = (
    "id, user_id, name, uidvalidity, uidnext, highestmodseq, special_use, noselect,"
    " messages, unseen, deleted, size"
)
INFO_COLS = "m.uid, m.modseq, m.flags, m.keywords, m.size, m.internal_date, m.content_id"
RECORD_COLS = (
    INFO_COLS + ", m.mailbox_id, c.blob, c.envelope, c.body, c.preview, m.savedate, c.mail_from,"
    " c.has_attachment, c.sent_date, c.subject, c.message_id, c.in_reply_to, c.refs_header"
)


def ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def user(row: Any) -> User:
    return User(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6])


def mailbox(row: Any) -> Mailbox:
    return Mailbox(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]),
        row[8], row[9], row[10], row[11],
    )  # fmt: skip


#: Flag(n) for every stored bit set (building an IntFlag member per row is slow).
_FLAGS = tuple(Flag(i) for i in range(1 << len(Flag)))
_NO_KEYWORDS: frozenset[str] = frozenset()


def flag_of(flags: int) -> Flag:
    return _FLAGS[flags] if 0 <= flags < len(_FLAGS) else Flag(flags)


def message_info(row: Any) -> MessageInfo:
    flags = row[2]
    return MessageInfo(
        row[0], row[1], _FLAGS[flags] if 0 <= flags < len(_FLAGS) else Flag(flags),
        decode_keywords(row[3]) if row[3] else _NO_KEYWORDS, row[4], ts(row[5]), row[6],
    )  # fmt: skip


def message_record(row: Any) -> MessageRecord:
    return MessageRecord(
        info=message_info(row),
        mailbox_id=row[7],
        blob=row[8],
        envelope_json=row[9],
        body_json=row[10],
        preview=row[11],
        savedate=ts(row[12]),
        mail_from=row[13],
        has_attachment=bool(row[14]),
        sent_date=ts(row[15]) if row[15] is not None else None,
        subject=row[16],
        message_id=row[17],
        in_reply_to=row[18],
        references=row[19],
    )
