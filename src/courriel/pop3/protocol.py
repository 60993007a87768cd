"""The POP3 wire format, without I/O: command parser, responses, dot-stuffing, TOP, UIDL, APOP.

Everything here is a pure function of its arguments (bytes or str in, bytes or values out),
tested with tables of raw bytes and fuzzed (tests/pop3/test_protocol.py).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

CRLF = b"\r\n"
TERMINATOR = b".\r\n"
#: RFC 2449 §4: a message number or count never needs more digits than this.
MAX_DIGITS = 10


class State(enum.Enum):
    """RFC 1939 §3."""

    AUTHORIZATION = "AUTHORIZATION"
    TRANSACTION = "TRANSACTION"
    UPDATE = "UPDATE"


class Code:
    """Extended response codes: RFC 2449 §8 (IN-USE, LOGIN-DELAY) and RFC 3206 (SYS, AUTH)."""

    IN_USE = "IN-USE"
    LOGIN_DELAY = "LOGIN-DELAY"
    SYS_TEMP = "SYS/TEMP"
    SYS_PERM = "SYS/PERM"
    AUTH = "AUTH"


class ParseError(ValueError):
    """A command line that cannot be parsed; ``str(exc)`` is the text of the -ERR reply."""


class Pop3Error(Exception):
    """A command that fails: the session answers ``-ERR [code] text`` (and closes if asked)."""

    def __init__(self, text: str, code: str | None = None, close: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.close = close


# Argument kinds: "msg" a message number (>= 1), "n" a count (>= 0), "word" one token,
# "rest" everything after the keyword and one space (PASS: a password may hold spaces,
# RFC 1939 §7), "digest" 32 hex digits (APOP). A "?" suffix makes an argument optional.
SYNTAX: dict[str, tuple[str, ...]] = {
    "USER": ("word",),
    "PASS": ("rest",),
    "APOP": ("word", "digest"),
    "AUTH": ("word?", "word?"),
    "CAPA": (),
    "STLS": (),
    "QUIT": (),
    "STAT": (),
    "LIST": ("msg?",),
    "RETR": ("msg",),
    "DELE": ("msg",),
    "NOOP": (),
    "RSET": (),
    "TOP": ("msg", "n"),
    "UIDL": ("msg?",),
}

_KEYWORD = re.compile(r"[A-Za-z]{3,4}")
_HEX32 = re.compile(r"[0-9A-Fa-f]{32}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed command: upper-case keyword, its text arguments, and the numeric ones."""

    name: str
    args: tuple[str, ...] = ()
    numbers: tuple[int, ...] = ()


def parse_command(line: bytes) -> Command:
    """Parse one command line (with or without its CRLF). Raises :class:`ParseError`."""
    if line.endswith(b"\r\n"):
        line = line[:-2]
    elif line.endswith(b"\n"):
        line = line[:-1]
    if not line.strip():
        raise ParseError("empty command")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("command is not UTF-8") from None
    if _CONTROL.search(text):
        raise ParseError("control characters in command")
    keyword, _, rest = text.partition(" ")
    if not _KEYWORD.fullmatch(keyword):
        raise ParseError("unknown command")
    name = keyword.upper()
    spec = SYNTAX.get(name)
    if spec is None:
        raise ParseError("unknown command")
    if spec == ("rest",):
        if not rest:
            raise ParseError(f"{name} needs an argument")
        return Command(name, (rest,))
    words = rest.split()
    required = sum(1 for kind in spec if not kind.endswith("?"))
    if len(words) < required:
        raise ParseError(f"{name} needs {required} argument{'s' if required > 1 else ''}")
    if len(words) > len(spec):
        raise ParseError(f"too many arguments to {name}")
    numbers: list[int] = []
    for word, kind in zip(words, spec):
        kind = kind.rstrip("?")
        if kind in ("msg", "n"):
            numbers.append(_number(word, minimum=1 if kind == "msg" else 0))
        elif kind == "digest" and not _HEX32.fullmatch(word):
            raise ParseError("the APOP digest is 32 hexadecimal digits")
    return Command(name, tuple(words), tuple(numbers))


def _number(word: str, minimum: int) -> int:
    if not word.isascii() or not word.isdigit() or len(word) > MAX_DIGITS:
        raise ParseError(f"invalid number {word[:20]!r}")
    value = int(word)
    if value < minimum:
        raise ParseError("message numbers start at 1")
    return value


