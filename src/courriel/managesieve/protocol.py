"""ManageSieve wire format (RFC 5804 §4): pure parsing of complete commands and encoding of
responses. No I/O: the session frames commands (lines and literals) and calls these.

    command  = atom *(SP argument) CRLF
    argument = quoted-string / literal / number   (literal-c2s "{" n "+}" CRLF octets; "{n}" tolerated)
    response = ("OK" / "NO" / "BYE") [SP "(" code ")"] [SP string] CRLF
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Longest command line outside literals (RFC 5804 does not bound it; we do).
MAX_LINE = 8192
_LITERAL_AT_END = re.compile(rb"\{(\d{1,10})(\+?)\}\r?\n\Z")
_ATOM = re.compile(rb"[A-Za-z][A-Za-z0-9_-]*")


class ParseError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # upper case
    args: tuple[str | int, ...]  # strings decoded as UTF-8; numbers as int


def literal_size(line: bytes) -> int | None:
    """The size of the literal announced at the end of ``line`` (which ends with CRLF), or None."""
    m = _LITERAL_AT_END.search(line)
    return int(m.group(1)) if m else None


def parse_command(data: bytes) -> Command:
    """Parse one complete command (its literals inline, final CRLF included or not)."""
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    m = _ATOM.match(data)
    if m is None:
        raise ParseError("expected a command name")
    name = m.group().decode("ascii").upper()
    i = m.end()
    args: list[str | int] = []
    n = len(data)
    while i < n:
        if data[i] != 0x20:
            raise ParseError("expected a space between arguments")
        while i < n and data[i] == 0x20:
            i += 1
        if i >= n:
            break
        c = data[i]
        if c == 0x22:  # quoted string (RFC 5804 §4: \\ and \" escapes; no CR/LF)
            i += 1
            out = bytearray()
            while True:
                if i >= n:
                    raise ParseError("unterminated quoted string")
                b = data[i]
                if b == 0x5C:
                    if i + 1 >= n or data[i + 1] not in (0x5C, 0x22):
                        raise ParseError("invalid escape in quoted string")
                    out.append(data[i + 1])
                    i += 2
                    continue
                if b == 0x22:
                    i += 1
                    break
                if b in (0x0D, 0x0A, 0x00):
                    raise ParseError("CR, LF or NUL in quoted string")
                out.append(b)
                i += 1
            args.append(_text(bytes(out)))
        elif c == 0x7B:  # literal {n+}CRLF or {n}CRLF
            m2 = re.compile(rb"\{(\d{1,10})\+?\}\r?\n").match(data, i)
            if m2 is None:
                raise ParseError("invalid literal")
            size = int(m2.group(1))
            start = m2.end()
            if start + size > n:
                raise ParseError("literal shorter than announced")
            args.append(_text(data[start : start + size]))
            i = start + size
        elif 0x30 <= c <= 0x39:
            j = i
            while j < n and 0x30 <= data[j] <= 0x39:
                j += 1
            if j - i > 10:
                raise ParseError("number too large")
            args.append(int(data[i:j]))
            i = j
        else:
            raise ParseError("expected a string or a number")
    return Command(name, tuple(args))


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("string is not UTF-8") from None


def quote(text: str) -> bytes:
    """A string as a quoted string, or a literal when it holds CR, LF or is long (RFC 5804 §4)."""
    raw = text.encode("utf-8")
    if b"\r" in raw or b"\n" in raw or b"\0" in raw or len(raw) > 1024:
        return literal(raw)
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def literal(raw: bytes) -> bytes:
    return b"{%d}\r\n" % len(raw) + raw


def response(kind: str, text: str | None = None, code: str | None = None) -> bytes:
    """``OK``/``NO``/``BYE`` with an optional response code and human-readable string."""
    out = kind.encode("ascii")
    if code:
        out += b" (" + code.encode("utf-8") + b")"
    if text:
        out += b" " + quote(text)
    return out + b"\r\n"


def valid_script_name(name: str) -> bool:
    """RFC 5804 §1.6: non-empty, no control characters (U+0000-001F, 007F-009F, 2028, 2029)."""
    if not name or len(name) > 512:
        return False
    return not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029" for c in name)
