"""Protocol-aware redaction of session transcripts: one small state machine per protocol.

A machine is fed the raw bytes of each direction ("c" client, "s" server) as they cross the
wire and returns the transcript lines to keep. Secrets become ``<redacted N octets>``: SASL
responses (RFC 4954 §4 AUTH, RFC 9051 §6.2.2 AUTHENTICATE, RFC 5034 POP3 AUTH, RFC 5804 §2.1),
IMAP LOGIN's password (RFC 9051 §6.2.3), POP3 PASS and the APOP digest (RFC 1939 §7).
Message contents keep their header section only, the body becomes ``<body: N octets>``:
SMTP DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030 §2), IMAP APPEND literals and FETCH
BODY[]/RFC822/BINARY[] literals (RFC 9051 §6.3.12, §7.5.2), POP3 RETR and TOP (RFC 1939 §7).
``N`` counts the octets replaced, without the line ending, so a transcript can be checked
against the wire. The machines also notice who authenticates (for per-user tracing).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import deque
from collections.abc import Callable
from typing import ClassVar

#: A line longer than this is cut into pieces in the transcript.
MAX_LINE = 16 * 1024
#: A header section longer than this is counted as body.
MAX_HEADER = 64 * 1024
#: A literal that is not a message is kept verbatim up to this size.
MAX_KEPT_LITERAL = 16 * 1024

Record = tuple[str, str]  # (direction "c"/"s", text without the line ending)


def redacted(n: int) -> str:
    return f"<redacted {n} octets>"


def body(n: int) -> str:
    return f"<body: {n} octets>"


def _text(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("utf-8", "replace")


def sasl_user(mechanism: str, response: str, first: bool) -> str | None:
    """The authentication identity in a client's SASL response, when it shows one."""
    try:
        data = base64.b64decode(response.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    mech = mechanism.upper()
    if mech == "PLAIN":
        parts = data.split("\0")
        return parts[1] if len(parts) == 3 and parts[1] else None
    if mech == "LOGIN":
        return data if first and data else None
    if mech.startswith("SCRAM-"):
        m = re.search(r"(?:^|,)n=([^,]*)", data)
        return m.group(1).replace("=2C", ",").replace("=3D", "=") if m else None
    return None


class MessageSplitter:
    """A message's octets: header lines are kept, the body is counted."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.partial = bytearray()
        self.in_header = True
        self.header_size = 0
        self.body = 0

    def feed(self, data: bytes) -> None:
        if not self.in_header:
            self.body += len(data)
            return
        self.partial += data
        while self.in_header:
            i = self.partial.find(b"\n")
            if i < 0:
                if len(self.partial) + self.header_size > MAX_HEADER:
                    self._to_body()
                break
            line = bytes(self.partial[: i + 1])
            del self.partial[: i + 1]
            self.header_size += len(line)
            if self.header_size > MAX_HEADER:
                self.partial[:0] = line
                self._to_body()
                break
            self.emit(_text(line))
            if line in (b"\r\n", b"\n"):
                self.in_header = False
                self.body += len(self.partial)
                self.partial.clear()

    def _to_body(self) -> None:
        self.in_header = False
        self.body += len(self.partial)
        self.partial.clear()

    def finish(self, strip_eol: bool = False) -> None:
        """The end of the message: a pending header line, then the body marker."""
        if self.in_header and self.partial:
            self.emit(_text(bytes(self.partial)))
        elif self.body:
            self.emit(body(self.body - (2 if strip_eol and self.body >= 2 else 0)))
        self.partial.clear()
        self.body = 0


class Machine:
    """Line assembly per direction, with counted raw stretches (literals, BDAT chunks)."""

    def __init__(self) -> None:
        self.out: list[Record] = []
        self.buf = {"c": bytearray(), "s": bytearray()}
        self.raw = {"c": 0, "s": 0}
        #: Whether the next octet of each direction starts a line.
        self.bol = {"c": True, "s": True}
        #: The user whose authentication succeeded, and addresses the session is about.
        self.user: str | None = None
        self.candidate: str | None = None
        #: Called with (user, authenticated?): a successful login, or an SMTP recipient.
        self.on_user: Callable[[str, bool], None] | None = None
        self.stopped = False

    def feed(self, d: str, data: bytes) -> list[Record]:
        if self.stopped:
            return []
        buf = self.buf[d]
        buf += data
        while buf and not self.stopped:
            if self.raw[d]:
                n = min(self.raw[d], len(buf))
                chunk = bytes(buf[:n])
                del buf[:n]
                self.raw[d] -= n
                self.on_raw(d, chunk, self.raw[d] == 0)
                self.bol[d] = False
                continue
            body = self.dot_body(d)
            if body is not None and not body.in_header and not (self.bol[d] and buf[:1] == b"."):
                # A dot-terminated body being counted: skip whole lines up to the terminator
                # without looking at each (RFC 5321 §4.5.2, RFC 1939 §3).
                j = buf.find(b"\n.\r\n")
                bare = buf.find(b"\n.\n", 0, j + 3 if j >= 0 else len(buf))  # LF-only clients
                j = bare if bare >= 0 else j
                if j < 0:
                    j = buf.rfind(b"\n", 0, len(buf) - 2)
                if j >= 0:
                    body.body += j + 1
                    del buf[: j + 1]
                    self.bol[d] = True
                    continue
            i = buf.find(b"\n")
            if i < 0:
                if len(buf) <= MAX_LINE:
                    break
                i = MAX_LINE - 1
            line = bytes(buf[: i + 1])
            del buf[: i + 1]
            start = self.bol[d]
            self.bol[d] = line.endswith(b"\n")
            if d == "c":
                self.client(line, start)
            else:
                self.server(line, start)
        out, self.out = self.out, []
        return out

    def dot_body(self, d: str) -> MessageSplitter | None:
        """The message of direction ``d`` whose dot-terminated body is being counted, if any."""
        return None

    def c(self, text: str) -> None:
        self.out.append(("c", text))

    def s(self, text: str) -> None:
        self.out.append(("s", text))

    def authenticated(self, user: str | None) -> None:
        if user:
            self.user = user
            if self.on_user is not None:
                self.on_user(user, True)

    def client(self, line: bytes, start: bool) -> None:
        self.c(_text(line))

    def server(self, line: bytes, start: bool) -> None:
        self.s(_text(line))

    def on_raw(self, d: str, chunk: bytes, last: bool) -> None:
        self.out.append((d, body(len(chunk))))


class SmtpMachine(Machine):
    """SMTP, submission and LMTP (RFC 5321, 4954, 3030, 2033), from either end."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: deque[str] = deque()  # client commands waiting for their final reply
        self.auth_mech: str | None = None
        self.auth_first = True
        self.auth_user: str | None = None
        self.data: MessageSplitter | None = None
        self.bdat: MessageSplitter | None = None
        self.bdat_last = False

    def client(self, line: bytes, start: bool) -> None:
        if self.data is not None:
            if start and line in (b".\r\n", b".\n"):
                self.data.finish(strip_eol=True)
                self.data = None
                self.c(".")
                self.pending.append("DATA.")
            else:
                self.data.feed(line)
            return
        text = _text(line)
        if self.auth_mech is not None:
            self.c(redacted(len(text)))
            self._auth_response(text)
            return
        verb, _, arg = text.partition(" ")
        verb = verb.upper()
        if verb == "AUTH":
            mech, _, initial = arg.partition(" ")
            self.auth_mech = mech.upper()
            self.auth_first = True
            self.auth_user = None
            if initial:
                self.c(f"{verb} {mech} {redacted(len(initial))}")
                self._auth_response(initial)
            else:
                self.c(text)
        else:
            self.c(text)
        if verb in ("RCPT", "MAIL"):
            m = re.search(r"<([^>]*)>", arg)
            if m and m.group(1):
                self.candidate = m.group(1)
                if self.on_user is not None:
                    self.on_user(m.group(1), False)
        if verb == "BDAT":
            words = arg.split()
            try:
                size = int(words[0]) if words else 0
            except ValueError:
                size = 0
            self.bdat_last = len(words) > 1 and words[1].upper() == "LAST"
            if self.bdat is None:
                self.bdat = MessageSplitter(self.c)
            self.raw["c"] = size
            if size == 0 and self.bdat_last:
                self.bdat.finish()
                self.bdat = None
        self.pending.append(verb)

    def dot_body(self, d: str) -> MessageSplitter | None:
        return self.data if d == "c" else None

    def _auth_response(self, text: str) -> None:
        if text != "=" and self.auth_mech is not None:
            user = sasl_user(self.auth_mech, text, self.auth_first)
            if user and not self.auth_user:
                self.auth_user = user
        self.auth_first = False

    def on_raw(self, d: str, chunk: bytes, last: bool) -> None:
        if d == "c" and self.bdat is not None:
            self.bdat.feed(chunk)
            if last:
                if self.bdat_last:
                    self.bdat.finish()
                    self.bdat = None
                elif not self.bdat.in_header:
                    self.bdat.finish()  # this chunk's body; the next chunk continues it
            return
        super().on_raw(d, chunk, last)

    def server(self, line: bytes, start: bool) -> None:
        text = _text(line)
        self.s(text)
        final = len(text) < 4 or text[3] != "-"
        if not final or not start:
            return
        code = text[:3]
        if code == "334" and self.auth_mech is not None:
            return
        verb = self.pending.popleft() if self.pending else ""
        if verb == "AUTH":
            if code == "235":
                self.authenticated(self.auth_user)
            self.auth_mech = None
        elif verb == "DATA" and code == "354":
            self.data = MessageSplitter(self.c)
        elif verb == "STARTTLS" and code == "220":
            self.pending.clear()


class _Literal:
    """A literal being read: what it is (message, body, secret, user, keep) and its octets."""

    def __init__(self, kind: str, splitter: MessageSplitter | None) -> None:
        self.kind = kind
        self.splitter = splitter
        self.kept = bytearray()
        self.size = 0


_LITERAL = re.compile(rb"\{(\d+)(\+|-)?\}\r?\n$")
_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"')
_SECTION = re.compile(r"(BODY\[([^\]]*)\]|BINARY\[([^\]]*)\]|RFC822(\.HEADER|\.TEXT)?)(<\d+>)?\s*$", re.I)


class ImapMachine(Machine):
    """IMAP4rev1/rev2 (RFC 3501, 9051); ManageSieve (RFC 5804) uses the same framing."""

    def __init__(self) -> None:
        super().__init__()
        self.verb = ""  # the command being read (it continues after each literal)
        self.tag = ""
        self.login_stage = 0  # LOGIN: 1 user expected, 2 password expected
        self.login_user: str | None = None
        self.login_tag: str | None = None
        self.auth_tag: str | None = None
        self.auth_mech = ""
        self.auth_first = True
        self.auth_user: str | None = None
        self.compress_tag: str | None = None
        self.literal: dict[str, _Literal] = {}

    # --- client -------------------------------------------------------------------------
    def client(self, line: bytes, start: bool) -> None:
        text = _text(line)
        lit = _LITERAL.search(line)
        continuing = bool(self.verb)
        if self.auth_tag is not None and not continuing:
            self.c(redacted(len(text)))  # a SASL response line (RFC 9051 §6.2.2)
            self._auth_response(text)
            return
        if not continuing:
            tag, _, rest = text.partition(" ")
            verb, _, args = rest.partition(" ")
            self.tag, self.verb = tag, verb.upper()
            if self.verb == "UID":
                sub, _, args = args.partition(" ")
                self.verb = "UID " + sub.upper()
            head = text[: len(text) - len(args)]
            if self.verb == "LOGIN":
                self.login_stage, self.login_user, self.login_tag = 1, None, tag
                self.c(head + self._login_args(args))
            elif self.verb == "AUTHENTICATE":
                mech, _, initial = args.partition(" ")
                self.auth_tag, self.auth_mech, self.auth_first, self.auth_user = tag, mech.upper(), True, None
                if initial:
                    self.c(f"{head}{mech} {redacted(len(initial))}")
                    self._auth_response(initial)
                else:
                    self.c(text)
            else:
                if self.verb == "COMPRESS":
                    self.compress_tag = tag
                self.c(text)
        elif self.verb == "LOGIN":
            self.c(self._login_args(text))
        else:
            self.c(text)
        if lit is not None:
            size = int(lit.group(1))
            kind = "message" if self.verb in ("APPEND", "UID APPEND") else "keep"
            if self.verb == "LOGIN":
                kind = "user" if self.login_stage == 1 else "secret"
            self._start_literal("c", size, kind)
        else:
            self.verb = ""
            self.login_stage = 0

    def _login_args(self, args: str) -> str:
        """LOGIN's arguments with the password redacted (RFC 9051 §6.2.3)."""
        if self.login_stage == 1:
            if args.startswith("{"):
                return args  # the user name follows as a literal
            m = _QUOTED.match(args)
            if m:
                self.login_user = m.group(1).replace('\\"', '"').replace("\\\\", "\\")
                shown, rest = m.group(0), args[m.end() :]
            else:
                shown, _, rest = args.partition(" ")
                self.login_user = shown
                rest = " " + rest if rest else ""
            self.login_stage = 2
            return shown + self._login_args(rest)
        if self.login_stage == 2:
            lead = len(args) - len(args.lstrip(" "))
            return args[:lead] + (redacted(len(args) - lead) if len(args) > lead else "")
        return args

    def _auth_response(self, text: str) -> None:
        if text != "=" and text != "*":
            user = sasl_user(self.auth_mech, text, self.auth_first)
            if user and not self.auth_user:
                self.auth_user = user
        self.auth_first = False

    # --- literals -----------------------------------------------------------------------
    def _start_literal(self, d: str, size: int, kind: str) -> None:
        emit = self.c if d == "c" else self.s
        self.literal[d] = _Literal(kind, MessageSplitter(emit) if kind == "message" else None)
        self.raw[d] = size

    def on_raw(self, d: str, chunk: bytes, last: bool) -> None:
        lit = self.literal.get(d) or _Literal("keep", None)
        self.literal[d] = lit
        emit = self.c if d == "c" else self.s
        lit.size += len(chunk)
        if lit.splitter is not None:
            lit.splitter.feed(chunk)
        elif lit.kind in ("keep", "user") and len(lit.kept) <= MAX_KEPT_LITERAL:
            lit.kept += chunk
        if not last:
            return
        del self.literal[d]
        if lit.splitter is not None:
            lit.splitter.finish()
        elif lit.kind == "secret":
            emit(redacted(lit.size))
        elif lit.kind == "body":
            emit(body(lit.size))
        else:
            if lit.kind == "user":
                self.login_user = lit.kept.decode("utf-8", "replace")
                self.login_stage = 2
            if lit.size > MAX_KEPT_LITERAL:
                emit(f"<literal: {lit.size} octets>")
                return
            pieces = bytes(lit.kept).split(b"\n")
            if len(pieces) > 1 and pieces[-1] == b"":
                pieces.pop()  # no empty piece after a final line ending
            for piece in pieces:
                emit(piece.rstrip(b"\r").decode("utf-8", "replace"))

    # --- server -------------------------------------------------------------------------
    def server(self, line: bytes, start: bool) -> None:
        text = _text(line)
        self.s(text)
        lit = _LITERAL.search(line)
        if lit is not None:
            before = line[: lit.start()].decode("utf-8", "replace")
            m = _SECTION.search(before)
            kind = "keep"
            if m:
                section = (m.group(2) if m.group(2) is not None else m.group(3)) or ""
                if m.group(1).upper().startswith("RFC822"):
                    section = {"": "", ".HEADER": "HEADER", ".TEXT": "TEXT"}[(m.group(4) or "").upper()]
                if m.group(5):
                    kind = "body"  # a partial fetch <n>: a slice of anything
                elif section == "":
                    kind = "message"
                elif section.upper().startswith("HEADER") or section.upper().endswith(".MIME"):
                    kind = "keep"
                else:
                    kind = "body"
            self._start_literal("s", int(lit.group(1)), kind)
            return
        tag, _, rest = text.partition(" ")
        status = rest.partition(" ")[0].upper()
        if tag == "*" or tag == "+" or status not in ("OK", "NO", "BAD"):
            return
        if tag == self.auth_tag:
            if status == "OK":
                self.authenticated(self.auth_user)
            self.auth_tag = None
        if tag == self.login_tag:
            if status == "OK":
                self.authenticated(self.login_user)
            self.login_tag = None
        if tag == self.compress_tag:
            self.compress_tag = None
            if status == "OK":
                self.out.append(("event", "COMPRESS=DEFLATE active: the rest of the session is compressed, "
                                          "not transcribed"))  # fmt: skip
                self.stopped = True


class SieveMachine(ImapMachine):
    """ManageSieve (RFC 5804): like IMAP without tags; AUTHENTICATE's responses are secret."""

    def client(self, line: bytes, start: bool) -> None:
        text = _text(line)
        lit = _LITERAL.search(line)
        if self.verb:  # continuing a command after a literal
            self.c(text if self.verb != "AUTHENTICATE" else (redacted(len(text)) if text else ""))
        elif self.auth_tag is not None:
            self.c(redacted(len(text)))
            self._auth_response(text.strip('"'))
        else:
            verb, _, args = text.partition(" ")
            if verb.upper() == "AUTHENTICATE":
                mech, _, initial = args.partition(" ")
                self.auth_tag, self.auth_mech = "*", mech.strip('"').upper()
                self.auth_first, self.auth_user = True, None
                if initial:
                    self.c(f"{verb} {mech} {redacted(len(initial))}")
                    self._auth_response(initial.strip('"'))
                else:
                    self.c(text)
                self.verb = "AUTHENTICATE" if lit is not None else ""
            else:
                self.c(text)
                self.verb = verb.upper() if lit is not None else ""
        if lit is not None:
            self._start_literal("c", int(lit.group(1)), "secret" if self.verb == "AUTHENTICATE" else "keep")
            self.verb = self.verb or "LITERAL"
        else:
            self.verb = ""

    def server(self, line: bytes, start: bool) -> None:
        text = _text(line)
        self.s(text)
        lit = _LITERAL.search(line)
        if lit is not None:
            self._start_literal("s", int(lit.group(1)), "keep")
            return
        status = text.partition(" ")[0].upper()
        if self.auth_tag is not None and status in ("OK", "NO", "BYE"):
            if status == "OK":
                self.authenticated(self.auth_user)
            self.auth_tag = None


class Pop3Machine(Machine):
    """POP3 (RFC 1939, 2449, 5034)."""

    MULTI: ClassVar[frozenset[str]] = frozenset({"CAPA", "RETR", "TOP"})

    def __init__(self) -> None:
        super().__init__()
        self.pending: deque[tuple[str, bool]] = deque()  # (verb, multi-line answer?)
        self.user_name: str | None = None
        self.auth_mech: str | None = None
        self.auth_first = True
        self.multi: str | None = None
        self.message: MessageSplitter | None = None

    def client(self, line: bytes, start: bool) -> None:
        text = _text(line)
        if self.auth_mech is not None:
            self.c(redacted(len(text)))
            if text != "*":
                user = sasl_user(self.auth_mech, text, self.auth_first)
                self.user_name = user or self.user_name
            self.auth_first = False
            return
        verb, _, arg = text.partition(" ")
        up = verb.upper()
        if up == "PASS":
            self.c(f"{verb} {redacted(len(arg))}" if arg else text)
        elif up == "APOP":
            name, _, digest = arg.partition(" ")
            self.user_name = name
            self.c(f"{verb} {name} {redacted(len(digest))}")
        elif up == "AUTH" and arg:
            mech, _, initial = arg.partition(" ")
            self.auth_mech, self.auth_first = mech.upper(), True
            if initial:
                self.c(f"{verb} {mech} {redacted(len(initial))}")
                self.user_name = sasl_user(self.auth_mech, initial, True) or self.user_name
                self.auth_first = False
            else:
                self.c(text)
        else:
            if up == "USER":
                self.user_name = arg
            self.c(text)
        multi = up in self.MULTI or (up in ("LIST", "UIDL", "AUTH") and not arg.strip())
        self.pending.append((up, multi))

    def dot_body(self, d: str) -> MessageSplitter | None:
        return self.message if d == "s" else None

    def server(self, line: bytes, start: bool) -> None:
        if self.multi is not None:
            if start and line in (b".\r\n", b".\n"):
                if self.message is not None:
                    self.message.finish(strip_eol=True)
                    self.message = None
                self.multi = None
                self.s(".")
            elif self.message is not None:
                self.message.feed(line)
            else:
                self.s(_text(line))
            return
        text = _text(line)
        self.s(text)
        if not start or text.startswith("+ "):
            return
        ok = text.startswith("+OK")
        if not (ok or text.startswith("-ERR")):
            return
        verb, multi = self.pending.popleft() if self.pending else ("", False)
        if self.auth_mech is not None:
            self.auth_mech = None
            if ok:
                self.authenticated(self.user_name)
            return
        if verb in ("PASS", "APOP") and ok:
            self.authenticated(self.user_name)
        if multi and ok:
            self.multi = verb
            if verb in ("RETR", "TOP"):
                self.message = MessageSplitter(self.s)


MACHINES: dict[str, Callable[[], Machine]] = {
    "smtp": SmtpMachine,
    "submission": SmtpMachine,
    "submissions": SmtpMachine,
    "lmtp": SmtpMachine,
    "outbound": SmtpMachine,
    "imap": ImapMachine,
    "imaps": ImapMachine,
    "pop3": Pop3Machine,
    "pop3s": Pop3Machine,
    "managesieve": SieveMachine,
}


def machine_for(listener: str) -> Machine:
    return MACHINES.get(listener, Machine)()
