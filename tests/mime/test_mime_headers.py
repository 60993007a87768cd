"""Header-level readers: RFC 2047, addresses, dates, msg-ids, parameters, base subject."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from courriel.mime import (
    Address,
    base_subject,
    decode_header_value,
    parse_address_list,
    parse_addresses,
    parse_date,
    parse_msg_ids,
)
from courriel.mime.headers import scan_header
from courriel.mime.params import parse_content_type, parse_disposition


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain text", "plain text"),
        (" folded\r\n  value ", "folded  value"),
        ("=?UTF-8?Q?Caf=C3=A9?=", "Café"),
        ("=?utf-8?b?R3LDvMOfZQ==?=", "Grüße"),
        ("=?ISO-8859-15?Q?=A4uro?=", "€uro"),
        ("=?KOI8-R?B?8NLJ18XU?=", "Привет"),
        ("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"),
        ("=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab"),  # RFC 2047 §6.2
        ("=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=", "ab"),
        ("=?UTF-8?Q?a?= x =?UTF-8?Q?b?=", "a x b"),
        ("=?UTF-8?Q?=C3?= =?UTF-8?Q?=A9?=", "é"),  # character split across words
        ("=?UTF-8?Q?a_b?=", "a b"),
        ("=?UTF-8*fr?Q?langue?=", "langue"),  # RFC 2231 §5 language
        ("=?UTF-8?B?w6k?=", "é"),  # missing padding
        ("pre=?UTF-8?Q?=C3=A9?=post", "preépost"),  # embedded in a word
        ("=?x-unknown?Q?caf=C3=A9?=", "café"),  # unknown charset: UTF-8 guess
        ("=?x-unknown?Q?caf=E9?=", "café"),  # ... else windows-1252
        ("=?UTF-8?Q?broken", "=?UTF-8?Q?broken"),
        ("=?UTF-8?X?abc?=", "=?UTF-8?X?abc?="),
        ("Caf\udce9", "Café"),  # raw Latin-1 octet
        ("=?UTF-8?Q?a?= =?ISO-8859-1?Q?=E9?=", "aé"),
    ],
)
def test_decode_header_value(raw: str, expected: str) -> None:
    assert decode_header_value(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a@b.c", [Address(None, None, "a", "b.c")]),
        ("Name <a@b.c>", [Address("Name", None, "a", "b.c")]),
        ('"Last, First" <a@b.c>', [Address("Last, First", None, "a", "b.c")]),
        ('"q \\"x\\"" <a@b.c>', [Address('q "x"', None, "a", "b.c")]),
        ("a@b.c (Comment Name)", [Address("Comment Name", None, "a", "b.c")]),
        ("<@r1,@r2:a@b.c>", [Address(None, "@r1,@r2", "a", "b.c")]),  # obs-route
        ('"john doe"@b.c', [Address(None, None, '"john doe"', "b.c")]),
        ("John Q. Public <a@b.c>", [Address("John Q. Public", None, "a", "b.c")]),
        (
            "team: a@b.c, Bee <d@e.f>; x@y.z",
            [
                Address(None, None, "team", None),
                Address(None, None, "a", "b.c"),
                Address("Bee", None, "d", "e.f"),
                Address(None, None, None, None),
                Address(None, None, "x", "y.z"),
            ],
        ),
        ("empty:;", [Address(None, None, "empty", None), Address(None, None, None, None)]),
        (
            "open: a@b.c",
            [
                Address(None, None, "open", None),
                Address(None, None, "a", "b.c"),
                Address(None, None, None, None),
            ],
        ),
        ("localonly", [Address(None, None, "localonly", "")]),
        ("Just A Name", [Address("Just A Name", None, "", "")]),
        (",, a@b.c ,", [Address(None, None, "a", "b.c")]),
        ("<a@b.c", [Address(None, None, "a", "b.c")]),
        ("", []),
    ],
)
def test_parse_address_list(raw: str, expected: list[Address]) -> None:
    assert parse_address_list(raw) == expected


def test_parse_addresses_decodes() -> None:
    raw = '=?UTF-8?Q?J=C3=A9r=C3=B4me?= <j@x.fr>, g: "B\xe9" <b@y>;, Caf\udce9 <c@z>'
    assert parse_addresses(raw) == [("Jérôme", "j@x.fr"), ("Bé", "b@y"), ("Café", "c@z")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mon, 7 Feb 1994 21:52:25 -0800", datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8)))),
        ("Tue, 1 Jul 2003 10:52:37 +0200 (CEST)", datetime(2003, 7, 1, 10, 52, 37, tzinfo=timezone(timedelta(hours=2)))),
        ("1 Jul 2003 10:52 +0200", datetime(2003, 7, 1, 10, 52, tzinfo=timezone(timedelta(hours=2)))),
        ("Thu, 13 Feb 69 23:32:54 -0330", datetime(1969, 2, 13, 23, 32, 54, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))),
        ("Fri, 21 Nov 97 09:55:06 GMT", datetime(1997, 11, 21, 9, 55, 6, tzinfo=UTC)),
        ("Fri, 21 Nov 1997 09:55:06 EST", datetime(1997, 11, 21, 9, 55, 6, tzinfo=timezone(timedelta(hours=-5)))),
        ("Fri, 21 Nov 1997 09:55:06", datetime(1997, 11, 21, 9, 55, 6, tzinfo=UTC)),
        ("Sat, 31 Dec 2016 23:59:60 +0000", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("Mon,7 Feb 1994 21:52:25 -0800\r\n (folded)", datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8)))),
    ],
)  # fmt: skip
def test_parse_date(raw: str, expected: datetime) -> None:
    got = parse_date(raw)
    assert got == expected
    assert got is not None and got.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "raw", ["", "garbage", "32 Jan 2020 10:00 +0000", "1 Foo 2020 10:00", None]
)
def test_parse_date_invalid(raw: str | None) -> None:
    assert parse_date(raw) is None


def test_msg_ids() -> None:
    assert parse_msg_ids("<a@b> (comment) <c@d>\r\n <e@f>") == ["a@b", "c@d", "e@f"]
    assert parse_msg_ids("bare@id") == ["bare@id"]
    assert parse_msg_ids("") == []
    assert parse_msg_ids("<>") == []


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Re: hello", "hello"),
        ("RE: re: Fwd: hello", "hello"),
        ("Re[2]: hello", "hello"),  # "[2]" is a subj-blob inside subj-refwd
        ("Rex: hello", "Rex: hello"),
        ("Re [list]: hello", "hello"),
        ("[list] Re: hello", "hello"),
        ("[list] hello (fwd)", "hello"),
        ("hello (fwd) (FWD)  ", "hello"),
        ("[Fwd: Re: hello]", "hello"),
        ("[only a blob]", "[only a blob]"),
        ("Fw:  hello\tworld", "hello world"),
        ("", ""),
    ],
)
def test_base_subject(subject: str, expected: str) -> None:
    assert base_subject(subject) == expected


def test_content_type_lenient() -> None:
    defects: list[str] = []
    ct = parse_content_type(
        'Text/HTML (comment); Charset="UTF-8"; name=my file.pdf; junk; a=b (c)', defects
    )
    assert ct is not None
    assert ct[:2] == ("Text", "HTML")
    assert ct[2] == [("charset", "UTF-8"), ("name", "my file.pdf"), ("a", "b")]
    assert ct[3] == [("Charset", "UTF-8"), ("name", "my file.pdf"), ("a", "b")]
    assert defects  # "junk"
    assert parse_content_type("texthtml", []) is None
    assert parse_content_type("text/", []) is None


def test_parameters_2047_and_duplicates() -> None:
    defects: list[str] = []
    disp = parse_disposition(
        'attachment; filename="=?UTF-8?B?w6kuanBn?="; filename="second"; filename*=UTF-8\'\'%C3%A0',
        defects,
    )
    assert disp is not None
    assert disp[1] == [("filename", "à")]  # the RFC 2231 value wins
    assert disp[2] == [("filename", "=?UTF-8?B?w6kuanBn?="), ("filename*", "UTF-8''%C3%A0")]
    assert any("duplicate" in d for d in defects)
    no_ext = parse_disposition('inline; filename="=?UTF-8?B?w6kuanBn?="', [])
    assert no_ext is not None and no_ext[1] == [("filename", "é.jpg")]


def test_rfc2231_missing_section() -> None:
    defects: list[str] = []
    ct = parse_content_type("text/plain; name*0=a; name*2=c", defects)
    assert ct is not None and ct[2] == [("name", "a")]
    assert defects


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Found by fuzz/targets/headers.py: 8-bit octets in a parameter name (read with
        # surrogateescape) stayed lone surrogates in the decoded parameters.
        ("text/plain; name*\udce9=a", [("name*é", "a")]),
        ("text/plain; n\udcc3\udca9=b; c=d", [("né", "b"), ("c", "d")]),
    ],
)
def test_parameter_names_with_8bit_octets(raw: str, expected: list[tuple[str, str]]) -> None:
    ct = parse_content_type(raw, [])
    assert ct is not None and ct[2] == expected
    for name, value in ct[2]:
        (name + value).encode("utf-8")  # no lone surrogates


def test_scan_header_offsets_and_folding() -> None:
    data = b"A: 1\r\nB: two\r\n  lines\r\nbad line\r\nC:\r\n\r\nbody"
    defects: list[str] = []
    fields, body_start = scan_header(data, 0, len(data), defects)
    assert fields == [("A", " 1"), ("B", " two\r\n  lines"), ("C", "")]
    assert data[body_start:] == b"body"
    assert defects == ["invalid header line at offset 23"]
