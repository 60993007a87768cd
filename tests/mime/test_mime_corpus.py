"""parse_message on the corpus: envelopes and body structures written out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from courriel.mime import Address, BodyPart, decode_part, parse_message, part_text

from . import corpus
from .corpus import crlf


def slices(data: bytes, part: BodyPart, header: bytes, body: bytes) -> None:
    """The part's header and body are exactly these bytes, and size matches."""
    assert data[part.header_start : part.body_start] == header
    assert data[part.body_start : part.end] == body
    assert part.size == len(body)


def test_simple() -> None:
    data = corpus.SIMPLE
    msg = parse_message(data)
    env = msg.envelope
    alice = [Address("Alice Example", None, "alice", "example.com")]
    assert env.date == "Mon, 7 Feb 1994 21:52:25 -0800"
    assert env.subject == "Hello"
    assert env.from_ == alice
    assert env.sender == alice and env.reply_to == alice  # RFC 3501 default
    assert env.to == [Address(None, None, "bob", "example.org")]
    assert env.cc is None and env.bcc is None and env.in_reply_to is None
    assert env.message_id == "<1234@local.machine.example>"
    body = msg.body
    assert (body.type, body.subtype) == ("text", "plain")
    assert body.params == [("charset", "us-ascii")]  # RFC 2045 §5.2 default
    assert body.encoding == "7bit"
    assert body.lines == 2
    header = data[: data.index(b"\r\n\r\n") + 4]
    slices(data, body, header, b"Hi Bob,\r\nThis is a test.\r\n")
    assert body.size == 26
    assert body.part_at((1,)) is body
    assert body.part_at((2,)) is None
    assert msg.size == len(data)
    assert msg.date == datetime(1994, 2, 7, 21, 52, 25, tzinfo=timezone(timedelta(hours=-8)))
    assert msg.message_id == "1234@local.machine.example"
    assert msg.from_ == [("Alice Example", "alice@example.com")]
    assert msg.preview == "Hi Bob, This is a test."
    assert msg.text == "Hi Bob,\nThis is a test.\n"
    assert not msg.has_attachment
    assert msg.defects == []


def test_nested_mixed_alternative_related() -> None:
    data = corpus.NESTED
    msg = parse_message(data)
    root = msg.body
    assert root.mime_type == "multipart/mixed"
    assert [s for s, _ in root.walk()] == [(), (1,), (1, 1), (1, 2), (1, 2, 1), (1, 2, 2), (2,)]
    alt = root.part_at((1,))
    plain = root.part_at((1, 1))
    related = root.part_at((1, 2))
    html = root.part_at((1, 2, 1))
    png = root.part_at((1, 2, 2))
    pdf = root.part_at((2,))
    assert alt is not None and plain is not None and related is not None
    assert html is not None and png is not None and pdf is not None
    assert alt.mime_type == "multipart/alternative"
    assert related.params == [("boundary", "rel"), ("type", "text/html")]
    slices(
        data,
        plain,
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        b"Caf=C3=A9 au lait",
    )
    assert plain.lines == 1 and plain.encoding == "quoted-printable"
    assert part_text(data, plain) == "Café au lait"
    slices(
        data,
        html,
        b"Content-Type: text/html; charset=utf-8\r\n\r\n",
        b'<p>Caf&eacute; <img src="cid:img1@x"></p>',
    )
    slices(
        data,
        png,
        b"Content-Type: image/png\r\nContent-ID: <img1@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n",
        b"iVBORw0KGgo=",
    )
    assert png.id == "<img1@x>" and png.lines is None
    assert decode_part(data, png) == b"\x89PNG\r\n\x1a\n"
    slices(
        data,
        related,
        b'Content-Type: multipart/related; boundary="rel"; type="text/html"\r\n\r\n',
        b"--rel\r\n"
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b'<p>Caf&eacute; <img src="cid:img1@x"></p>\r\n'
        b"--rel\r\n"
        b"Content-Type: image/png\r\nContent-ID: <img1@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"iVBORw0KGgo=\r\n"
        b"--rel--",
    )
    slices(
        data,
        pdf,
        b'Content-Type: application/pdf; name="doc.pdf"\r\n'
        b'Content-Disposition: attachment; filename="doc.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n",
        b"JVBERi0=",
    )
    assert pdf.disposition == "attachment" and pdf.filename == "doc.pdf"
    # The root body runs from the preamble to the end, epilogue included.
    assert data[root.body_start : root.end].startswith(b"This is the preamble.\r\n--outer\r\n")
    assert data[root.body_start : root.end].endswith(b"--outer--\r\nEpilogue.\r\n")
    assert msg.preview == "Café au lait"
    assert msg.has_attachment
    assert "Café au lait" in msg.text and "Café" in msg.text.split("\n", 1)[1]
    assert msg.defects == []


