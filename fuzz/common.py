"""What the targets share: the invariant check and seed harvesting from the test tables."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class InvariantError(AssertionError):
    """A parser returned something its own contract rules out (not a crash, still a bug)."""


def check(cond: object, what: str) -> None:
    if not cond:
        raise InvariantError(what)


def constants(path: str, kind: type[bytes] | type[str]) -> list[bytes]:
    """Every bytes (or str, UTF-8 encoded) literal of a test file: its tables of raw input."""
    tree = ast.parse((ROOT / path).read_text())
    out: list[bytes] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, kind):
            value = node.value
            raw = (
                value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
            )
            if raw and raw not in out:
                out.append(raw)
    return out


_ATOM = frozenset(range(0x21, 0x7F)) - frozenset(b'(){ "\\')


def imap_value(data: bytes, pos: int = 0) -> int:
    """Check one IMAP response value (RFC 9051 §9: parenthesized list, quoted string,
    literal, atom or number) at ``pos``; returns where it ends. Raises InvariantError."""
    check(pos < len(data), "IMAP value missing")
    c = data[pos]
    if c == 0x28:  # "("
        pos += 1
        first = True
        while True:
            check(pos < len(data), "unclosed parenthesis")
            if data[pos] == 0x29:
                return pos + 1
            if not first and not (data[pos] == 0x28 and data[pos - 1] == 0x29):
                # Items are separated by one space, except a multipart's bodies (1*body).
                check(data[pos] == 0x20, f"no space between list items at {pos}")
                pos += 1
            pos = imap_value(data, pos)
            first = False
    if c == 0x22:  # quoted
        pos += 1
        while True:
            check(pos < len(data), "unterminated quoted string")
            ch = data[pos]
            check(ch not in (0x0D, 0x0A, 0x00), "CR, LF or NUL in a quoted string")
            if ch == 0x5C:
                check(
                    pos + 1 < len(data) and data[pos + 1] in (0x22, 0x5C),
                    "bad escape in a quoted string",
                )
                pos += 2
                continue
            if ch == 0x22:
                return pos + 1
            pos += 1
    if c == 0x7B or (c == 0x7E and data[pos + 1 : pos + 2] == b"{"):  # literal, literal8
        start = pos + (2 if c == 0x7E else 1)
        end = data.find(b"}\r\n", start)
        check(end > start and data[start:end].isdigit(), "bad literal announcement")
        n = int(data[start:end])
        check(end + 3 + n <= len(data), "literal shorter than announced")
        return end + 3 + n
    end = pos
    while end < len(data) and data[end] in _ATOM:
        end += 1
    check(end > pos, f"unexpected octet {data[pos : pos + 1]!r} at {pos}")
    return end


def imap_complete(data: bytes) -> None:
    """``data`` is exactly one IMAP value."""
    check(imap_value(data) == len(data), "trailing octets after an IMAP value")
