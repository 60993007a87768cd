"""The pure SMTP parsers (courriel.smtp.protocol): a command line, then its argument given
to every argument parser (MAIL, RCPT, BDAT, EHLO, ESMTP parameters, xtext).

Invariants: only SmtpError is raised; its reply encodes to well-formed reply lines (a
code, the same code on every line, CRLF only at line ends: no reply injection); accepted
addresses are canonical (parsing them again gives them back) and ASCII without SMTPUTF8
(RFC 6531 §3.7.4.1); xtext survives encode -> decode (RFC 3461 §4); BDAT sizes are
non-negative integers.
"""

from __future__ import annotations

import re

from courriel.smtp import protocol as p
from fuzz.common import check, constants

TOKENS = [
    b"MAIL FROM:<", b"RCPT TO:<", b">", b"@", b"BDAT ", b" LAST", b"EHLO ", b"HELO ", b"DATA", b"AUTH ",
    b" SIZE=", b" BODY=8BITMIME", b" BODY=7BIT", b" SMTPUTF8", b" RET=HDRS", b" ENVID=", b" NOTIFY=",
    b"SUCCESS,FAILURE", b"NEVER", b"DELAY", b" ORCPT=rfc822;", b"utf-8;", b"+2B", b"+3D", b"[IPv6:", b"[",
    b"]", b'"', b"\\", b"@a,@b:", b"postmaster", b"Postmaster", b"\xc3\xa9", b"\r", b"\n", b"\x00", b"=",
]  # fmt: skip

_REPLY_LINE = re.compile(rb"(\d{3})([ -])(\d\.\d{1,3}\.\d{1,3} )?[^\r\n]*\r\n")


def seeds() -> list[bytes]:
    raw = constants("tests/smtp/test_protocol.py", bytes)
    return [
        *raw,
        b"MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME RET=HDRS ENVID=x+2By",
        b"RCPT TO:<c@d.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;c+40d.test",
        b'MAIL FROM:<"quoted local"@example.test> SMTPUTF8',
        b"RCPT TO:<@relay.test,@other.test:user@[192.0.2.1]>",
        b"RCPT TO:<Postmaster>",
        b"RCPT TO:<j\xc3\xa9r\xc3\xb4me@\xc3\xa9cole.test> NOTIFY=NEVER",
        b"BDAT 1000 LAST",
        b"EHLO [IPv6:2001:db8::1]",
        b"MAIL FROM:<>",
    ]


def _check_reply(exc: p.SmtpError) -> None:
    wire = exc.reply.encode()
    lines = _REPLY_LINE.findall(wire)
    check(lines, "reply does not parse")
    check(
        sum(len(m.group(0)) for m in _REPLY_LINE.finditer(wire)) == len(wire),
        f"malformed reply {wire!r}",
    )
    check(len({c for c, _, _ in lines}) == 1, "reply lines with different codes")
    check(400 <= exc.reply.code < 600, "a refusal that is not 4xx/5xx")


def _address_is_canonical(address: str, utf8: bool) -> None:
    check(p.parse_mailbox(address, utf8=utf8) == address, f"address {address!r} is not canonical")
    check(utf8 or address.isascii(), "non-ASCII address accepted without SMTPUTF8")


def _check_arg(arg: str) -> None:
    try:
        mail = p.parse_mail_from(arg, 10_000_000)
        if mail.address:
            _address_is_canonical(mail.address, mail.smtputf8)
        check(mail.size is None or 0 <= mail.size <= 10_000_000, "SIZE out of bounds")
        check(mail.envid is None or len(mail.envid) <= p.MAX_ENVID, "ENVID too long")
    except p.SmtpError as exc:
        _check_reply(exc)
    for utf8 in (False, True):
        try:
            rcpt = p.parse_rcpt_to(arg, utf8, "example.test")
            _address_is_canonical(rcpt.address, utf8)
            check(set(rcpt.notify) <= {"NEVER", "SUCCESS", "FAILURE", "DELAY"}, "bad NOTIFY")
        except p.SmtpError as exc:
            _check_reply(exc)
    try:
        size, _last = p.parse_bdat(arg)
        check(size >= 0 and size == int(arg.split(" ")[0]), "BDAT size")
    except p.SmtpError as exc:
        _check_reply(exc)
    try:
        name = p.parse_helo(arg)
        check(name and " " not in name, "EHLO name with a space")
    except p.SmtpError as exc:
        _check_reply(exc)
    try:
        params = p.parse_params(arg)
        check(all(k == k.upper() for k in params), "parameter names not upper-cased")
    except p.SmtpError as exc:
        _check_reply(exc)
    try:
        p.xtext_decode(arg)
    except p.SmtpError as exc:
        _check_reply(exc)
    check(p.xtext_decode(p.xtext_encode(arg)) == arg, "xtext round trip")


def test_one(data: bytes) -> None:
    try:
        cmd = p.parse_command(data)
    except p.SmtpError as exc:
        _check_reply(exc)
        return
    check(cmd.verb == cmd.verb.upper() and cmd.verb.isascii(), "verb not upper-case ASCII")
    check(not any(c in cmd.arg for c in "\r\n\x00"), "control character in the argument")
    _check_arg(cmd.arg)