def test_forwarded_message_rfc822() -> None:
    data = corpus.FORWARDED
    msg = parse_message(data)
    fwd = msg.body.part_at((2,))
    assert fwd is not None
    assert fwd.mime_type == "message/rfc822" and fwd.description == "forwarded"
    slices(
        data,
        fwd,
        b"Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n",
        corpus.INNER,
    )
    assert fwd.lines == corpus.INNER.count(b"\n") + 1  # INNER has no final line break
    assert fwd.envelope is not None and fwd.message is not None
    assert fwd.envelope.subject == "Report"
    assert fwd.envelope.from_ == [Address("Eve", None, "eve", "example.net")]
    assert fwd.envelope.date == "Tue, 1 Jul 2003 10:52:37 +0200"
    inner = fwd.message
    # BODY[2.HEADER] and BODY[2.TEXT] are slices of the encapsulated message.
    inner_header_len = corpus.INNER.index(b"\r\n\r\n") + 4
    assert data[inner.header_start : inner.body_start] == corpus.INNER[:inner_header_len]
    assert data[inner.body_start : inner.end] == corpus.INNER[inner_header_len:]
    report = msg.body.part_at((2, 1))
    csv = msg.body.part_at((2, 2))
    assert report is not None and csv is not None
    slices(data, report, b"Content-Type: text/plain; charset=us-ascii\r\n\r\n", b"The report.")
    slices(data, csv, b'Content-Type: text/csv; name="r.csv"\r\n\r\n', b"a,b\r\n1,2")
    assert csv.lines == 2
    assert msg.body.part_at((2, 3)) is None
    assert msg.body.part_at((1, 1)) is None  # a text leaf has no subparts
    assert msg.base_subject == "Report"
    assert msg.defects == []


def test_missing_close_delimiter() -> None:
    data = corpus.UNCLOSED
    msg = parse_message(data)
    first, second = msg.body.children
    slices(data, first, b"Content-Type: text/plain\r\n\r\n", b"first\r\n--zzz is not a delimiter")
    slices(data, second, b"Content-Type: text/plain\r\n\r\n", b"second, never closed\r\n")
    assert (first.lines, second.lines) == (2, 1)
    assert any("close delimiter" in d for d in msg.defects)


def test_boundary_never_found() -> None:
    data = corpus.NO_DELIMITER
    msg = parse_message(data)
    (only,) = msg.body.children
    assert only.mime_type == "text/plain"
    slices(data, only, b"", b"just text\r\n")
    assert any("without any part" in d for d in msg.defects)


def test_eight_bit_headers() -> None:
    data = corpus.EIGHT_BIT_HEADERS
    msg = parse_message(data)
    # Raw: UTF-8 decodes as such, Latin-1 octets survive as surrogates.
    assert msg.envelope.subject == "Caf\udce9 cr\udce8me"
    assert msg.envelope.subject.encode("utf-8", "surrogateescape") == b"Caf\xe9 cr\xe8me"
    assert msg.envelope.from_ == [Address("Jérôme", None, "jerome", "example.com")]
    # Decoded: best effort per value.
    assert msg.subject == "Café crème"
    assert msg.from_ == [("Jérôme", "jerome@example.com")]
    assert msg.body.encoding == "8bit"
    assert part_text(data, msg.body) == "Crème brûlée\n"


def test_rfc2231_parameters() -> None:
    data = corpus.RFC2231
    part = parse_message(data).body.part_at((1,))
    assert part is not None
    assert part.params == [("name", "café.txt"), ("title", "part one part two")]
    assert part.imap_params == [
        ("name*", "iso-8859-1'fr'caf%E9.txt"),
        ("title", "part one part two"),
    ]
    assert part.disposition == "attachment"
    assert part.disposition_params == [("filename", "€ rates été.txt")]
    assert part.disposition_imap_params == [
        ("filename*", "UTF-8''%E2%82%AC%20rates%20%C3%A9t%C3%A9.txt")
    ]
    assert part.filename == "€ rates été.txt"
    assert data[part.body_start : part.end] == b"x"


def test_encoded_words_in_headers() -> None:
    msg = parse_message(corpus.ENCODED_WORDS)
    assert msg.subject == "GrüßeПривет split é"  # adjacent words joined, é split in two
    assert msg.from_ == [("Jérôme", "jerome@example.com"), ("Иван Петров", "ivan@example.ru")]
    assert msg.to == [("日本語", "taro@example.jp"), ("€uro Desk", "euro@example.eu")]
    assert msg.cc == []
    env = msg.envelope
    assert env.subject is not None and env.subject.startswith("=?UTF-8?B?R3LDvMOfZQ==?= ")
    assert env.to is not None
    assert env.to[0] == Address("=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", None, "taro", "example.jp")
    assert env.cc == [
        Address(None, None, "Undisclosed recipients", None),
        Address(None, None, None, None),
    ]


