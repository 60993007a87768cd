"""compose_message, read back with parse_message: charsets, encodings, names, folding."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from courriel.mime import (
    Attachment,
    BodyPart,
    compose_message,
    decode_header_value,
    parse_message,
    part_text,
)
from courriel.mime.content import body_lists

WHEN = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def compose(**kw: object) -> bytes:
    kw.setdefault("from_", ("Sender", "sender@example.com"))
    kw.setdefault("date", WHEN)
    kw.setdefault("domain", "example.com")
    return compose_message(**kw)  # type: ignore[arg-type]


def header_lines(data: bytes) -> list[bytes]:
    return data[: data.index(b"\r\n\r\n")].split(b"\r\n")


def check_wire(data: bytes, *, utf8: bool = False) -> None:
    """CRLF only, lines <= 998 octets, header lines <= 78 unless one unbreakable word."""
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    for line in header_lines(data):
        if not utf8:
            assert line.isascii()
        if len(line.decode("utf-8")) > 78:  # RFC 6532: 78 characters, 998 octets
            assert b" " not in line.strip(), line


def text_parts(data: bytes) -> tuple[BodyPart, BodyPart | None]:
    text_body, html_body, _ = body_lists(parse_message(data).body)
    html = next((p for p in html_body if p.subtype_lower == "html"), None)
    return text_body[0], html


@pytest.mark.parametrize(
    ("text", "requested", "charset", "encoding"),
    [
        ("plain ASCII\nsecond line\n", "iso-8859-15", "us-ascii", "7bit"),
        ("Ça coûte 5 € pour un café au lait\n", "iso-8859-15", "iso-8859-15", "quoted-printable"),
        ("Привет, мир!\n", "koi8-r", "koi8-r", "base64"),
        ("こんにちは世界\n", "iso-2022-jp", "iso-2022-jp", "7bit"),
        ("こんにちは世界\n", "shift_jis", "shift_jis", "base64"),
        ("“Smart” quotes – €\n", "windows-1252", "windows-1252", "quoted-printable"),
        ("中文 does not fit KOI8-R\n", "koi8-r", "utf-8", "quoted-printable"),  # mostly ASCII
        ("中文不适合KOI8-R\n", "koi8-r", "utf-8", "base64"),
        ("Une crème brûlée et un café, s'il vous plaît\n", "utf-8", "utf-8", "quoted-printable"),
        ("Crème brûlée\n", "utf-8", "utf-8", "quoted-printable"),
        ("Ελληνικά κείμενα\n", "utf-8", "utf-8", "base64"),
    ],
)
def test_text_charset_round_trip(text: str, requested: str, charset: str, encoding: str) -> None:
    data = compose(to="to@example.org", subject=text.strip(), text=text, charset=requested)
    check_wire(data)
    msg = parse_message(data)
    assert msg.body.charset == charset
    assert msg.body.encoding == encoding
    assert part_text(data, msg.body) == text
    assert msg.subject == text.strip()
    assert msg.defects == []


def test_eight_bit_when_asked() -> None:
    data = compose(text="Crème\n", allow_8bit=True)
    msg = parse_message(data)
    assert msg.body.encoding == "8bit"
    assert data.endswith("Crème\r\n".encode())


def test_long_lines_are_encoded() -> None:
    text = "x" * 2000 + "\n"
    data = compose(text=text)
    check_wire(data)
    msg = parse_message(data)
    assert msg.body.encoding == "quoted-printable"
    assert part_text(data, msg.body) == text


def test_full_structure_and_filenames() -> None:
    data = compose(
        to=[("Ivan Иванов", "ivan@example.ru"), "plain@example.org"],
        cc="Cé <cc@example.org>",
        bcc=["hidden@example.org"],
        reply_to=("Reply", "reply@example.com"),
        subject="Re: Résumé",
        text="Bonjour\n",
        html="<p>Bonjour <img src='cid:logo@x'></p>",
        inline=[Attachment("logo.png", b"\x89PNG", content_id="logo@x", inline=True)],
        attachments=[
            Attachment("résumé très long nom de fichier avec des accents éèà.pdf", b"%PDF\0\xff"),
            Attachment("notes.txt", b"hello"),
        ],
        in_reply_to="parent@example.com",
        references=["<root@example.com>", "parent@example.com"],
        headers=[("X-Mailer", "courriel"), ("X-Note", "déjà vu")],
        message_id="fixed@example.com",
    )
    check_wire(data)
    assert b"Bcc:" not in data
    msg = parse_message(data)
    assert msg.defects == []
    root = msg.body
    shape = [(s, p.mime_type) for s, p in root.walk()]
    assert shape == [
        ((), "multipart/mixed"),
        ((1,), "multipart/alternative"),
        ((1, 1), "text/plain"),
        ((1, 2), "multipart/related"),
        ((1, 2, 1), "text/html"),
        ((1, 2, 2), "image/png"),
        ((2,), "application/pdf"),
        ((3,), "text/plain"),
    ]
    pdf = root.part_at((2,))
    img = root.part_at((1, 2, 2))
    assert pdf is not None and img is not None
    assert pdf.filename == "résumé très long nom de fichier avec des accents éèà.pdf"
    assert pdf.param("name") == pdf.filename  # the RFC 2047 name= for old clients
    assert any(k.startswith("filename*0*") for k, _ in pdf.disposition_imap_params) is False
    assert [k for k, _ in pdf.disposition_imap_params] == ["filename*"]  # sections merged
    assert re.search(rb"filename\*0\*=utf-8''r%C3%A9sum%C3%A9", data)
    assert img.id == "<logo@x>" and img.disposition == "inline"
    assert msg.to == [("Ivan Иванов", "ivan@example.ru"), ("", "plain@example.org")]
    assert msg.cc == [("Cé", "cc@example.org")]
    assert msg.reply_to == [("Reply", "reply@example.com")]
    assert msg.message_id == "fixed@example.com"
    assert msg.in_reply_to == ["parent@example.com"]
    assert msg.references == ["root@example.com", "parent@example.com"]
    assert msg.date == WHEN
    notes = [v for k, v in msg.headers if k == "X-Note"]
    assert len(notes) == 1 and "=?utf-8?" in notes[0]
    assert decode_header_value(notes[0]) == "déjà vu"
    assert ("X-Mailer", " courriel") in msg.headers
    assert msg.has_attachment
    assert msg.preview == "Bonjour"


def test_keep_bcc_and_generated_ids() -> None:
    data = compose_message(from_="a@example.com", bcc="b@example.org", keep_bcc=True, text="x")
    msg = parse_message(data)
    assert msg.bcc == [("", "b@example.org")]
    assert msg.message_id is not None and msg.message_id.endswith("@example.com")
    assert msg.date is not None and msg.date.tzinfo is not None


def test_html_only() -> None:
    data = compose(html="<p>Salut</p>")
    msg = parse_message(data)
    assert msg.body.mime_type == "text/html"
    assert msg.preview == "Salut"


def test_smtputf8_headers_raw() -> None:
    data = compose(
        from_=("Jérôme", "jérôme@exemple.fr"),
        to="用户@例子.广告",
        subject="Grüße 日本",
        smtputf8=True,
    )
    check_wire(data, utf8=True)
    assert "Subject: Grüße 日本\r\n".encode() in data
    assert b"=?" not in data
    msg = parse_message(data)
    assert msg.subject == "Grüße 日本"
    assert msg.from_ == [("Jérôme", "jérôme@exemple.fr")]
    assert msg.to == [("", "用户@例子.广告")]


def test_idna_and_invalid_input() -> None:
    data = compose(to="user@bücher.example", text="x")
    assert parse_message(data).to == [("", "user@xn--bcher-kva.example")]
    with pytest.raises(ValueError):
        compose(to="jérôme@example.com")  # needs SMTPUTF8
    with pytest.raises(ValueError):
        compose(headers=[("Bad Name", "x")])
    with pytest.raises(ValueError):
        compose_message(from_=[])


def test_long_words_never_make_long_lines() -> None:
    word = "x" * 2000
    data = compose(
        from_=(word, "a@example.com"),
        subject=word,
        headers=[("X-Long", word)],
        attachments=[Attachment(word + ".txt", b"")],
    )
    check_wire(data)
    msg = parse_message(data)
    assert msg.subject == word and msg.from_ == [(word, "a@example.com")]
    attachment = msg.body.part_at((2,))
    assert attachment is not None and attachment.filename == word + ".txt"
    assert decode_header_value(dict(msg.headers)["X-Long"]) == word


def test_subject_folding() -> None:
    subject = "Un sujet très long " * 8
    data = compose(subject=subject.strip())
    check_wire(data)
    lines = [ln for ln in header_lines(data)]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(b"Subject:"))
    assert lines[start + 1].startswith(b" ")  # folded
    assert parse_message(data).subject == subject.strip()


# Hypothesis round trips. Surrogates cannot be written; everything else must come back.
# Characters that stress quoting, encoded words, folding and whitespace handling.
TRICKY = [
    *" \"\\=?_\t\n\r()<>,;:@.[]%*'\x00\x7f\x85\xa0\u2028é€ж日",
    "=?",
    "?=",
    "  ",
    "=?utf-8?q?x?=",
]
pieces = st.one_of(st.characters(codec="utf-8"), st.sampled_from(TRICKY))


def texts(min_size: int = 0, max_size: int = 60) -> st.SearchStrategy[str]:
    return st.lists(pieces, min_size=min_size, max_size=max_size).map("".join)


unicode_text = texts()
names = texts(max_size=30)
addresses = st.from_regex(r"[a-z0-9][a-z0-9.+_-]{0,10}@[a-z0-9]{1,10}\.(org|fr|jp)", fullmatch=True)
charsets = st.sampled_from(["utf-8", "iso-8859-15", "koi8-r", "iso-2022-jp", "windows-1252"])


def _no_dot_runs(addr: str) -> bool:
    local = addr.split("@")[0]
    return ".." not in local and not local.endswith(".")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=unicode_text,
    name=names,
    addr=addresses.filter(_no_dot_runs),
    body=texts(max_size=300),
    filename=texts(min_size=1, max_size=80),
    charset=charsets,
    utf8=st.booleans(),
)
def test_random_round_trip(
    subject: str, name: str, addr: str, body: str, filename: str, charset: str, utf8: bool
) -> None:
    data = compose(
        from_=(name, addr),
        to=[(name, addr)],
        subject=subject,
        text=body,
        attachments=[Attachment(filename, b"data")],
        charset=charset,
        smtputf8=utf8,
    )
    check_wire(data, utf8=utf8)
    msg = parse_message(data)
    assert msg.subject == subject
    assert msg.from_ == [(name, addr)]
    text_part = msg.body.part_at((1,))
    attachment = msg.body.part_at((2,))
    assert text_part is not None and attachment is not None
    assert part_text(data, text_part) == body.replace("\r\n", "\n").replace("\r", "\n")
    assert attachment.filename == filename
    assert attachment.param("name") == filename
