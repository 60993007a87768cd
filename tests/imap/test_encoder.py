"""Response encoding and section extraction, on tables of raw bytes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from courriel.imap.protocol import encoder
from courriel.imap.protocol.sections import (
    UnknownEncoding,
    binary_section,
    body_section,
    select_fields,
)
from courriel.imap.protocol.types import Section
from courriel.mime import parse_message
from courriel.mime.structure import Address, Envelope
from courriel.store.api import Flag


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"", b'""'),
        (b"plain", b'"plain"'),
        (b'say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        (b"two\r\nlines", b"{10}\r\ntwo\r\nlines"),
        ("café", b"{5}\r\ncaf\xc3\xa9"),
        (b"x" * 2000, b"{2000}\r\n" + b"x" * 2000),
    ],
)
def test_string(value: bytes | str, expected: bytes) -> None:
    assert encoder.string(value) == expected


def test_literal8_only_with_nul() -> None:
    assert encoder.literal(b"a\x00b", binary=True) == b"~{3}\r\na\x00b"
    assert encoder.literal(b"ab", binary=True) == b"{2}\r\nab"


@pytest.mark.parametrize(
    ("name", "utf8", "expected"),
    [
        ("INBOX", False, b"INBOX"),
        ("inbox", False, b"INBOX"),
        ("Sent", False, b'"Sent"'),
        ("été", False, b'"&AOk-t&AOk-"'),
        ("été", True, b"{5}\r\n\xc3\xa9t\xc3\xa9"),
        ('a"b', False, b'"a\\"b"'),
    ],
)
def test_mailbox_names(name: str, utf8: bool, expected: bytes) -> None:
    assert encoder.mailbox(name, utf8) == expected


def test_flags_dates_sets() -> None:
    assert encoder.flag_list(Flag.SEEN | Flag.DELETED, {"b", "a"}, recent=True) == b"(\\Seen \\Deleted \\Recent a b)"
    assert encoder.flag_list(Flag(0)) == b"()"
    when = datetime(2024, 3, 5, 7, 8, 9, tzinfo=timezone(-timedelta(hours=5)))
    assert encoder.internal_date(when) == b'" 5-Mar-2024 07:08:09 -0500"'
    assert encoder.seqset([1, 2, 3, 5, 7, 8]) == b"1:3,5,7:8"
    assert encoder.seqset([]) == b""


def test_envelope() -> None:
    env = Envelope(
        "Mon, 1 Jan 2024 00:00:00 +0000", 'a "quoted" subject',
        [Address("Bob", None, "bob", "example.test")], None, None,
        [Address(None, None, "team", None), Address(None, None, "x", "example.test"), Address(None, None, None, None)],
        None, None, None, "<id@x>",
    )  # fmt: skip
    assert encoder.envelope(env) == (
        b'("Mon, 1 Jan 2024 00:00:00 +0000" "a \\"quoted\\" subject" (("Bob" NIL "bob" "example.test")) NIL NIL'
        b' ((NIL NIL "team" NIL)(NIL NIL "x" "example.test")(NIL NIL NIL NIL)) NIL NIL NIL "<id@x>")'
    )


MULTI = (
    b"From: a@example.test\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
    b"preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n"
    b"--b1\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Disposition: attachment; filename=x.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\nContent-Language: en\r\n\r\nAAEC\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nX-A: 1\r\n\r\ninner body\r\n"
    b"--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n"
    b"--b1--\r\n"
)


def test_bodystructure_and_body() -> None:
    root = parse_message(MULTI).body
    bs = encoder.body(root, extensible=True)
    assert bs.startswith(b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 18 2 NIL NIL NIL NIL)')
    assert b'("application" "pdf" ("name" "x.pdf") NIL NIL "base64" 4 NIL ("attachment" ("filename" "x.pdf")) "en" NIL)' in bs
    assert b'("message" "rfc822" NIL NIL NIL "7bit" 36 (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL)' in bs
    assert bs.endswith(b' "mixed" ("boundary" "b1") NIL NIL NIL)')
    body = encoder.body(root, extensible=False)
    assert body.endswith(b' "mixed")')



@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (Section(), MULTI),
        (Section((1,)), b"line one\r\nline two"),
        (Section((1,), "MIME"), b"Content-Type: text/plain; charset=utf-8\r\n\r\n"),
        (Section((2,)), b"AAEC"),
        (Section((3,), "HEADER"), b"Subject: inner\r\nX-A: 1\r\n\r\n"),
        (Section((3,), "TEXT"), b"inner body"),
        (Section((3,), "HEADER.FIELDS", ("x-a",)), b"X-A: 1\r\n\r\n"),
        (Section((3, 1)), b"inner body"),
        (Section((), "HEADER.FIELDS", ("SUBJECT", "from")), b"From: a@example.test\r\nSubject: s\r\n\r\n"),
        (Section((), "HEADER.FIELDS.NOT", ("subject", "from", "content-type")), b"MIME-Version: 1.0\r\n\r\n"),
        (Section((), "HEADER.FIELDS", ("X-None",)), b"\r\n"),
        (Section((9,)), None),
        (Section((1,), "HEADER"), None),
        (Section((1, 1)), None),
    ],
)
def test_body_sections(section: Section, expected: bytes | None) -> None:
    root = parse_message(MULTI).body
    assert body_section(MULTI, root, section) == expected


def test_binary_sections() -> None:
    root = parse_message(MULTI).body
    assert binary_section(MULTI, root, Section((2,))) == b"\x00\x01\x02"
    assert binary_section(MULTI, root, Section((1,))) == b"line one\r\nline two"
    with pytest.raises(UnknownEncoding):
        binary_section(MULTI, root, Section((4,)))


def test_select_fields_keeps_folding() -> None:
    block = b"Subject: a\r\n  folded\r\nTo: x\r\n\r\n"
    assert select_fields(block, ("subject",), exclude=False) == b"Subject: a\r\n  folded\r\n\r\n"
