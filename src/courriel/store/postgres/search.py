"""Compile search keys (:mod:`courriel.store.api`) into PostgreSQL over ``messages m``.

Address and subject keys test the casefolded columns filled at delivery (``strpos``).
BODY and TEXT are substring tests (RFC 9051 §6.4.4) on the casefolded decoded text in
``contents_text``, through its pg_trgm GIN indexes (``LIKE '%needle%'`` uses them from
three characters on). Any other header name is a regular expression over the decoded
header lines of ``contents_text.head`` (``name: value``, one per line), also through the
trigram index. Sort keys compare with ``COLLATE "C"`` (code point order, as in SQLite).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from courriel.store.api import (
    All,
    And,
    BodyContains,
    ContentIs,
    DateCompare,
    DateField,
    HasFlag,
    HasKeyword,
    HeaderContains,
    InThread,
    ModSeqAtLeast,
    Not,
    Or,
    SearchKey,
    SizeCompare,
    SortKey,
    UidIn,
)

_CF_COLUMNS = {"from": "from_cf", "to": "to_cf", "cc": "cc_cf", "bcc": "bcc_cf", "subject": "subject_cf"}
_DATE_COLUMNS = {
    DateField.INTERNAL: "m.internal_date",
    DateField.SENT: "m.sort_date",  # COALESCE(sent_date, internal_date), copied at delivery
    DateField.SAVED: "m.savedate",
}
_SORT_COLUMNS = {
    "arrival": "m.internal_date",
    "date": "m.sort_date",
    "from": 'c.sort_from COLLATE "C"',
    "to": 'c.sort_to COLLATE "C"',
    "cc": 'c.sort_cc COLLATE "C"',
    "subject": 'm.sort_subject COLLATE "C"',
    "size": "m.size",
    "displayfrom": 'c.display_from COLLATE "C"',
    "displayto": 'c.display_to COLLATE "C"',
}
_REGEX_SPECIAL = set("\\^$.|?*+()[]{}-#")


def like_pattern(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def regex_literal(text: str) -> str:
    return "".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in text)


def clean(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def compile_key(key: SearchKey, args: list[Any]) -> str:
    if isinstance(key, All):
        return "true"
    if isinstance(key, And):
        return "(" + " AND ".join(compile_key(k, args) for k in key.keys) + ")" if key.keys else "true"
    if isinstance(key, Or):
        return "(" + " OR ".join(compile_key(k, args) for k in key.keys) + ")" if key.keys else "false"
    if isinstance(key, Not):
        return f"NOT {compile_key(key.key, args)}"
    if isinstance(key, HasFlag):
        args.append(int(key.flag))
        return "(m.flags & %s) != 0"
    if isinstance(key, HasKeyword):
        args.append(f" {key.keyword.lower()} ")
        return "strpos(lower(m.keywords), %s) > 0"
    if isinstance(key, UidIn):
        if not key.ranges:
            return "false"
        if len(key.ranges) <= 16:
            parts = []
            for lo, hi in key.ranges:
                args.extend((lo, hi))
                parts.append("m.uid BETWEEN %s AND %s")
            return "(" + " OR ".join(parts) + ")"
        args.extend(([lo for lo, _ in key.ranges], [hi for _, hi in key.ranges]))
        return (
            "EXISTS (SELECT 1 FROM unnest(%s::bigint[], %s::bigint[]) AS r(lo, hi)"
            " WHERE m.uid BETWEEN r.lo AND r.hi)"
        )
    if isinstance(key, SizeCompare):
        args.append(key.size)
        return "m.size > %s" if key.larger else "m.size < %s"
    if isinstance(key, DateCompare):
        col = _DATE_COLUMNS[key.field]
        if key.op == "before":
            args.append(key.start)
            return f"{col} < %s"
        if key.op == "since":
            args.append(key.start)
            return f"{col} >= %s"
        args.extend((key.start, key.end))
        return f"({col} >= %s AND {col} < %s)"
    if isinstance(key, HeaderContains):
        name = key.name.lower()
        if name in _CF_COLUMNS and key.text:
            args.append(clean(key.text.casefold()))
            return f"EXISTS (SELECT 1 FROM contents c2 WHERE c2.id = m.content_id AND strpos(c2.{_CF_COLUMNS[name]}, %s) > 0)"
        # A line "name: ...needle..." of the decoded header text (name is casefolded there).
        args.append("(?n)^" + regex_literal(clean(name.casefold())) + ": .*" + regex_literal(clean(key.text.casefold())))
        return "m.content_id IN (SELECT content_id FROM contents_text WHERE head ~ %s)"
    if isinstance(key, BodyContains):
        if not key.text:
            return "true"
        pattern = like_pattern(clean(key.text.casefold()))
        if key.whole:
            args.extend((pattern, pattern))
            return "m.content_id IN (SELECT content_id FROM contents_text WHERE body LIKE %s OR head LIKE %s)"
        args.append(pattern)
        return "m.content_id IN (SELECT content_id FROM contents_text WHERE body LIKE %s)"
    if isinstance(key, ModSeqAtLeast):
        args.append(key.modseq)
        return "m.modseq >= %s"
    if isinstance(key, ContentIs):
        args.append(key.content_id)
        return "m.content_id = %s"
    if isinstance(key, InThread):
        # RFC 8474 THREADID through contents_thread; "TC<id>" is a message without any
        # thread field, a thread of its own (store.content.thread_id).
        own = _OWN_THREAD.fullmatch(key.thread_id)
        if own is not None:
            args.append(int(own.group(1)))
            return "m.content_id IN (SELECT id FROM contents WHERE id = %s AND thread_id IS NULL)"
        args.append(key.thread_id)
        return "m.content_id IN (SELECT id FROM contents WHERE thread_id = %s)"
    raise TypeError(f"unknown search key {key!r}")


_OWN_THREAD = re.compile(r"TC([0-9]{1,18})")


def search_sql(mailbox_id: int, key: SearchKey, sort: Sequence[SortKey] = ()) -> tuple[str, list[Any]]:
    args: list[Any] = [mailbox_id]
    where = compile_key(key, args)
    order = []
    for s in sort:
        col = _SORT_COLUMNS.get(s.name.lower())
        if col is None:
            raise ValueError(f"unknown sort key {s.name}")
        order.append(f"{col} {'DESC' if s.reverse else 'ASC'}")
    order.append("m.uid")
    by_contents = any(_SORT_COLUMNS[s.name.lower()].startswith("c.") for s in sort)
    join = " JOIN contents c ON c.id = m.content_id" if by_contents else ""
    return f"SELECT m.uid FROM messages m{join} WHERE m.mailbox_id = %s AND {where} ORDER BY {', '.join(order)}", args


def sort_values_sql(mailbox_id: int, sort: Sequence[SortKey], since_uid: int = 1) -> tuple[str, list[Any]]:
    """Store.sort_values: the UID and each sort key's value, in sort order, of the messages
    from UID ``since_uid`` on (1: the whole mailbox, through the sort indexes)."""
    whole = since_uid <= 1
    columns, order = [], []
    for s in sort:
        col = _SORT_COLUMNS.get(s.name.lower())
        if col is None:
            raise ValueError(f"unknown sort key {s.name}")
        columns.append(col)
        order.append(f"{col} {'DESC' if s.reverse else 'ASC'}")
    order.append("m.uid")
    join = " JOIN contents c ON c.id = m.content_id" if any(c.startswith("c.") for c in columns) else ""
    where = "" if whole else " AND m.uid >= %s"
    sql = (
        f"SELECT m.uid{''.join(', ' + c for c in columns)} FROM messages m{join}"
        f" WHERE m.mailbox_id = %s{where} ORDER BY {', '.join(order)}"
    )
    return sql, [mailbox_id] if whole else [mailbox_id, since_uid]
