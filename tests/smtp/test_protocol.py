"""The pure SMTP parsers, on tables of raw bytes, and fuzzed."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.smtp import protocol as p
from courriel.smtp.protocol import Reply, SmtpError

COMMANDS = [
    (b"EHLO client.example", "EHLO", "client.example"),
    (b"ehlo client.example", "EHLO", "client.example"),
    (b"MAIL FROM:<a@b.test> SIZE=10", "MAIL", "FROM:<a@b.test> SIZE=10"),
    (b"QUIT", "QUIT", ""),
    (b"NoOp", "NOOP", ""),
    (b"RCPT TO:<j\xc3\xb6rg@b.test>", "RCPT", "TO:<jörg@b.test>"),
    (b"BDAT 100 LAST", "BDAT", "100 LAST"),
]


@pytest.mark.parametrize(("line", "verb", "arg"), COMMANDS)
def test_parse_command(line: bytes, verb: str, arg: str) -> None:
    assert p.parse_command(line) == p.Command(verb, arg)


BAD_COMMANDS = [
    (b"", 500),
    (b" EHLO x", 500),
    (b"MA\x00IL FROM:<>", 500),
    (b"MAIL FROM:<\x1b>", 500),
    (b"\xff\xfe", 500),
    (b"12345", 500),
    (b"VERYLONGCOMMANDNAMEXYZ", 500),
]


@pytest.mark.parametrize(("line", "code"), BAD_COMMANDS)
def test_parse_command_errors(line: bytes, code: int) -> None:
    with pytest.raises(SmtpError) as info:
        p.parse_command(line)
    assert info.value.reply.code == code


MAIL = [
    ("FROM:<alice@example.test>", p.MailFrom("alice@example.test")),
    ("from:<Alice@Example.TEST>", p.MailFrom("Alice@example.test")),
    ("FROM: <a@b.test>", p.MailFrom("a@b.test")),  # a space after the colon is tolerated
    ("FROM:<>", p.MailFrom("")),
    ("FROM:<@relay.test,@r2.test:a@b.test>", p.MailFrom("a@b.test")),  # source route ignored
    ('FROM:<"john doe"@b.test>', p.MailFrom('"john doe"@b.test')),
    ('FROM:<"a>b"@b.test>', p.MailFrom('"a>b"@b.test')),
    ("FROM:<a@[192.0.2.1]>", p.MailFrom("a@[192.0.2.1]")),
    ("FROM:<a@[IPv6:2001:db8::1]>", p.MailFrom("a@[ipv6:2001:db8::1]")),
    ("FROM:<a@b.test> SIZE=1000", p.MailFrom("a@b.test", size=1000)),
    ("FROM:<a@b.test> body=8bitmime", p.MailFrom("a@b.test", body="8BITMIME")),
    ("FROM:<jörg@bücher.test> SMTPUTF8", p.MailFrom("jörg@bücher.test", smtputf8=True)),
    (
        "FROM:<a@b.test> RET=HDRS ENVID=QQ+2B314+3D",
        p.MailFrom("a@b.test", ret="HDRS", envid="QQ+314="),
    ),
    ("FROM:<a@b.test> AUTH=<>", p.MailFrom("a@b.test", auth="<>")),
]


@pytest.mark.parametrize(("arg", "expected"), MAIL)
def test_parse_mail_from(arg: str, expected: p.MailFrom) -> None:
    assert p.parse_mail_from(arg, 10_000) == expected


BAD_MAIL = [
    ("TO:<a@b.test>", 501, "5.5.4"),
    ("FROM:a@b.test", 501, "5.5.4"),
    ("FROM:<a@b.test", 501, "5.5.4"),
    ("FROM:<a@b.test>SIZE=1", 501, "5.5.4"),
    ("FROM:<ab.test>", 501, "5.1.3"),
    ("FROM:<a@>", 501, "5.1.2"),
    ("FROM:<a@-bad-.test>", 501, "5.1.2"),
    ("FROM:<a..b@b.test>", 501, "5.1.3"),
    ("FROM:<" + "x" * 65 + "@b.test>", 501, "5.1.3"),
    ("FROM:<a@" + "b" * 260 + ".test>", 501, "5.1.3"),
    ("FROM:<jörg@b.test>", 553, "5.6.7"),  # non-ASCII without SMTPUTF8 (RFC 6531 §3.7.4.1)
    ("FROM:<a@b.test> SIZE=10001", 552, "5.3.4"),
    ("FROM:<a@b.test> SIZE=x", 501, "5.5.4"),
    ("FROM:<a@b.test> BODY=BINARYMIME", 555, "5.5.4"),
    ("FROM:<a@b.test> RET=ALL", 501, "5.5.4"),
    ("FROM:<a@b.test> ENVID=" + "x" * 101, 501, "5.5.4"),
    ("FROM:<a@b.test> ENVID=a+4", 501, "5.5.4"),
    ("FROM:<a@b.test> FOO=bar", 555, "5.5.4"),
    ("FROM:<a@b.test> SIZE=1 SIZE=2", 501, "5.5.4"),
    ("FROM:<a@b.test> SMTPUTF8=yes", 501, "5.5.4"),
    ("FROM:<a@b.test> =x", 501, "5.5.4"),
]


@pytest.mark.parametrize(("arg", "code", "enhanced"), BAD_MAIL)
def test_parse_mail_from_errors(arg: str, code: int, enhanced: str) -> None:
    with pytest.raises(SmtpError) as info:
        p.parse_mail_from(arg, 10_000)
    assert (info.value.reply.code, info.value.reply.enhanced) == (code, enhanced)


RCPT = [
    ("TO:<bob@example.test>", False, p.RcptTo("bob@example.test")),
    ("TO:<Postmaster>", False, p.RcptTo("postmaster@example.test")),
    ("TO:<postmaster@other.test>", False, p.RcptTo("postmaster@other.test")),
    (
        "TO:<b@x.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40x.test",
        False,
        p.RcptTo("b@x.test", ("SUCCESS", "FAILURE"), "rfc822;b@x.test"),
    ),
    ("TO:<b@x.test> notify=never", False, p.RcptTo("b@x.test", ("NEVER",))),
    ("TO:<ü@x.test>", True, p.RcptTo("ü@x.test")),
]


@pytest.mark.parametrize(("arg", "utf8", "expected"), RCPT)
def test_parse_rcpt_to(arg: str, utf8: bool, expected: p.RcptTo) -> None:
    assert p.parse_rcpt_to(arg, utf8, "example.test") == expected


BAD_RCPT = [
    ("TO:<>", 501),
    ("TO:b@x.test", 501),
    ("FROM:<b@x.test>", 501),
    ("TO:<b@x.test> NOTIFY=NEVER,SUCCESS", 501),
    ("TO:<b@x.test> NOTIFY=SOMETIMES", 501),
    ("TO:<b@x.test> ORCPT=rfc822", 501),
    ("TO:<b@x.test> SIZE=1", 555),
    ("TO:<ü@x.test>", 553),
]


@pytest.mark.parametrize(("arg", "code"), BAD_RCPT)
def test_parse_rcpt_errors(arg: str, code: int) -> None:
    with pytest.raises(SmtpError) as info:
        p.parse_rcpt_to(arg, False, "example.test")
    assert info.value.reply.code == code


@pytest.mark.parametrize(
    ("arg", "expected"),
    [("100", (100, False)), ("0 LAST", (0, True)), ("5 last", (5, True))],
)
def test_parse_bdat(arg: str, expected: tuple[int, bool]) -> None:
    assert p.parse_bdat(arg) == expected


@pytest.mark.parametrize("arg", ["", "x", "-1", "10 MORE", "1 LAST x", "1" * 30])
def test_parse_bdat_errors(arg: str) -> None:
    with pytest.raises(SmtpError):
        p.parse_bdat(arg)


def test_reply_encoding() -> None:
    assert Reply(250, "2.1.0", "Sender OK").encode() == b"250 2.1.0 Sender OK\r\n"
    assert Reply(250, None, ("host", "SIZE 10", "HELP")).encode() == b"250-host\r\n250-SIZE 10\r\n250 HELP\r\n"
    assert Reply(214, "2.0.0", ("a", "b")).encode() == b"214-2.0.0 a\r\n214 2.0.0 b\r\n"


SCANS = [
    (b"a\r\nb\r\n", (False, False, False)),
    (b"a\nb\r\n", (True, False, False)),
    (b"a\rb\r\n", (False, True, False)),
    (b"a\r\n.\n", (True, False, False)),
    (b"x" * 30 + b"\r\n", (False, False, True)),
    (b"x" * 28 + b"\r\n", (False, False, False)),
]


@pytest.mark.parametrize(("data", "expected"), SCANS)
def test_scan_message(data: bytes, expected: tuple[bool, bool, bool]) -> None:
    s = p.scan_message(data, 30)
    assert (s.bare_lf, s.bare_cr, s.long_line) == expected


def test_xtext_roundtrip() -> None:
    for value in ["plain", "a+b=c", "spa ce", "ünï"]:
        assert p.xtext_decode(p.xtext_encode(value)) == value


# --- fuzzing --------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_command_line(line: bytes) -> None:
    try:
        cmd = p.parse_command(line)
    except SmtpError as exc:
        assert 500 <= exc.reply.code < 600
        return
    assert cmd.verb.isupper() or cmd.verb.isdigit() or cmd.verb.isalnum()
    for parser in (
        lambda a: p.parse_mail_from(a, 1000),
        lambda a: p.parse_rcpt_to(a, True, "example.test"),
        lambda a: p.parse_rcpt_to(a, False, "example.test"),
        p.parse_bdat,
        p.parse_helo,
    ):
        try:
            parser(cmd.arg)
        except SmtpError as exc:
            assert 400 <= exc.reply.code < 600 and exc.reply.enhanced


_local = st.from_regex(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9_-]{1,10}){0,2}", fullmatch=True)
_domain = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,8}){1,3}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(_local, _domain, st.one_of(st.none(), st.integers(0, 10_000)), st.sampled_from([None, "FULL", "HDRS"]))
def test_fuzz_valid_mail_from_roundtrip(local: str, domain: str, size: int | None, ret: str | None) -> None:
    params = (f" SIZE={size}" if size is not None else "") + (f" RET={ret}" if ret else "")
    mail = p.parse_mail_from(f"FROM:<{local}@{domain}>{params}", 10_000)
    assert mail == p.MailFrom(f"{local}@{domain}", size=size, ret=ret)
    rcpt = p.parse_rcpt_to(f"TO:<{local}@{domain}> NOTIFY=FAILURE", False, "x.test")
    assert rcpt.address == f"{local}@{domain}" and rcpt.notify == ("FAILURE",)
