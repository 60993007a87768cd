"""SMTP wire format: pure parsers for command lines and ESMTP parameters, and reply codes.

No I/O and no store here: bytes in, command objects out (tested with tables of raw bytes in
``tests/smtp/test_protocol.py`` and fuzzed with hypothesis). Every reply the server sends is
a :class:`Reply` with an RFC 3463 enhanced status code (RFC 2034), except the greeting, the
EHLO/HELO reply and the intermediate 334/354 replies, which the RFCs leave without one.

Limits (RFC 5321 §4.5.3.1): local part 64 octets, domain 255, path 256.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_LOCAL_PART = 64
MAX_DOMAIN = 255
MAX_PATH = 256
#: RFC 3461 §4.4: ENVID is at most 100 characters.
MAX_ENVID = 100
#: RFC 3461 §4.2: ORCPT values are at most 500 characters.
MAX_ORCPT = 500


@dataclass(frozen=True, slots=True)
class Reply:
    code: int
    enhanced: str | None
    text: str | tuple[str, ...]

    def encode(self) -> bytes:
        lines = (self.text,) if isinstance(self.text, str) else self.text
        out = []
        for i, line in enumerate(lines):
            sep = " " if i == len(lines) - 1 else "-"
            prefix = f"{self.enhanced} " if self.enhanced else ""
            out.append(f"{self.code}{sep}{prefix}{line}\r\n")
        return "".join(out).encode("utf-8")

    @property
    def transient(self) -> bool:
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        return self.code >= 500


class SmtpError(Exception):
    """A refusal: the session turns it into its reply (in one place, ``session.py``)."""

    def __init__(self, code: int, enhanced: str, text: str, close: bool = False) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.reply = Reply(code, enhanced, text)
        #: The session ends after this reply (421 and friends).
        self.close = close


def err(code: int, enhanced: str, text: str, close: bool = False) -> SmtpError:
    return SmtpError(code, enhanced, text, close)


# Replies used in several places (RFC 5321 §4.2.3 codes; RFC 3463 enhanced codes).
OK = Reply(250, "2.0.0", "OK")
BYE = Reply(221, "2.0.0", "Bye")
START_DATA = Reply(354, None, "End data with <CR><LF>.<CR><LF>")
VRFY_CANNOT = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
SHUTDOWN = Reply(421, "4.3.2", "Service shutting down, closing transmission channel")


def syntax(text: str) -> SmtpError:
    return err(501, "5.5.4", text)


# --- command lines ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # upper case, e.g. "MAIL"
    arg: str  # the rest of the line after one space, as sent (UTF-8 decoded)


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_VERB = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}\Z")


def parse_command(line: bytes) -> Command:
    """One command line without its line ending. Raises SmtpError (500/501)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise err(500, "5.5.2", "Invalid UTF-8 in command") from None
    if _CONTROL.search(text):
        raise err(500, "5.5.2", "Control character in command")
    verb, _, arg = text.partition(" ")
    if not _VERB.match(verb):
        raise err(500, "5.5.2", "Syntax error, command unrecognized")
    return Command(verb.upper(), arg)


# --- addresses --------------------------------------------------------------------------

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_ATEXT_UTF8 = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_DOT_STRING = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*\Z")
_DOT_STRING_UTF8 = re.compile(rf"{_ATEXT_UTF8}+(?:\.{_ATEXT_UTF8}+)*\Z")
_QUOTED = re.compile(r'"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e])*"\Z')
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LABEL_UTF8 = r"[A-Za-z0-9\u0080-\U0010ffff](?:[A-Za-z0-9\-\u0080-\U0010ffff]*[A-Za-z0-9\u0080-\U0010ffff])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")
_DOMAIN_UTF8 = re.compile(rf"{_LABEL_UTF8}(?:\.{_LABEL_UTF8})*\.?\Z")
_IPV4 = re.compile(r"\[(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\]\Z")
_IPV6 = re.compile(r"\[IPv6:[0-9A-Fa-f:.]{2,45}\]\Z")


def valid_domain(domain: str, utf8: bool = False) -> bool:
    """A domain or an address literal (RFC 5321 §4.1.2, §4.1.3)."""
    if len(domain.encode("utf-8")) > MAX_DOMAIN:
        return False
    if domain.startswith("["):
        return bool(_IPV4.match(domain) or _IPV6.match(domain))
    return bool((_DOMAIN_UTF8 if utf8 else _DOMAIN).match(domain))


def parse_mailbox(text: str, utf8: bool = False) -> str:
    """``local@domain`` (RFC 5321 §4.1.2 Mailbox); returns it with the domain lower-cased."""
    local, at, domain = text.rpartition("@")
    if not at or not local:
        raise err(501, "5.1.3", "Bad address syntax: an address needs local@domain")
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise err(501, "5.1.3", "Local part too long (RFC 5321 §4.5.3.1.1)")
    if local.startswith('"'):
        if not _QUOTED.match(local):
            raise err(501, "5.1.3", "Bad quoted local part")
    elif not (_DOT_STRING_UTF8 if utf8 else _DOT_STRING).match(local):
        raise err(501, "5.1.3", "Bad local part syntax")
    if not valid_domain(domain, utf8):
        raise err(501, "5.1.2", "Bad domain syntax")
    return f"{local}@{domain.rstrip('.').lower()}"


