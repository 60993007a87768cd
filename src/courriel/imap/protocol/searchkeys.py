"""SEARCH keys (RFC 9051 §6.4.4, RFC 3501 §6.4.4) parsed into the store's key tree.

Flags, sizes, dates, headers and text map onto :mod:`courriel.store.api` keys; sequence
sets, UID sets with "$" and \\Recent stay session-relative (:class:`SeqKey`,
:class:`RecentKey`) for the session to resolve.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from courriel.imap.protocol.reader import ParseError, Reader
from courriel.imap.protocol.types import ObjectIdKey, RecentKey, SeqKey
from courriel.store.api import (
    All,
    And,
    BodyContains,
    DateCompare,
    DateField,
    Flag,
    HasFlag,
    HasKeyword,
    HeaderContains,
    ModSeqAtLeast,
    Not,
    Or,
    SearchKey,
    SizeCompare,
)

MAX_DEPTH = 40
MAX_KEYS = 1000

_FLAG_KEYS = {
    "ANSWERED": Flag.ANSWERED,
    "DELETED": Flag.DELETED,
    "DRAFT": Flag.DRAFT,
    "FLAGGED": Flag.FLAGGED,
    "SEEN": Flag.SEEN,
}
_HEADER_KEYS = ("BCC", "CC", "FROM", "SUBJECT", "TO")
_DATE_KEYS = {
    "BEFORE": (DateField.INTERNAL, "before"),
    "ON": (DateField.INTERNAL, "on"),
    "SINCE": (DateField.INTERNAL, "since"),
    "SENTBEFORE": (DateField.SENT, "before"),
    "SENTON": (DateField.SENT, "on"),
    "SENTSINCE": (DateField.SENT, "since"),
    # RFC 8514 SAVEDATE
    "SAVEDBEFORE": (DateField.SAVED, "before"),
    "SAVEDON": (DateField.SAVED, "on"),
    "SAVEDSINCE": (DateField.SAVED, "since"),
}
_OBJECTID = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _day(value: datetime, field: DateField, op: str) -> DateCompare:
    start = int(value.timestamp())
    return DateCompare(field, op, start, int((value + timedelta(days=1)).timestamp()))


class _KeyParser:
    def __init__(self, r: Reader, charset_text: bool) -> None:
        self.r = r
        self.count = 0
        self.modseq = False

    def text(self) -> str:
        return self.r.text(self.r.astring())

    def keys(self, depth: int, closing: bool) -> SearchKey:
        """search-key *(SP search-key), up to ")" when ``closing``, else to the end."""
        items = [self.key(depth)]
        while True:
            if closing and self.r.accept(b")"):
                break
            if not closing and self.r.at_eol():
                break
            self.r.sp()
            items.append(self.key(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def key(self, depth: int) -> SearchKey:
        r = self.r
        self.count += 1
        if depth > MAX_DEPTH or self.count > MAX_KEYS:
            raise ParseError("search program too complex")
        if r.accept(b"("):
            return self.keys(depth + 1, closing=True)
        c = r.peek()
        if c == 0x2A or 0x30 <= c <= 0x39 or c == 0x24:  # "*", digit, "$"
            return SeqKey(r.seqset())
        name = r.atom("search key").upper()
        if name in _FLAG_KEYS:
            return HasFlag(_FLAG_KEYS[name])
        if name.startswith("UN") and name[2:] in _FLAG_KEYS:
            return Not(HasFlag(_FLAG_KEYS[name[2:]]))
        if name in _HEADER_KEYS:
            r.sp()
            return HeaderContains(name.lower(), self.text())
        if name in _DATE_KEYS:
            r.sp()
            field, op = _DATE_KEYS[name]
            return _day(r.date(), field, op)
        if name == "ALL":
            return All()
        if name == "BODY":
            r.sp()
            return BodyContains(self.text(), whole=False)
        if name == "TEXT":
            r.sp()
            return BodyContains(self.text(), whole=True)
        if name == "HEADER":
            r.sp()
            header = self.r.astring("header name").decode("ascii", "replace")
            r.sp()
            return HeaderContains(header.lower(), self.text())
        if name == "KEYWORD":
            r.sp()
            return HasKeyword(r.atom("keyword"))
        if name == "UNKEYWORD":
            r.sp()
            return Not(HasKeyword(r.atom("keyword")))
        if name in ("LARGER", "SMALLER"):
            r.sp()
            return SizeCompare(name == "LARGER", r.number(limit=2**63))
        if name == "NOT":
            r.sp()
            return Not(self.key(depth + 1))
        if name == "OR":
            r.sp()
            a = self.key(depth + 1)
            r.sp()
            b = self.key(depth + 1)
            return Or((a, b))
        if name == "UID":
            r.sp()
            return SeqKey(r.seqset(), uid=True)
        if name == "MODSEQ":  # RFC 7162 §3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence
            r.sp()
            if r.peek() == 0x22:
                r.quoted()
                r.sp()
                kind = r.atom("entry type").lower()
                if kind not in ("priv", "shared", "all"):
                    raise ParseError("invalid MODSEQ entry type")
                r.sp()
            self.modseq = True
            return ModSeqAtLeast(r.number(limit=2**63 - 1))
        if name == "SAVEDATESUPPORTED":  # RFC 8514 §4.3: every mailbox here keeps save dates
            return All()
        if name in ("EMAILID", "THREADID"):  # RFC 8474 §6
            r.sp()
            value = r.take(_OBJECTID)
            if not value or len(value) > 255:
                raise ParseError("invalid object id")
            return ObjectIdKey(name, value.decode("ascii"))
        # IMAP4rev1 only (RFC 3501 §6.4.4); harmless for IMAP4rev2 clients.
        if name == "RECENT":
            return RecentKey()
        if name == "OLD":
            return Not(RecentKey())
        if name == "NEW":
            return And((RecentKey(), Not(HasFlag(Flag.SEEN))))
        raise ParseError(f"unknown search key {name}")


def parse_search_program(r: Reader) -> SearchKey:
    """The search keys up to the end of the command."""
    return parse_search(r)[0]


def parse_search(r: Reader) -> tuple[SearchKey, bool]:
    """The search keys up to the end of the command, and whether MODSEQ was among them."""
    p = _KeyParser(r, True)
    key = p.keys(0, closing=False)
    return key, p.modseq
