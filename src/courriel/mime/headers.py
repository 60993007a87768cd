"""Header blocks: scanning raw bytes into fields, unfolding, RFC 2047 decoding, dates, msg-ids.

Invariants:
- Raw values are ``str`` decoded from bytes with UTF-8 and ``surrogateescape``, so
  ``value.encode("utf-8", "surrogateescape")`` gives back the exact octets.
- Nothing here raises on malformed input; problems become defect strings.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_tz

from .charset import decode_bytes, surrogates_to_text

_LF = 0x0A
_CR = 0x0D
_SP = 0x20
_TAB = 0x09

# RFC 5322 §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126.
_FIELD_NAME = re.compile(rb"[!-9;-~]+")


def scan_header(
    data: bytes, start: int, end: int, defects: list[str] | None = None
) -> tuple[list[tuple[str, str]], int]:
    """Split the header block at ``data[start:end]`` into (name, raw value) fields.

    Returns the fields and the offset where the body starts (just after the empty line
    that ends the header, RFC 5322 §2.1), or ``end`` when there is no empty line.
    A raw value is everything after the colon, folding line breaks included, without
    the line break that ends the field. Lines that are not fields are skipped (defect).
    """
    fields: list[tuple[str, str]] = []
    name: bytes | None = None
    value_start = 0
    value_end = 0
    pos = start
    body_start = end
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        content_end = nl if nl >= 0 else end
        if content_end > pos and data[content_end - 1] == _CR:
            content_end -= 1
        if content_end == pos and (nl >= 0 or data[pos] == _CR):
            body_start = line_end  # the empty line ending the header
            break
        first = data[pos]
        if first in (_SP, _TAB):
            if name is not None:
                value_end = content_end
            elif defects is not None:
                defects.append(f"continuation line without a field at offset {pos}")
        else:
            if name is not None:
                fields.append(_field(name, data, value_start, value_end))
                name = None
            colon = data.find(b":", pos, content_end)
            candidate = data[pos:colon].rstrip(b" \t") if colon >= 0 else b""
            if colon >= 0 and _FIELD_NAME.fullmatch(candidate):
                name = candidate
                value_start = colon + 1
                value_end = content_end
            elif defects is not None:
                defects.append(f"invalid header line at offset {pos}")
        pos = line_end
    if name is not None:
        fields.append(_field(name, data, value_start, value_end))
    return fields, body_start


def _field(name: bytes, data: bytes, start: int, end: int) -> tuple[str, str]:
    return (
        name.decode("ascii"),
        data[start:end].decode("utf-8", "surrogateescape"),
    )


def unfold(raw: str) -> str:
    """RFC 5322 §2.2.3: remove the CRLF of each folding; keep the whitespace; strip ends."""
    if "\n" in raw:
        raw = raw.replace("\r\n", "").replace("\n", "")
    return raw.strip(" \t\r")


def first_values(fields: list[tuple[str, str]]) -> dict[str, str]:
    """Lower-case field name -> raw value of its first occurrence."""
    out: dict[str, str] = {}
    for name, value in fields:
        out.setdefault(name.lower(), value)
    return out


# RFC 2047 §2: encoded-word = "=?" charset ["*" language] "?" encoding "?" encoded-text "?="
# Tolerated: words embedded in other text, spaces inside Q text are not (they end the word).
_ENCODED_WORD = re.compile(r"=\?([^?\s*]*)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def _decode_q(text: str) -> bytes:
    raw = text.replace("_", " ").encode("utf-8", "surrogateescape")
    return _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), raw)


def _decode_b(text: str) -> bytes:
    raw = re.sub(r"[^A-Za-z0-9+/]", "", text)
    raw = raw[: len(raw) - len(raw) % 4] if len(raw) % 4 == 1 else raw + "=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw)
    except (binascii.Error, ValueError):
        return b""


def decode_header_value(raw: str) -> str:
    """Unfold and decode RFC 2047 encoded words to Unicode; never raises.

    Adjacent encoded words separated only by whitespace are joined (RFC 2047 §6.2);
    consecutive words in the same charset are joined as bytes before decoding, so a
    multi-byte character split across two words (a common bug) still decodes.
    Raw 8-bit text is decoded as UTF-8, else windows-1252.
    """
    value = unfold(raw)
    if "=?" not in value:
        return surrogates_to_text(value)
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    pos = 0
    last_was_word = False
    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if not (last_was_word and (between == "" or between.isspace())):
            if pending:
                out.append(decode_bytes(bytes(pending), pending_charset))
                pending.clear()
            out.append(surrogates_to_text(between))
        charset = m.group(1)
        payload = _decode_q(m.group(3)) if m.group(2) in "Qq" else _decode_b(m.group(3))
        if pending and charset.lower() != (pending_charset or "").lower():
            out.append(decode_bytes(bytes(pending), pending_charset))
            pending.clear()
        pending_charset = charset
        pending += payload
        pos = m.end()
        last_was_word = True
    if pending:
        out.append(decode_bytes(bytes(pending), pending_charset))
    out.append(surrogates_to_text(value[pos:]))
    return "".join(out)


_COMMENT = re.compile(r"\([^()]*\)")


def strip_comments(value: str) -> str:
    """Remove RFC 5322 comments, nested ones included (innermost first)."""
    for _ in range(20):
        if "(" not in value:
            break
        new = _COMMENT.sub(" ", value)
        if new == value:
            break
        value = new
    return value


def parse_date(raw: str | None) -> datetime | None:
    """RFC 5322 §3.3 date-time (obsolete forms of §4.3 tolerated) to an aware datetime.

    A missing or unknown zone is taken as UTC ("-0000", RFC 5322 §3.3). Returns None
    when no date can be read.
    """
    if not raw:
        return None
    text = strip_comments(unfold(raw)).replace(",", ", ").strip()
    try:
        parts = parsedate_tz(text)
    except Exception:  # the stdlib parser has raised on odd input in the past
        return None
    if parts is None:
        return None
    year, month, day, hour, minute, second = parts[:6]
    offset = parts[9] or 0
    if second == 60:  # leap second (RFC 5322 §3.3 allows 60)
        second = 59
    if not -86399 <= offset <= 86399:
        offset = 0
    try:
        return datetime(
            year, month, day, hour, minute, second, tzinfo=timezone(timedelta(seconds=offset))
        )
    except (ValueError, OverflowError):
        return None


_MSG_ID = re.compile(r"<([^<>]*)>")


def parse_msg_ids(raw: str | None) -> list[str]:
    """The msg-ids of Message-ID, In-Reply-To or References (RFC 5322 §3.6.4), without
    angle brackets. A value without any bracketed id yields its first word (lenient)."""
    if not raw:
        return []
    text = strip_comments(unfold(raw))
    ids = [m.group(1).strip().replace(" ", "") for m in _MSG_ID.finditer(text)]
    ids = [i for i in ids if i]
    if not ids and "<" not in text:
        words = text.split()
        if words and "@" in words[0]:
            ids = [words[0]]
    return [surrogates_to_text(i) for i in ids]