@pytest.mark.parametrize(("charset", "text"), corpus.CHARSET_BODIES)
def test_body_charsets(charset: str, text: str) -> None:
    data = corpus.charset_message(charset, text)
    msg = parse_message(data)
    assert msg.body.charset == charset
    assert part_text(data, msg.body) == text + "\n"
    assert msg.preview == text
    assert msg.body.size == len(text.encode(charset)) + 2


def test_bare_lf() -> None:
    data = corpus.BARE_LF
    msg = parse_message(data)
    plain, html = msg.body.children
    slices(data, plain, b"Content-Type: text/plain\n\n", b"line one\nline two")
    slices(data, html, b"Content-Type: text/html\n\n", b"<b>bold</b>")
    assert (plain.lines, html.lines) == (2, 1)
    assert msg.envelope.subject == "bare LF"
    assert msg.preview == "line one line two"


def test_no_body() -> None:
    for data in (corpus.NO_BODY, corpus.EMPTY_BODY):
        msg = parse_message(data)
        assert msg.body.size == 0 and msg.body.lines == 0
        assert msg.body.body_start == msg.body.end == len(data)
        assert msg.preview == "" and msg.text == ""
    assert parse_message(corpus.NO_BODY).envelope.subject == "header only"


def test_digest_default_type() -> None:
    data = corpus.DIGEST
    msg = parse_message(data)
    first, second = msg.body.children
    assert first.mime_type == "message/rfc822"  # RFC 2046 §5.1.5
    slices(data, first, b"\r\n", b"Subject: one\r\n\r\nfirst")
    assert first.envelope is not None and first.envelope.subject == "one"
    assert second.mime_type == "text/plain"
    inner = msg.body.part_at((1, 1))
    assert inner is not None and data[inner.body_start : inner.end] == b"first"


def test_nul_and_junk_lines() -> None:
    msg = parse_message(corpus.NUL_AND_JUNK)
    assert msg.envelope.subject == "a\x00b"
    assert len(msg.defects) == 2
    assert corpus.NUL_AND_JUNK[msg.body.body_start :] == b"body\x00\xff\r\n"


def test_nesting_beyond_the_limit() -> None:
    data = corpus.nested(120)
    msg = parse_message(data)
    depth = 0
    part = msg.body
    while part.children:
        (part,) = part.children
        depth += 1
    assert depth == 100
    assert part.mime_type == "application/octet-stream"  # the opaque leaf
    assert data[part.header_start :].startswith(b"Content-Type: multipart/mixed; boundary=b100\r\n")
    assert any("deeper than 100" in d for d in msg.defects)


def test_configurable_depth() -> None:
    data = corpus.nested(3)
    msg = parse_message(data, max_depth=2)
    leaf = msg.body.part_at((1, 1))
    assert leaf is not None and leaf.mime_type == "application/octet-stream"
    assert parse_message(data).body.part_at((1, 1, 1)) is not None
    bottom = parse_message(data).body.part_at((1, 1, 1))
    assert bottom is not None and data[bottom.body_start : bottom.end] == b"bottom"


def test_part_count_cap() -> None:
    parts = b"".join(b"--x\r\n\r\np%d\r\n" % i for i in range(50))
    data = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n" + parts + b"--x--\r\n"
    msg = parse_message(data, max_parts=10)
    assert len(msg.body.children) == 9  # the root counts as one part
    assert any("more than" in d for d in msg.defects)


def test_transport_padding_and_crlf_ownership() -> None:
    data = crlf(b"Content-Type: multipart/mixed; boundary=pad\n\n--pad \t\n\nA\n\n--pad-- \nafter")
    (part,) = parse_message(data).body.children
    # The blank line before the delimiter is content; the last CRLF belongs to it.
    slices(data, part, b"\r\n", b"A\r\n")
    assert part.lines == 1


def test_message_with_encoded_rfc822_stays_opaque() -> None:
    data = crlf(
        b"Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: message/rfc822\n"
        b"Content-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQp5\n--q--\n"
    )
    msg = parse_message(data)
    part = msg.body.part_at((1,))
    assert part is not None and part.mime_type == "message/rfc822"
    assert part.message is None and not part.is_message
    assert decode_part(data, part) == b"Subject: x\r\n\r\ny"
    assert msg.defects
