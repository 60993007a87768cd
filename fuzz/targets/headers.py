"""Header-level readers and writers (courriel.mime): RFC 2047 encoded words, RFC 2231
parameters, addresses, dates, message ids.

Input layout: byte 0 picks a charset for the encoder; the rest is a raw header value
(read the way the parser reads header bytes: UTF-8 with surrogateescape) and, decoded
with replacement, a Unicode text to encode.

Invariants: the readers never raise and return valid Unicode (no lone surrogates: the
values end up in SQLite and JSON); RFC 2047 words, unstructured values (also once folded
and unfolded) and RFC 2231 parameters decode to exactly the text encoded; a display name
written by encode_mailbox reads back unchanged.
"""

from __future__ import annotations

from courriel.mime import (
    base_subject,
    decode_header_value,
    parse_address_list,
    parse_addresses,
    parse_date,
    parse_msg_ids,
    unfold,
)
from courriel.mime.encode import (
    encode_mailbox,
    encode_param,
    encode_unstructured,
    encode_words,
    fold,
)
from courriel.mime.params import parse_content_type, parse_disposition
from fuzz.common import check, constants

CHARSETS = (
    "utf-8",
    "iso-8859-1",
    "windows-1252",
    "iso-8859-15",
    "iso-2022-jp",
    "koi8-r",
    "shift_jis",
    "us-ascii",
)
TOKENS = [
    b"=?", b"?=", b"?Q?", b"?B?", b"?q?", b"?b?", b"utf-8", b"iso-8859-1", b"iso-2022-jp", b"*en", b"_", b"=C3",
    b"=A9", b"w6k=", b"; ", b"filename*0*=", b"filename*1*=", b"filename*=", b"utf-8''", b"%C3%A9", b"'", b"\"",
    b"\\", b"(", b")", b"<", b">", b"@", b",", b":", b";", b"\r\n ", b"\r\n\t", b"\xc3\xa9", b"\xe9", b"\xff",
    b"text/plain", b"multipart/mixed", b"boundary=", b"charset=", b"attachment", b"Mon, 7 Feb 1994 21:52:25 -0800",
]  # fmt: skip


def seeds() -> list[bytes]:
    return [b"\x00" + s for s in constants("tests/mime/test_mime_headers.py", str) if len(s) < 400]


def _valid(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise AssertionError(f"{what}: lone surrogates in {text[:80]!r}") from None


def _readers(raw: str) -> None:
    _valid(decode_header_value(raw), "decode_header_value")
    _valid(base_subject(decode_header_value(raw)), "base_subject")
    for name, addr in parse_addresses(raw):
        _valid(name, "address name")
        _valid(addr, "address")
    parse_address_list(raw)
    parse_date(raw)
    parse_msg_ids(raw)
    for parsed in (parse_content_type(raw, []), parse_disposition(raw, [])):
        if parsed is None:
            continue
        params = parsed[-2]
        assert isinstance(params, list)
        for key, value in params:
            _valid(key + value, "decoded parameter")


def _round_trips(text: str, charset: str) -> None:
    words = encode_words(text, charset)
    check(decode_header_value(" ".join(words)) == text, f"encoded words do not decode to {text!r}")
    value = encode_unstructured(text, charset)
    check(
        decode_header_value(value) == text,
        f"unstructured {text!r} -> {value!r} does not decode back",
    )
    folded = fold("Subject", value)
    check(folded.endswith("\r\n"), "fold without CRLF")
    check(
        unfold(folded[:-2]) == "Subject: " + value if value else True,
        "fold/unfold changed the value",
    )
    items = encode_param("filename", text)
    parsed = parse_disposition("attachment; " + "; ".join(items), [])
    check(
        parsed is not None and dict(parsed[1]).get("filename") == text,
        f"RFC 2231 {text!r} -> {items!r}",
    )
    try:
        mailbox = encode_mailbox(text, "user@example.test")
    except ValueError:
        return
    if text.strip():
        got = parse_addresses(mailbox)
        check(
            got == [(text, "user@example.test")], f"display name {text!r} -> {mailbox!r} -> {got!r}"
        )


def test_one(data: bytes) -> None:
    if not data:
        return
    charset = CHARSETS[data[0] % len(CHARSETS)]
    rest = data[1:]
    _readers(rest.decode("utf-8", "surrogateescape"))
    _round_trips(rest.decode("utf-8", "replace"), charset)
