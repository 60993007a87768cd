"""The few header fields mailbox formats use to carry state, read from CRLF data.

Readers never rewrite data; with_status_headers() is the one opt-in exception, for an
mbox export that must carry flags (mbox has no other place for them).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from .item import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN, MailItem

# Status: and X-Status: as written by mutt, Pine, Dovecot and Python's mailbox module:
# R read, O old (not \Recent), A answered, F flagged, D deleted, T draft.
_STATUS_LETTERS = {"R": SEEN, "A": ANSWERED, "F": FLAGGED, "D": DELETED, "T": DRAFT}
_X_STATUS_ORDER = (("A", ANSWERED), ("D", DELETED), ("F", FLAGGED), ("T", DRAFT))

_STATUS_VALUE = re.compile(rb"^(?:X-)?Status:[ \t]*([^\r\n]*)", re.I | re.M)
# A whole field with its folded continuation lines (RFC 5322 §2.2.3).
_STATUS_FIELD = re.compile(
    rb"^(?:X-)?Status:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*(?:\r\n|\Z)", re.I | re.M
)
_X_KEYWORDS = re.compile(rb"^X-Keywords:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.I | re.M)
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", re.I | re.M)
_ANGLE = re.compile(rb"<([^<>]*)>")
# RFC 9051 §9: atom-specials are ( ) { SP CTL % * " \ ]
_ATOM = re.compile(r'[^(){ %*"\\\]\x00-\x1f\x7f]+')


def header_block(data: bytes) -> bytes:
    """The header section including its last CRLF, without the empty line (RFC 5322 §2.1)."""
    if data.startswith(b"\r\n"):
        return b""
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[: end + 2]


def is_keyword(name: str) -> bool:
    """True if name can be an IMAP keyword (an atom, RFC 9051 §9 flag-keyword)."""
    return _ATOM.fullmatch(name) is not None


def status_flags(data: bytes) -> frozenset[str]:
    """IMAP flags from the Status: and X-Status: fields of the header."""
    flags: set[str] = set()
    for m in _STATUS_VALUE.finditer(header_block(data)):
        flags.update(
            _STATUS_LETTERS[c] for c in m.group(1).decode("latin-1") if c in _STATUS_LETTERS
        )
    return frozenset(flags)


def x_keywords(data: bytes) -> frozenset[str]:
    """Keywords from X-Keywords: fields (Dovecot mbox: space separated; mutt: commas)."""
    words: set[str] = set()
    for m in _X_KEYWORDS.finditer(header_block(data)):
        text = m.group(1).decode("utf-8", "replace").replace(",", " ")
        words.update(w for w in text.split() if is_keyword(w))
    return frozenset(words)


def return_path(data: bytes) -> str | None:
    """The address of the first (newest) Return-Path: field, "" for <>, None if absent.

    RFC 5321 §4.4: the final delivery MTA records the envelope sender there.
    """
    m = _RETURN_PATH.search(header_block(data))
    if m is None:
        return None
    value = m.group(1)
    angle = _ANGLE.search(value)
    address = (angle.group(1) if angle else value).decode("utf-8", "replace").strip()
    if any(c.isspace() or c < " " or c == "\x7f" for c in address):
        return None
    return address


def with_status_headers(item: MailItem) -> MailItem:
    """A copy of item whose header carries its flags as Status: / X-Status: fields.

    Existing Status: and X-Status: fields are replaced; the new ones go at the end of the
    header. Use before write_mbox when flags must survive in an mbox file.
    """
    return dataclasses.replace(item, data=set_status_headers(item.data, item.flags))


def set_status_headers(data: bytes, flags: Iterable[str]) -> bytes:
    """data with its Status: / X-Status: fields rewritten to say flags."""
    flagset = frozenset(flags)
    block = header_block(data)
    body = data[len(block) :]
    kept = _STATUS_FIELD.sub(b"", block)
    if kept and not kept.endswith(b"\r\n"):
        kept += b"\r\n"
    fields = [b"Status: RO\r\n" if SEEN in flagset else b"Status: O\r\n"]
    letters = "".join(letter for letter, flag in _X_STATUS_ORDER if flag in flagset)
    if letters:
        fields.append(b"X-Status: " + letters.encode("ascii") + b"\r\n")
    return kept + b"".join(fields) + body