# --- responses ----------------------------------------------------------------------------


def ok(text: str = "") -> bytes:
    return b"+OK " + text.encode("utf-8") + CRLF if text else b"+OK" + CRLF


def err(text: str, code: str | None = None) -> bytes:
    """``-ERR [CODE] text``; codes are those of RFC 2449 §8 and RFC 3206."""
    prefix = f"[{code}] " if code else ""
    return b"-ERR " + (prefix + text).encode("utf-8") + CRLF


def challenge(data: bytes) -> bytes:
    """An AUTH continuation (RFC 5034 §4): ``+`` SP base64 (``+`` SP alone for empty)."""
    return b"+ " + base64.b64encode(data) + CRLF


def multiline(head: str, lines: Iterable[str]) -> bytes:
    """A positive multi-line response (RFC 1939 §3): each line dot-stuffed, then ``.``."""
    out = [ok(head)]
    for line in lines:
        raw = line.encode("utf-8")
        out.append((b"." + raw if raw.startswith(b".") else raw) + CRLF)
    out.append(TERMINATOR)
    return b"".join(out)


def wire_form(data: bytes) -> bytes:
    """The message as POP3 sends it (before dot-stuffing): the stored bytes, which are CRLF
    lines, with a final CRLF added when missing so that the terminator starts a line.

    Nothing else changes, so RETR sends exactly the octets LIST announced. A message holding
    a bare LF (an IMAP APPEND may store one) is sent as stored; :func:`dot_stuff` makes it
    safe for clients that split lines on LF.
    """
    return data if data.endswith(CRLF) or not data else data + CRLF


def dot_stuff(data: bytes) -> bytes:
    """RFC 1939 §3 byte-stuffing: a line starting with "." gets one more.

    The dot after any LF is stuffed, a bare one too: a client splitting lines on LF can
    then never take a "." line inside a message for the end of the response. (One scan, and
    a copy only when a line starts with a dot.)
    """
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\n.", b"\n..") if b"\n." in data else data


def top(data: bytes, lines: int) -> bytes:
    """RFC 1939 §7 TOP: the header, the empty line, then ``lines`` lines of the body.

    ``data`` is in :func:`wire_form`. A message without an empty line is all header.
    """
    if data.startswith(CRLF):
        pos = 2
    else:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return data
        pos = end + 4
    size = len(data)
    for _ in range(lines):
        nxt = data.find(CRLF, pos)
        if nxt < 0:
            return data
        pos = nxt + 2
        if pos >= size:
            break
    return data[:pos]


def message_response(head: str, data: bytes) -> bytes:
    """``+OK head``, the dot-stuffed message (in wire form), and the terminating ``.``."""
    return b"".join((ok(head), dot_stuff(data), TERMINATOR))


def unique_id(uidvalidity: int, uid: int) -> str:
    """RFC 1939 §7 UIDL: stable across sessions, never reused (UIDVALIDITY is server-wide
    unique, UIDs never reused within it), 0x21-0x7E and at most 70 characters."""
    return f"{uidvalidity}.{uid}"


# --- APOP (RFC 1939 §7) -----------------------------------------------------------------


def apop_timestamp(hostname: str) -> str:
    """A greeting timestamp in msg-id form, different for every connection."""
    host = re.sub(r"[^A-Za-z0-9.-]", "", hostname) or "localhost"
    return f"<{os.getpid()}.{secrets.token_hex(8)}.{int(time.time())}@{host}>"


def apop_digest(timestamp: str, secret: str) -> str:
    return hashlib.md5((timestamp + secret).encode("utf-8")).hexdigest()


def apop_matches(timestamp: str, secret: str, digest: str) -> bool:
    return hmac.compare_digest(apop_digest(timestamp, secret), digest.lower())


# --- CAPA (RFC 2449 §5) -----------------------------------------------------------------


def capabilities(*, stls: bool, user: bool, mechanisms: Sequence[str], implementation: str) -> list[str]:
    caps = ["TOP", "UIDL"]
    if user:
        caps.append("USER")
    if mechanisms:
        caps.append("SASL " + " ".join(mechanisms))
    caps += ["RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
    if stls:
        caps.append("STLS")
    caps.append("IMPLEMENTATION " + implementation)
    return caps
