"""Response encoding (RFC 9051 §7, §9): strings, flag lists, ENVELOPE, BODYSTRUCTURE.

Everything returns bytes; the session appends them to one buffer per command.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from courriel.imap.protocol import utf7
from courriel.mime.structure import Address, BodyPart, Envelope
from courriel.store.api import Flag

_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
# Octets a quoted string may carry as they are (RFC 9051 §9 QUOTED-CHAR, 7-bit).
_QUOTABLE = frozenset(range(0x20, 0x7F))
NIL = b"NIL"


def string(value: bytes | str) -> bytes:
    """A quoted string when that is possible, else a literal."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if len(value) < 1024 and all(c in _QUOTABLE for c in value):
        if b'"' in value or b"\\" in value:
            value = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + value + b'"'
    return b"{%d}\r\n" % len(value) + value


def nstring(value: bytes | str | None) -> bytes:
    return NIL if value is None else string(value)


def literal(value: bytes, binary: bool = False) -> bytes:
    """A literal; literal8 (``~{n}``) when ``binary`` and the octets hold NUL (RFC 3516 §4.2)."""
    prefix = b"~{%d}\r\n" if binary and b"\0" in value else b"{%d}\r\n"
    return prefix % len(value) + value


def astring(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    if raw and all(c in _ATOMISH for c in raw) and raw.upper() != b"NIL":
        return raw
    return string(raw)


_ATOMISH = frozenset(c for c in range(0x21, 0x7F) if c not in b'(){%*"\\]')


def mailbox(name: str, utf8: bool) -> bytes:
    """A mailbox name for a response: UTF-8 for IMAP4rev2 clients, else modified UTF-7."""
    if name.upper() == "INBOX":
        return b"INBOX"
    text = name if utf8 else utf7.encode(name)
    raw = text.encode("utf-8")
    if all(c in _QUOTABLE for c in raw):
        if b'"' in raw or b"\\" in raw:
            raw = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        return b'"' + raw + b'"'
    return b"{%d}\r\n" % len(raw) + raw


_FLAG_LISTS: dict[int, bytes] = {}


def flag_list(flags: Flag, keywords: Iterable[str] = (), recent: bool = False) -> bytes:
    if not keywords:  # system flags alone: a few dozen combinations, rendered once each
        key = int(flags) | (1 << 16 if recent else 0)
        cached = _FLAG_LISTS.get(key)
        if cached is None:
            cached = _FLAG_LISTS[key] = _flag_list(flags, (), recent)
        return cached
    return _flag_list(flags, keywords, recent)


def _flag_list(flags: Flag, keywords: Iterable[str], recent: bool) -> bytes:
    names = flags.names()
    if recent:
        names.append("\\Recent")
    names.extend(sorted(keywords))
    return b"(" + " ".join(names).encode("utf-8", "replace") + b")"


def internal_date(value: datetime) -> bytes:
    """date-time (RFC 9051 §9): "dd-Mon-yyyy hh:mm:ss +zzzz"."""
    offset = value.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = b"+" if minutes >= 0 else b"-"
    minutes = abs(minutes)
    return b'"%2d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        value.day, _MONTHS[value.month - 1], value.year, value.hour, value.minute, value.second,
        sign, minutes // 60, minutes % 60,
    )  # fmt: skip


def seqset(values: Sequence[int]) -> bytes:
    """Ascending numbers compressed into ranges: 1:3,7,9:10."""
    out: list[bytes] = []
    i = 0
    n = len(values)
    while i < n:
        j = i
        while j + 1 < n and values[j + 1] == values[j] + 1:
            j += 1
        out.append(b"%d" % values[i] if i == j else b"%d:%d" % (values[i], values[j]))
        i = j + 1
    return b",".join(out)


# --- ENVELOPE (RFC 9051 §7.5.2) --------------------------------------------------------------


def _address(a: Address) -> bytes:
    return b"(" + nstring(a.name) + b" " + nstring(a.adl) + b" " + nstring(a.mailbox) + b" " + nstring(a.host) + b")"


def _addresses(addrs: list[Address] | None) -> bytes:
    if not addrs:
        return NIL
    return b"(" + b"".join(map(_address, addrs)) + b")"


def envelope(env: Envelope) -> bytes:
    return b"(%s %s %s %s %s %s %s %s %s %s)" % (
        nstring(env.date), nstring(env.subject), _addresses(env.from_), _addresses(env.sender),
        _addresses(env.reply_to), _addresses(env.to), _addresses(env.cc), _addresses(env.bcc),
        nstring(env.in_reply_to), nstring(env.message_id),
    )  # fmt: skip


# --- BODYSTRUCTURE (RFC 9051 §7.5.2 "body") -------------------------------------------------


def _params(params: list[tuple[str, str]]) -> bytes:
    if not params:
        return NIL
    return b"(" + b" ".join(string(k) + b" " + string(v) for k, v in params) + b")"


def _disposition(part: BodyPart) -> bytes:
    if part.disposition is None:
        return NIL
    return b"(" + string(part.disposition) + b" " + _params(part.disposition_imap_params) + b")"


def _language(part: BodyPart) -> bytes:
    if not part.language:
        return NIL
    if len(part.language) == 1:
        return string(part.language[0])
    return b"(" + b" ".join(string(x) for x in part.language) + b")"


def body(part: BodyPart, extensible: bool) -> bytes:
    """BODYSTRUCTURE when ``extensible``, else the non-extensible BODY form."""
    if part.children:
        out = b"(" + b"".join(body(c, extensible) for c in part.children) + b" " + string(part.subtype)
        if extensible:
            out += b" " + _params(part.imap_params) + b" " + _disposition(part) + b" " + _language(part)
            out += b" " + nstring(part.location)
        return out + b")"
    fields = b"%s %s %s %s %d" % (
        _params(part.imap_params), nstring(part.id), nstring(part.description), string(part.encoding), part.size,
    )  # fmt: skip
    out = b"(" + string(part.type) + b" " + string(part.subtype) + b" " + fields
    if part.message is not None and part.envelope is not None:
        # body-type-msg: envelope, body of the encapsulated message, lines
        out += b" " + envelope(part.envelope) + b" " + body(part.message, extensible) + b" %d" % (part.lines or 0)
    elif part.type_lower == "text":
        out += b" %d" % (part.lines or 0)
    if extensible:
        out += b" " + nstring(part.md5) + b" " + _disposition(part) + b" " + _language(part)
        out += b" " + nstring(part.location)
    return out + b")"