def is_ascii(text: str) -> bool:
    return text.isascii()


def _split_path(arg: str, keyword: str) -> tuple[str, str]:
    """'FROM:<path> params' -> ('path', 'params'). A space after the colon is tolerated."""
    head = arg[: len(keyword) + 1]
    if head.upper() != keyword + ":":
        raise syntax(f"Syntax: {'MAIL FROM' if keyword == 'FROM' else 'RCPT TO'}:<address>")
    rest = arg[len(keyword) + 1 :].lstrip(" ")
    if not rest.startswith("<"):
        raise syntax("Address must be in angle brackets")
    end = _closing_bracket(rest)
    if end < 0:
        raise syntax("Missing '>' after address")
    path = rest[1:end]
    params = rest[end + 1 :]
    if params and not params.startswith(" "):
        raise syntax("Expected a space before parameters")
    if len(path.encode("utf-8")) > MAX_PATH:
        raise err(501, "5.1.3", "Path too long (RFC 5321 §4.5.3.1.3)")
    return path, params.strip(" ")


def _closing_bracket(rest: str) -> int:
    quoted = escaped = False
    for i, c in enumerate(rest):
        if escaped:
            escaped = False
        elif c == "\\" and quoted:
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == ">" and not quoted:
            return i
    return -1


def _strip_route(path: str) -> str:
    # RFC 5321 §4.1.2 / appendix C: a source route "@a,@b:" is accepted and ignored.
    if path.startswith("@"):
        colon = path.find(":")
        if colon < 0:
            raise syntax("Bad source route")
        return path[colon + 1 :]
    return path


# --- ESMTP parameters -------------------------------------------------------------------

_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")


def parse_params(text: str) -> dict[str, str | None]:
    """'SIZE=100 BODY=8BITMIME SMTPUTF8' -> {'SIZE': '100', ...}; keys upper-cased."""
    out: dict[str, str | None] = {}
    for item in text.split(" "):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not _KEYWORD.match(key):
            raise err(501, "5.5.4", f"Bad parameter syntax: {item[:40]}")
        key = key.upper()
        if key in out:
            raise err(501, "5.5.4", f"Duplicate parameter {key}")
        if eq and (not value or any(ord(c) < 0x21 or c in "=" for c in value)):
            raise err(501, "5.5.4", f"Bad value for {key}")
        out[key] = value if eq else None
    return out


def xtext_decode(value: str) -> str:
    """RFC 3461 §4: '+XX' is a hex-encoded octet."""
    out = bytearray()
    i = 0
    raw = value.encode("utf-8")
    while i < len(raw):
        b = raw[i]
        if b == 0x2B:  # '+'
            hexpart = raw[i + 1 : i + 3]
            if len(hexpart) != 2 or not all(chr(h) in "0123456789ABCDEF" for h in hexpart):
                raise err(501, "5.5.4", "Bad xtext encoding")
            out.append(int(hexpart, 16))
            i += 3
        elif 0x21 <= b <= 0x7E and b != 0x3D:
            out.append(b)
            i += 1
        else:
            raise err(501, "5.5.4", "Bad character in xtext")
    return out.decode("utf-8", "replace")


