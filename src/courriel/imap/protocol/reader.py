"""The lexical layer of IMAP commands (RFC 9051 §9 formal syntax), on complete command bytes.

A complete command is its lines with every literal's octets in place, as the session
assembled them: ``A1 LOGIN {5}\\r\\nalice pw\\r\\n``. :func:`literal_suffix` tells the session
that a line ends in a literal announcement (and whether the client waits for "+").
Every error raises :class:`ParseError`, which the session answers with BAD.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from courriel.imap.protocol import utf7
from courriel.imap.protocol.types import MAX_NUMBER, STAR, SeqSet


class ParseError(ValueError):
    """Malformed command: the session answers BAD with this text."""


_LITERAL_AT_END = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\r?\n\Z")


def literal_suffix(line: bytes) -> tuple[int, bool, bool] | None:
    """(size, non-synchronising, literal8) when ``line`` ends in a literal announcement."""
    m = _LITERAL_AT_END.search(line, max(0, len(line) - 32))
    if m is None:
        return None
    return int(m.group(2)), bool(m.group(3)), bool(m.group(1))


# ATOM-CHAR: any CHAR except atom-specials: ( ) { SP CTL % * " \ ]   (RFC 9051 §9)
_ATOM_CHARS = frozenset(c for c in range(0x21, 0x7F) if c not in b'(){%*"\\]')
_ASTRING_CHARS = _ATOM_CHARS | {ord("]")}
_LIST_CHARS = _ATOM_CHARS | {ord("%"), ord("*"), ord("]")}
_TAG_CHARS = _ASTRING_CHARS - {ord("+")}
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}  # fmt: skip
_DATE_TIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
_DIGITS = frozenset(b"0123456789")


class Reader:
    """A cursor over one complete command."""

    __slots__ = ("data", "pos", "utf8")

    def __init__(self, data: bytes, pos: int = 0, utf8: bool = False) -> None:
        self.data = data
        self.pos = pos
        self.utf8 = utf8  # IMAP4rev2 / UTF8=ACCEPT: mailbox names are UTF-8, not modified UTF-7

    # --- low level ---------------------------------------------------------------------
    def peek(self) -> int:
        """The next octet, or -1 at the end of the command (the final CRLF counts as end)."""
        if self.pos >= len(self.data) or self.at_eol():
            return -1
        return self.data[self.pos]

    def at_eol(self) -> bool:
        rest = self.data[self.pos : self.pos + 2]
        return (rest in (b"\r\n", b"\n") and self.pos + len(rest) == len(self.data)) or self.pos >= len(self.data)

    def accept(self, token: bytes) -> bool:
        """Consume ``token`` (case-insensitive) when it comes next."""
        end = self.pos + len(token)
        if self.data[self.pos : end].upper() == token.upper():
            self.pos = end
            return True
        return False

    def expect(self, token: bytes, what: str | None = None) -> None:
        if not self.accept(token):
            raise ParseError(f"expected {what or token.decode()}")

    def sp(self) -> None:
        if self.pos < len(self.data) and self.data[self.pos] == 0x20:
            self.pos += 1
        else:
            raise ParseError("expected a space")

    def end(self) -> None:
        if not self.at_eol():
            raise ParseError("unexpected characters at end of command")

    def take(self, allowed: frozenset[int]) -> bytes:
        data, start = self.data, self.pos
        i = start
        n = len(data)
        while i < n and data[i] in allowed:
            i += 1
        self.pos = i
        return data[start:i]

    # --- tokens --------------------------------------------------------------------------
    def tag(self) -> str:
        tag = self.take(_TAG_CHARS)
        if not tag:
            raise ParseError("missing or invalid tag")
        return tag.decode("ascii")

    def atom(self, what: str = "atom") -> str:
        atom = self.take(_ATOM_CHARS)
        if not atom:
            raise ParseError(f"expected {what}")
        return atom.decode("ascii")

    def number(self, limit: int = MAX_NUMBER) -> int:
        digits = self.take(_DIGITS)
        if not digits or len(digits) > 20:
            raise ParseError("expected a number")
        value = int(digits)
        if value > limit:
            raise ParseError("number too large")
        return value

    def nz_number(self) -> int:
        value = self.number()
        if value == 0:
            raise ParseError("expected a non-zero number")
        return value

    def quoted(self) -> bytes:
        self.expect(b'"')
        data = self.data
        out = bytearray()
        i = self.pos
        n = len(data)
        while i < n:
            c = data[i]
            if c == 0x22:
                self.pos = i + 1
                return bytes(out)
            if c == 0x5C:
                if i + 1 < n and data[i + 1] in (0x22, 0x5C):
                    out.append(data[i + 1])
                    i += 2
                    continue
                raise ParseError("invalid escape in quoted string")
            if c in (0x0D, 0x0A, 0x00):
                break
            out.append(c)
            i += 1
        raise ParseError("unterminated quoted string")

    def literal(self, allow8: bool = False) -> tuple[bytes, bool]:
        """A literal (or literal8 when ``allow8``); returns its octets and whether it was ~{}."""
        binary = self.accept(b"~")
        if binary and not allow8:
            raise ParseError("literal8 not allowed here")
        self.expect(b"{")
        size = self.number(limit=2**63)
        self.accept(b"+")
        self.expect(b"}")
        if not self.accept(b"\r\n"):
            self.expect(b"\n", "CRLF after literal")
        end = self.pos + size
        if end > len(self.data):
            raise ParseError("literal shorter than announced")
        value = self.data[self.pos : end]
        if not binary and b"\0" in value:
            raise ParseError("NUL in a literal (RFC 9051 §4.3)")
        self.pos = end
        return value, binary

    def string(self) -> bytes:
        c = self.peek()
        if c == 0x22:
            return self.quoted()
        if c == 0x7B:
            return self.literal()[0]
        raise ParseError("expected a string")

    def astring(self, what: str = "string") -> bytes:
        c = self.peek()
        if c in (0x22, 0x7B):
            return self.string()
        value = self.take(_ASTRING_CHARS)
        if not value:
            raise ParseError(f"expected {what}")
        return value

    def nstring(self) -> bytes | None:
        if self.accept(b"NIL"):
            return None
        return self.string()

    def text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("invalid UTF-8") from None

    def astring_text(self, what: str = "string") -> str:
        return self.text(self.astring(what))

    # --- mailbox names -------------------------------------------------------------------
    def decode_name(self, raw: bytes) -> str:
        """A mailbox name as sent: UTF-8 (IMAP4rev2, or any 8-bit name), else modified UTF-7."""
        if self.utf8 or not raw.isascii():
            return self.text(raw)
        try:
            return utf7.decode(raw.decode("ascii"))
        except utf7.UTF7Error as exc:
            raise ParseError(f"bad mailbox name: {exc}") from None

    def mailbox(self) -> str:
        return self.decode_name(self.astring("mailbox name"))

    def list_mailbox(self) -> str:
        c = self.peek()
        if c in (0x22, 0x7B):
            raw = self.string()
        else:
            raw = self.take(_LIST_CHARS)
            if not raw:
                raise ParseError("expected a mailbox pattern")
        return self.decode_name(raw)

    # --- structured values ----------------------------------------------------------------
    def seqset(self) -> SeqSet:
        if self.accept(b"$"):
            return SeqSet(saved=True)
        ranges = []
        while True:
            lo = self._seq_number()
            hi = lo
            if self.accept(b":"):
                hi = self._seq_number()
            ranges.append((lo, hi))
            if len(ranges) > 100_000:
                raise ParseError("sequence set too long")
            if not self.accept(b","):
                break
        return SeqSet(tuple(ranges))

    def _seq_number(self) -> int:
        if self.accept(b"*"):
            return STAR
        return self.nz_number()

    def flag(self) -> str:
        if self.accept(b"\\"):
            if self.accept(b"*"):
                return "\\*"
            return "\\" + self.atom("flag")
        return self.atom("flag")

    def flag_list(self) -> list[str]:
        self.expect(b"(")
        flags: list[str] = []
        if self.accept(b")"):
            return flags
        while True:
            flags.append(self.flag())
            if self.accept(b")"):
                return flags
            self.sp()

    def date(self) -> datetime:
        """date = date-text / DQUOTE date-text DQUOTE; date-text = d?d-Mon-yyyy (RFC 9051 §9)."""
        quoted = self.accept(b'"')
        day = self.number(limit=31)
        self.expect(b"-")
        month = _MONTHS.get(self.data[self.pos : self.pos + 3].decode("latin-1").lower())
        if month is None:
            raise ParseError("invalid month")
        self.pos += 3
        self.expect(b"-")
        year = self.number(limit=9999)
        if quoted:
            self.expect(b'"')
        try:
            return datetime(year, month, day, tzinfo=UTC)
        except ValueError:
            raise ParseError("invalid date") from None

    def date_time(self) -> datetime:
        """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE."""
        m = _DATE_TIME.match(self.data, self.pos)
        if m is None:
            raise ParseError("invalid date-time")
        month = _MONTHS.get(m.group(2).decode().lower())
        if month is None:
            raise ParseError("invalid month")
        offset = timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
        if m.group(7) == b"-":
            offset = -offset
        try:
            value = datetime(
                int(m.group(3)), month, int(m.group(1)), int(m.group(4)), int(m.group(5)), int(m.group(6)),
                tzinfo=timezone(offset),
            )  # fmt: skip
        except ValueError:
            raise ParseError("invalid date-time") from None
        self.pos = m.end()
        return value
