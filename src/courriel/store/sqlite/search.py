"""Compile search keys (:mod:`courriel.store.api`) into SQL over ``messages m JOIN contents c``.

Address and subject keys use the casefolded columns filled at delivery, so they run in
SQLite's C code. Body text (BODY, TEXT) goes through the trigram full-text index
``contents_fts`` (schema 4): a phrase of trigrams is an exact substring match, as RFC 9051
§6.4.4 wants, found through the index; needles shorter than a trigram use LIKE on the
indexed text. Messages not indexed yet (stored before schema 4, until the background pass
reaches them) and other header names go through Python functions registered on the
reading connection (the index narrows header searches first).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Sequence
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

_CF_COLUMNS = {"from": "c.from_cf", "to": "c.to_cf", "cc": "c.cc_cf", "bcc": "c.bcc_cf", "subject": "c.subject_cf"}
_DATE_COLUMNS = {
    DateField.INTERNAL: "m.internal_date",
    DateField.SENT: "m.sort_date",  # COALESCE(sent_date, internal_date), copied (schema 7)
    DateField.SAVED: "m.savedate",
}
_SORT_COLUMNS = {
    "arrival": "m.internal_date",
    "date": "m.sort_date",  # schema 7: indexed per mailbox with the UID
    "from": "c.sort_from",
    "to": "c.sort_to",
    "cc": "c.sort_cc",
    "subject": "m.sort_subject",
    "size": "m.size",
    "displayfrom": "c.display_from",
    "displayto": "c.display_to",
}


def compile_key(key: SearchKey, args: list[Any]) -> str:
    if isinstance(key, All):
        return "1"
    if isinstance(key, And):
        return "(" + " AND ".join(compile_key(k, args) for k in key.keys) + ")" if key.keys else "1"
    if isinstance(key, Or):
        return "(" + " OR ".join(compile_key(k, args) for k in key.keys) + ")" if key.keys else "0"
    if isinstance(key, Not):
        return f"NOT {compile_key(key.key, args)}"
    if isinstance(key, HasFlag):
        args.append(int(key.flag))
        return "(m.flags & ?) != 0"
    if isinstance(key, HasKeyword):
        args.append(f" {key.keyword.lower()} ")
        return "instr(lower(m.keywords), ?) > 0"
    if isinstance(key, UidIn):
        if not key.ranges:
            return "0"
        args.append(json.dumps(key.ranges))
        return (
            "EXISTS (SELECT 1 FROM json_each(?) j WHERE m.uid BETWEEN"
            " json_extract(j.value, '$[0]') AND json_extract(j.value, '$[1]'))"
        )
    if isinstance(key, SizeCompare):
        args.append(key.size)
        return "m.size > ?" if key.larger else "m.size < ?"
    if isinstance(key, DateCompare):
        col = _DATE_COLUMNS[key.field]
        if key.op == "before":
            args.append(key.start)
            return f"{col} < ?"
        if key.op == "since":
            args.append(key.start)
            return f"{col} >= ?"
        args.extend((key.start, key.end))
        return f"({col} >= ? AND {col} < ?)"
    if isinstance(key, HeaderContains):
        name = key.name.lower()
        if name in _CF_COLUMNS and key.text:
            column = f"instr({_CF_COLUMNS[name]}, ?) > 0"
            if len(key.text) >= 3 and _PLAIN.fullmatch(key.text):
                # The decoded header text in the full-text index holds every plain
                # substring of the address or subject: its candidates come first, so only
                # they read their contents row (the test on the column stays exact).
                args.extend(("head : " + _phrase(key.text), key.text.casefold()))
                return f"(m.content_id IN ({_FTS_MATCH} UNION {_UNINDEXED}) AND {column})"
            args.append(key.text.casefold())
            return column
        check = "courriel_header(c.headers, ?, ?)"
        if len(key.text) >= 3:  # narrow through the index first (indexed contents only)
            args.append("head : " + _phrase(key.text))
            args.extend((name, key.text.casefold()))
            return f"(m.content_id IN ({_FTS_MATCH} UNION {_UNINDEXED}) AND {check})"
        args.extend((name, key.text.casefold()))
        return check
    if isinstance(key, BodyContains):
        if not key.text:
            return "1"
        if len(key.text) >= 3:
            args.append(("{head body} : " if key.whole else "body : ") + _phrase(key.text))
            indexed = _FTS_MATCH
        else:  # shorter than a trigram: LIKE over the indexed text
            pattern = "%" + key.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            if key.whole:
                args.extend((pattern, pattern))
                indexed = _FTS_LIKE_WHOLE
            else:
                args.append(pattern)
                indexed = _FTS_LIKE
        args.extend((key.text.casefold(), int(key.whole)))
        # On message rows alone (no join): indexed contents through the index, the others
        # (stored before schema 4, until the background pass) by reading their files.
        return f"m.content_id IN ({indexed} UNION {_UNINDEXED_BODY})"
    if isinstance(key, ModSeqAtLeast):
        args.append(key.modseq)
        return "m.modseq >= ?"
    if isinstance(key, ContentIs):
        args.append(key.content_id)
        return "m.content_id = ?"
    if isinstance(key, InThread):
        # RFC 8474 THREADID through contents_thread (schema 7); "TC<id>" is a message
        # without any thread field, a thread of its own (store.content.thread_id).
        # As a set of UIDs of this mailbox (args[0], see search_sql), so that SQLite looks
        # the few messages up by primary key instead of testing every row of the mailbox.
        own = _OWN_THREAD.fullmatch(key.thread_id)
        if own is not None:
            args.extend((args[0], int(own.group(1))))
            return (
                "m.uid IN (SELECT t.uid FROM messages t WHERE t.mailbox_id = ? AND t.content_id IN"
                " (SELECT id FROM contents WHERE id = ? AND thread_id IS NULL))"
            )
        args.extend((args[0], key.thread_id))
        return (
            "m.uid IN (SELECT t.uid FROM messages t WHERE t.mailbox_id = ? AND t.content_id IN"
            " (SELECT id FROM contents WHERE thread_id = ?))"
        )
    raise TypeError(f"unknown search key {key!r}")


_FTS_MATCH = "SELECT rowid FROM contents_fts WHERE contents_fts MATCH ?"
_FTS_LIKE = "SELECT rowid FROM contents_fts WHERE body LIKE ? ESCAPE '\\'"
_FTS_LIKE_WHOLE = "SELECT rowid FROM contents_fts WHERE head LIKE ? ESCAPE '\\' OR body LIKE ? ESCAPE '\\'"


_UNINDEXED = "SELECT id FROM contents WHERE indexed = 0"
_UNINDEXED_BODY = "SELECT id FROM contents WHERE indexed = 0 AND courriel_body(blob, ?, ?)"
#: Needles whose casefolded form is found verbatim in the decoded header text (ASCII, none
#: of the characters address parsing drops or rewrites).
_PLAIN = re.compile(r"[A-Za-z0-9@._+\- ]+")
_OWN_THREAD = re.compile(r"TC([0-9]{1,18})")


def _phrase(text: str) -> str:
    """An FTS5 phrase: with the trigram tokenizer, an exact (case-insensitive) substring."""
    return '"' + text.replace('"', '""') + '"'


def _needs_contents(key: SearchKey) -> bool:
    if isinstance(key, And | Or):
        return any(_needs_contents(k) for k in key.keys)
    if isinstance(key, Not):
        return _needs_contents(key.key)
    return isinstance(key, HeaderContains)


def uses_fulltext(key: SearchKey) -> bool:
    """Whether the key reads the full-text index (body text, or header candidates)."""
    if isinstance(key, And | Or):
        return any(uses_fulltext(k) for k in key.keys)
    if isinstance(key, Not):
        return uses_fulltext(key.key)
    return isinstance(key, BodyContains | HeaderContains)


def search_sql(mailbox_id: int, key: SearchKey, sort: Sequence[SortKey] = ()) -> tuple[str, list[Any]]:
    args: list[Any] = [mailbox_id]  # compile_key may read args[0]
    where = compile_key(key, args)
    order = []
    for s in sort:
        col = _SORT_COLUMNS.get(s.name.lower())
        if col is None:
            raise ValueError(f"unknown sort key {s.name}")
        if not isinstance(key, All) and col.startswith("m."):
            # The sort indexes (schema 7) serve a whole mailbox in order; with a filter,
            # reading every row through them costs more than sorting those that match.
            col = "+" + col
        order.append(f"{col} {'DESC' if s.reverse else 'ASC'}")
    order.append("m.uid")
    by_contents = any(_SORT_COLUMNS[s.name.lower()].startswith("c.") for s in sort)
    join = " JOIN contents c ON c.id = m.content_id" if by_contents or _needs_contents(key) else ""
    return f"SELECT m.uid FROM messages m{join} WHERE m.mailbox_id = ? AND {where} ORDER BY {', '.join(order)}", args


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
        if not whole and col.startswith("m."):
            col = "+" + col  # a range of UIDs: the primary key, not the sort index
        order.append(f"{col} {'DESC' if s.reverse else 'ASC'}")
    order.append("m.uid")
    join = " JOIN contents c ON c.id = m.content_id" if any(c.startswith("c.") for c in columns) else ""
    where = "" if whole else " AND m.uid >= ?"
    sql = (
        f"SELECT m.uid{''.join(', ' + c for c in columns)} FROM messages m{join}"
        f" WHERE m.mailbox_id = ?{where} ORDER BY {', '.join(order)}"
    )
    return sql, [mailbox_id] if whole else [mailbox_id, since_uid]


def register_functions(
    conn: sqlite3.Connection, read_blob: Callable[[str], bytes], text_of: Callable[[bytes, bool], str]
) -> None:
    def header(headers_json: str, name: str, needle: str) -> int:
        from courriel.mime import decode_header_value

        for hname, value in json.loads(headers_json):
            if hname.lower() == name and (not needle or needle in decode_header_value(value).casefold()):
                return 1
        return 0

    def body(blob: str, needle: str, whole: int) -> int:
        try:
            data = read_blob(blob)
        except OSError:
            return 0
        return 1 if needle in text_of(data, bool(whole)).casefold() else 0

    conn.create_function("courriel_header", 3, header, deterministic=True)
    conn.create_function("courriel_body", 3, body, deterministic=True)
