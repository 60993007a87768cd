"""The pure POP3 layer: command parser on raw bytes, responses, dot-stuffing, TOP, APOP."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.pop3.protocol import (
    Command,
    ParseError,
    apop_digest,
    apop_matches,
    apop_timestamp,
    capabilities,
    dot_stuff,
    err,
    message_response,
    multiline,
    ok,
    parse_command,
    top,
    unique_id,
    wire_form,
)

PARSED = [
    (b"STAT\r\n", Command("STAT")),
    (b"stat\r\n", Command("STAT")),
    (b"StAt\n", Command("STAT")),
    (b"LIST\r\n", Command("LIST")),
    (b"LIST 3\r\n", Command("LIST", ("3",), (3,))),
    (b"RETR 12\r\n", Command("RETR", ("12",), (12,))),
    (b"DELE 1\r\n", Command("DELE", ("1",), (1,))),
    (b"TOP 2 0\r\n", Command("TOP", ("2", "0"), (2, 0))),
    (b"TOP 2  10\r\n", Command("TOP", ("2", "10"), (2, 10))),
    (b"UIDL 7\r\n", Command("UIDL", ("7",), (7,))),
    (b"USER alice@example.test\r\n", Command("USER", ("alice@example.test",))),
    (b"PASS  two  spaces \r\n", Command("PASS", (" two  spaces ",))),
    (b"PASS p\xc3\xa4ss\r\n", Command("PASS", ("p\u00e4ss",))),
    (b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n",
     Command("APOP", ("mrose", "c4c9334bac560ecc979e58001b3e22fb"))),
    (b"AUTH\r\n", Command("AUTH")),
    (b"AUTH PLAIN\r\n", Command("AUTH", ("PLAIN",))),
    (b"AUTH PLAIN AGFsaWNlAHB3\r\n", Command("AUTH", ("PLAIN", "AGFsaWNlAHB3"))),
    (b"AUTH PLAIN =\r\n", Command("AUTH", ("PLAIN", "="))),
    (b"CAPA\r\n", Command("CAPA")),
    (b"STLS\r\n", Command("STLS")),
    (b"QUIT\r\n", Command("QUIT")),
    (b"NOOP\r\n", Command("NOOP")),
    (b"RSET\r\n", Command("RSET")),
    (b"RETR 0000000001\r\n", Command("RETR", ("0000000001",), (1,))),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "expected"), PARSED)
def test_parse(raw: bytes, expected: Command) -> None:
    assert parse_command(raw) == expected


REFUSED = [
    (b"\r\n", "empty command"),
    (b"   \r\n", "empty command"),
    (b"HELO\r\n", "unknown command"),
    (b"XYZZY\r\n", "unknown command"),
    (b"RE\r\n", "unknown command"),
    (b"1234\r\n", "unknown command"),
    (b"RETR\r\n", "RETR needs 1 argument"),
    (b"RETR x\r\n", "invalid number 'x'"),
    (b"RETR -1\r\n", "invalid number '-1'"),
    (b"RETR 0\r\n", "message numbers start at 1"),
    (b"RETR 1 2\r\n", "too many arguments to RETR"),
    (b"RETR 12345678901\r\n", "invalid number '12345678901'"),
    (b"RETR \xd9\xa3\r\n", "invalid number '\u0663'"),
    (b"TOP 1\r\n", "TOP needs 2 arguments"),
    (b"TOP 1 -2\r\n", "invalid number '-2'"),
    (b"STAT x\r\n", "too many arguments to STAT"),
    (b"USER\r\n", "USER needs 1 argument"),
    (b"USER a b\r\n", "too many arguments to USER"),
    (b"PASS\r\n", "PASS needs an argument"),
    (b"PASS \r\n", "PASS needs an argument"),
    (b"APOP mrose 1234\r\n", "the APOP digest is 32 hexadecimal digits"),
    (b"APOP mrose\r\n", "APOP needs 2 arguments"),
    (b"AUTH PLAIN a b\r\n", "too many arguments to AUTH"),
    (b"RETR 1\x00\r\n", "control characters in command"),
    (b"US\x00ER a\r\n", "control characters in command"),
    (b"USER a\rb\r\n", "control characters in command"),
    (b"USER \xff\xfe\r\n", "command is not UTF-8"),
]


@pytest.mark.parametrize(("raw", "message"), REFUSED)
def test_parse_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_command(raw)
    assert str(info.value) == message


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_parser_raises_only_parse_error(raw: bytes) -> None:
    try:
        cmd = parse_command(raw)
    except ParseError as exc:
        assert str(exc)
        return
    assert cmd.name in {"USER", "PASS", "APOP", "AUTH", "CAPA", "STLS", "QUIT", "STAT", "LIST",
                        "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL"}  # fmt: skip
    assert all(n >= 0 for n in cmd.numbers)


KEYWORDS = ["USER", "PASS", "APOP", "AUTH", "LIST", "RETR", "DELE", "TOP", "UIDL", "STAT", "QUIT"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KEYWORDS), st.lists(st.text(max_size=12), max_size=4))
def test_fuzz_commands_with_arguments(keyword: str, args: list[str]) -> None:
    raw = (" ".join([keyword, *args]) + "\r\n").encode("utf-8", "surrogatepass")
    try:
        cmd = parse_command(raw)
    except ParseError:
        return
    assert cmd.name == keyword
    if keyword in ("RETR", "DELE"):
        assert len(cmd.numbers) == 1 and cmd.numbers[0] >= 1


def test_responses() -> None:
    assert ok() == b"+OK\r\n"
    assert ok("2 320") == b"+OK 2 320\r\n"
    assert err("no such message") == b"-ERR no such message\r\n"
    assert err("locked", "IN-USE") == b"-ERR [IN-USE] locked\r\n"
    assert multiline("list", ["1 120", ".hidden", "2 200"]) == b"+OK list\r\n1 120\r\n..hidden\r\n2 200\r\n.\r\n"
    assert multiline("empty", []) == b"+OK empty\r\n.\r\n"


STUFFING = [
    (b"a\r\nb\r\n", b"a\r\nb\r\n"),
    (b".a\r\n", b"..a\r\n"),
    (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n"),
    (b"a\r\n..b\r\n", b"a\r\n...b\r\n"),
    (b".\r\n.\r\n", b"..\r\n..\r\n"),
    (b"a.b\r\n x.\r\n", b"a.b\r\n x.\r\n"),
    (b"a\n.\nb\r\n", b"a\n..\nb\r\n"),  # after a bare LF too: LF-splitting clients stay framed
]


@pytest.mark.parametrize(("data", "stuffed"), STUFFING)
def test_dot_stuffing(data: bytes, stuffed: bytes) -> None:
    assert dot_stuff(data) == stuffed
    assert message_response("x", data) == b"+OK x\r\n" + stuffed + b".\r\n"


def unstuff(body: bytes) -> bytes:
    """What a client does (RFC 1939 §3), on the lines of a multi-line body."""
    lines = body.split(b"\r\n")
    assert lines[-2:] == [b".", b""]
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines[:-2])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"", b".", b"..", b"a", b".a", b"a.", b" .", b"From x"]), max_size=20))
def test_stuffing_round_trips(lines: list[bytes]) -> None:
    data = b"".join(line + b"\r\n" for line in lines)
    body = message_response("x", data).split(b"\r\n", 1)[1]
    assert unstuff(body) == data
    assert b"\r\n.\r\n" not in b"\r\n" + body[:-3]  # the terminator appears only at the end


WIRE = [
    (b"", b""),
    (b"a\r\nb\r\n", b"a\r\nb\r\n"),
    (b"a\r\nb", b"a\r\nb\r\n"),
    (b"a\nb\n", b"a\nb\n\r\n"),
    (b"a\r\n.\nb\r\n", b"a\r\n.\nb\r\n"),
    (b"a\rb\r\n", b"a\rb\r\n"),
]


@pytest.mark.parametrize(("data", "wire"), WIRE)
def test_wire_form(data: bytes, wire: bytes) -> None:
    assert wire_form(data) == wire


MESSAGE = b"From: a\r\nSubject: s\r\n\r\nline 1\r\nline 2\r\n.line 3\r\n"


@pytest.mark.parametrize(
    ("data", "n", "expected"),
    [
        (MESSAGE, 0, b"From: a\r\nSubject: s\r\n\r\n"),
        (MESSAGE, 1, b"From: a\r\nSubject: s\r\n\r\nline 1\r\n"),
        (MESSAGE, 3, MESSAGE),
        (MESSAGE, 99, MESSAGE),
        (MESSAGE, 9999999999, MESSAGE),
        (b"From: a\r\nSubject: s\r\n", 5, b"From: a\r\nSubject: s\r\n"),
        (b"\r\nbody\r\nmore\r\n", 1, b"\r\nbody\r\n"),
        (b"\r\nbody\r\nmore\r\n", 0, b"\r\n"),
    ],
)
def test_top(data: bytes, n: int, expected: bytes) -> None:
    assert top(data, n) == expected


def test_apop_rfc1939_example() -> None:
    # RFC 1939 §7
    stamp = "<1896.697170952@dbc.mtview.ca.us>"
    assert apop_digest(stamp, "tanstaaf") == "c4c9334bac560ecc979e58001b3e22fb"
    assert apop_matches(stamp, "tanstaaf", "C4C9334BAC560ECC979E58001B3E22FB")
    assert not apop_matches(stamp, "other", "c4c9334bac560ecc979e58001b3e22fb")
    assert apop_digest(stamp, "tanstaaf") == hashlib.md5(f"{stamp}tanstaaf".encode()).hexdigest()


def test_apop_timestamps_are_unique_msg_ids() -> None:
    stamps = {apop_timestamp("mail.example.test") for _ in range(100)}
    assert len(stamps) == 100
    assert all(s.startswith("<") and s.endswith("@mail.example.test>") for s in stamps)
    assert apop_timestamp("bad host>") .endswith("@badhost>")


def test_unique_id_and_capabilities() -> None:
    uid = unique_id(4294967295, 4294967295)
    assert uid == "4294967295.4294967295" and len(uid) <= 70
    assert all(0x21 <= ord(c) <= 0x7E for c in uid)
    caps = capabilities(stls=True, user=False, mechanisms=["SCRAM-SHA-256"], implementation="courriel")
    assert caps == ["TOP", "UIDL", "SASL SCRAM-SHA-256", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                    "STLS", "IMPLEMENTATION courriel"]  # fmt: skip