def xtext_encode(value: str) -> str:
    return "".join(c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode()) for c in value)


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM: the reverse path ('' for the null sender) and its parameters."""

    address: str
    size: int | None = None
    body: str | None = None  # 7BIT, 8BITMIME
    smtputf8: bool = False
    ret: str | None = None  # RFC 3461 §4.3: FULL or HDRS
    envid: str | None = None  # RFC 3461 §4.4 (xtext decoded)
    auth: str | None = None  # RFC 4954 §5 AUTH= (kept, not trusted)


@dataclass(frozen=True, slots=True)
class RcptTo:
    address: str
    notify: tuple[str, ...] = ()  # RFC 3461 §4.1: NEVER, or some of SUCCESS FAILURE DELAY
    orcpt: str | None = None  # RFC 3461 §4.2: "addr-type;address" (xtext decoded)
    extra: dict[str, str | None] = field(default_factory=dict)


def parse_mail_from(arg: str, max_size: int) -> MailFrom:
    """The argument of MAIL (RFC 5321 §4.1.1.2) with SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH."""
    path, ptext = _split_path(arg, "FROM")
    params = parse_params(ptext)
    smtputf8 = "SMTPUTF8" in params
    if smtputf8 and params["SMTPUTF8"] is not None:
        raise err(501, "5.5.4", "SMTPUTF8 takes no value")
    size: int | None = None
    body = ret = envid = auth = None
    for key, value in params.items():
        if key == "SIZE":  # RFC 1870 §6
            if value is None or not value.isdigit() or len(value) > 20:
                raise err(501, "5.5.4", "Bad SIZE value")
            size = int(value)
            if size > max_size:
                raise err(552, "5.3.4", "Message size exceeds fixed maximum message size")
        elif key == "BODY":  # RFC 6152
            if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                raise err(555, "5.5.4", "Unsupported BODY type")
            body = value.upper()
        elif key == "RET":
            if value is None or value.upper() not in ("FULL", "HDRS"):
                raise err(501, "5.5.4", "RET must be FULL or HDRS")
            ret = value.upper()
        elif key == "ENVID":
            if value is None:
                raise err(501, "5.5.4", "ENVID needs a value")
            envid = xtext_decode(value)
            if len(envid) > MAX_ENVID or not envid.isprintable():
                raise err(501, "5.5.4", "Bad ENVID")
        elif key == "AUTH":
            auth = value
        elif key != "SMTPUTF8":
            raise err(555, "5.5.4", f"Unsupported parameter {key}")
    address = _reverse_path(path, smtputf8)
    return MailFrom(address, size, body, smtputf8, ret, envid, auth)


def _reverse_path(path: str, smtputf8: bool) -> str:
    if path == "":
        return ""
    path = _strip_route(path)
    if not smtputf8 and not path.isascii():
        # RFC 6531 §3.7.4.1
        raise err(553, "5.6.7", "Non-ASCII address without SMTPUTF8")
    return parse_mailbox(path, utf8=smtputf8)


_NOTIFY = {"NEVER", "SUCCESS", "FAILURE", "DELAY"}


def parse_rcpt_to(arg: str, smtputf8: bool, postmaster_domain: str) -> RcptTo:
    """The argument of RCPT (RFC 5321 §4.1.1.3) with NOTIFY and ORCPT (RFC 3461)."""
    path, ptext = _split_path(arg, "TO")
    params = parse_params(ptext)
    notify: tuple[str, ...] = ()
    orcpt = None
    for key, value in params.items():
        if key == "NOTIFY":
            items = tuple((value or "").upper().split(","))
            if not value or any(i not in _NOTIFY for i in items) or ("NEVER" in items and len(items) > 1):
                raise err(501, "5.5.4", "NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY")
            notify = items
        elif key == "ORCPT":
            if value is None:
                raise err(501, "5.5.4", "ORCPT needs a value")
            kind, semi, addr = value.partition(";")
            if not semi or not _KEYWORD.match(kind) or not addr:
                raise err(501, "5.5.4", "ORCPT must be addr-type;address")
            decoded = addr if kind.upper() == "UTF-8" else xtext_decode(addr)
            if len(value) > MAX_ORCPT:
                raise err(501, "5.5.4", "ORCPT too long")
            orcpt = f"{kind.lower()};{decoded}"
        else:
            raise err(555, "5.5.4", f"Unsupported parameter {key}")
    if path == "":
        raise err(501, "5.1.3", "Empty recipient address")
    path = _strip_route(path)
    # RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted.
    if path.lower() == "postmaster":
        path = f"postmaster@{postmaster_domain}"
    if not smtputf8 and not path.isascii():
        raise err(553, "5.6.7", "Non-ASCII address without SMTPUTF8")
    return RcptTo(parse_mailbox(path, utf8=smtputf8), notify, orcpt)


def parse_bdat(arg: str) -> tuple[int, bool]:
    """RFC 3030 §2: 'BDAT chunk-size [LAST]'."""
    parts = arg.split(" ")
    if not parts[0].isdigit() or len(parts[0]) > 18 or len(parts) > 2:
        raise syntax("Syntax: BDAT <size> [LAST]")
    last = False
    if len(parts) == 2:
        if parts[1].upper() != "LAST":
            raise syntax("Syntax: BDAT <size> [LAST]")
        last = True
    return int(parts[0]), last


def parse_helo(arg: str) -> str:
    """The client's name in EHLO/HELO: a domain or address literal (checked loosely)."""
    name = arg.strip()
    if not name or " " in name or len(name) > MAX_DOMAIN:
        raise syntax("Syntax: EHLO <domain or address literal>")
    return name


@dataclass(frozen=True, slots=True)
class DataScan:
    """What the DATA reader learned about a message: bare line endings, longest line."""

    bare_lf: bool
    bare_cr: bool
    long_line: bool


def scan_message(data: bytes, max_line: int) -> DataScan:
    """Check a message's line endings (RFC 5321 §2.3.8: CRLF only) and line lengths."""
    crlf = data.count(b"\r\n")
    bare_lf = data.count(b"\n") != crlf
    bare_cr = data.count(b"\r") != crlf
    long_line = len(data) > max_line and max(map(len, data.split(b"\r\n"))) > max_line - 2
    return DataScan(bare_lf, bare_cr, long_line)


def unstuff(data: bytes) -> bytes:
    """Remove RFC 5321 §4.5.2 dot-stuffing from DATA content given as CRLF-preceded lines.

    ``data`` starts with CRLF (a virtual one before the first line), and that CRLF is
    removed from the result."""
    return data.replace(b"\r\n.", b"\r\n")[2:]
