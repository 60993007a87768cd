"""The Sieve parser, validator and interpreter (courriel.sieve): script text in, then the
compiled script run over a fixed multipart message.

Invariants: parse and compile raise only SieveSyntaxError, naming a line of the script;
both are deterministic; a compiled script raises only SieveRuntimeError when run; the
outcome keeps RFC 5228/5429 rules: reject never with a fileinto or keep, discard cancels
the implicit keep, and everything it hands delivery is valid Unicode (the message has raw
8-bit header fields, which variables and match variables may copy).
"""

from __future__ import annotations

from datetime import UTC, datetime

from courriel.sieve.grammar import SieveSyntaxError, parse
from courriel.sieve.interpreter import SieveRuntimeError, evaluate
from courriel.sieve.message import Envelope
from courriel.sieve.validate import compile_script
from fuzz.common import check, constants

MESSAGE = (
    b"Return-Path: <bob@example.org>\r\n"
    b"Received: from a by b; Sun, 29 Nov 2026 10:00:00 +0000\r\n"
    b"From: Bob <bob@example.org>\r\n"
    b"To: alice@example.test, Carol <carol@example.net>\r\n"
    b"Subject: =?utf-8?q?R=C3=A9union?= [project-x] 42 items\r\n"
    b"Date: Sat, 28 Nov 2026 23:30:00 -0500\r\n"
    b"X-Priority: 2\r\n"
    b"X-Latin1: caf\xe9 cr\xe8me\r\n"
    b"X-Utf8: caf\xc3\xa9\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Caf=C3=A9 is open\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>HTML words</p>\r\n--b--\r\n"
)
ENV = Envelope("bob@example.org", "alice@example.test", "alice@example.test")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

TOKENS = [
    b"require", b"if", b"elsif", b"else", b"anyof", b"allof", b"not", b"true", b"false", b"header", b"address",
    b"envelope", b"exists", b"size", b"body", b"date", b"currentdate", b"fileinto", b"keep", b"discard", b"stop",
    b"redirect", b"reject", b"ereject", b"vacation", b"set", b"setflag", b"addflag", b"removeflag", b"hasflag",
    b":is", b":contains", b":matches", b":regex", b":value", b":count", b"\"ge\"", b":comparator",
    b"\"i;ascii-numeric\"", b":over", b":under", b":all", b":localpart", b":domain", b":copy", b":create",
    b":flags", b":days", b":subject", b":from", b":addresses", b":mime", b":handle", b":text", b":raw",
    b":content", b":index", b":last", b":zone", b":originalzone", b":lower", b":upper", b":quotewildcard",
    b":length", b"${1}", b"${var}", b"\"fileinto\"", b"\"variables\"", b"\"imap4flags\"", b"\"relational\"",
    b"\"vacation\"", b"\"date\"", b"\"index\"", b"\"body\"", b"\"copy\"", b"\"mailbox\"", b"\"envelope\"",
    b"text:\r\n", b"\r\n.\r\n", b"/*", b"*/", b"#", b"[", b"]", b"{", b"}", b"(", b")", b",", b";", b"\"",
    b"\\", b"10K", b"1G", b"*", b"?",
]  # fmt: skip


def seeds() -> list[bytes]:
    texts = constants("tests/sieve/test_grammar.py", str) + constants(
        "tests/sieve/test_interpreter.py", str
    )
    return [t for t in texts if b";" in t or b"{" in t]


def _check_error(exc: SieveSyntaxError, text: str) -> None:
    check(1 <= exc.line <= text.count("\n") + 1, f"error line {exc.line} outside the script")


def test_one(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        nodes = parse(text)
    except SieveSyntaxError as exc:
        _check_error(exc, text)
        try:
            compile_script(text)
        except SieveSyntaxError:
            return
        raise AssertionError("compile_script accepted what parse refused") from None
    check(parse(text) == nodes, "parse is not deterministic")
    try:
        script = compile_script(text)
    except SieveSyntaxError as exc:
        _check_error(exc, text)
        return
    try:
        out = evaluate(script, MESSAGE, ENV, lambda name: name in ("Work", "INBOX"), now=NOW)
    except SieveRuntimeError:
        return
    if out.reject is not None:
        check(not out.fileinto, "reject together with fileinto or keep (RFC 5429 §2.1)")
    if out.discarded:
        check(not out.implicit_keep, "discard did not cancel the implicit keep")
    # What the script hands delivery goes to SQLite and SMTP: valid Unicode only (a name
    # the store refuses is filed into INBOX by sieve.delivery, so any name is fine).
    texts = [f.mailbox for f in out.fileinto] + [x for f in out.fileinto for x in f.flags]
    texts += out.redirects + list(out.keep_flags) + [out.reject or ""]
    if out.vacation is not None:
        v = out.vacation
        texts += [v.reason, v.subject or "", v.from_ or "", v.handle or "", *v.addresses]
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise AssertionError(f"lone surrogates in the outcome: {text[:80]!r}") from None
