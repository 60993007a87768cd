"""The MIME parser and what is built from it at delivery (courriel.mime): parse_message,
the IMAP ENVELOPE/BODYSTRUCTURE encoders, BODY[section]/BINARY[] slices, decoded text.

Invariants: the catch-all of parse_message never fires (it hides a bug); offsets lie
inside the message and sizes equal their slices; multiparts have children; part numbers
from walk() find their part again; BODY[n] is the part's slice; BINARY raises only
UnknownEncoding; ENVELOPE and BODYSTRUCTURE are well-formed IMAP values (RFC 9051 §9);
the JSON codecs stored with each message round-trip; decoded text (subject, names, preview,
full text: what SQLite stores) is valid Unicode without surrogates, preview <= 256 chars.
"""

from __future__ import annotations

from courriel.imap.protocol import encoder
from courriel.imap.protocol.sections import (
    UnknownEncoding,
    binary_section,
    body_section,
    select_fields,
)
from courriel.imap.protocol.types import Section
from courriel.mime import (
    BodyPart,
    body_from_json,
    body_to_json,
    envelope_from_json,
    envelope_to_json,
    parse_message,
)
from courriel.mime.content import decode_part, part_text
from fuzz.common import check, imap_complete

TOKENS = [
    b"\r\n", b"\r\n\r\n", b"--", b"--b", b"--b--", b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n", b"Content-Type: multipart/digest; boundary=d\r\n",
    b"Content-Type: text/plain; charset=iso-2022-jp\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"Content-Disposition: attachment; filename*0*=utf-8''%C3",
    b"=?utf-8?q?=C3?=", b"=?utf-8?b?w6k=?=", b"From: ", b"To: ", b"Subject: ", b"Date: ", b"Message-ID: <",
    b"In-Reply-To: ", b"References: ", b"Sender: ", b"Reply-To: ", b"Cc: ", b"Bcc: ", b"MIME-Version: 1.0\r\n",
    b"Content-Language: en, fr\r\n", b"Content-Location: x\r\n", b"Content-MD5: x\r\n", b"<html><body>",
    b"text/html", b"\x00", b"\xff", b"\xc3\xa9", b"=\r\n", b"=4", b"\t", b"(", b")", b"\"", b"<", b">", b"@",
]  # fmt: skip


def seeds() -> list[bytes]:
    from tests.mime.corpus import CORPUS

    values = CORPUS.values() if isinstance(CORPUS, dict) else CORPUS
    return [v if isinstance(v, bytes) else v[0] for v in values]


def _no_surrogates(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise AssertionError(f"{what} holds lone surrogates: {text[:80]!r}") from None


def _check_parts(data: bytes, root: BodyPart) -> None:
    stack: list[BodyPart] = [root]
    while stack:
        part = stack.pop()
        check(
            0 <= part.header_start <= part.body_start <= part.end <= len(data),
            "offsets outside the message",
        )
        check(part.end - part.body_start == part.size, "size differs from the body slice")
        if part.type_lower == "multipart":
            check(part.children, "multipart without children")
        decode_part(data, part)
        if part.type_lower == "text":
            _no_surrogates(part_text(data, part), "part text")
        stack.extend(part.children)
        if part.message is not None:
            stack.append(part.message)
    for number, part in root.walk():
        if not number:
            continue
        check(root.part_at(number) is part, f"part {number} not found again")
        check(
            body_section(data, root, Section(part=number)) == data[part.body_start : part.end],
            "BODY[n] slice",
        )
        try:
            binary_section(data, root, Section(part=number))
        except UnknownEncoding:
            pass
        mime = body_section(data, root, Section(part=number, text="MIME"))
        check(mime is not None, "BODY[n.MIME] missing")
    header = data[root.header_start : root.body_start]
    fields = select_fields(header, ("Subject", "From"), exclude=False)
    check(fields.endswith(b"\r\n"), "HEADER.FIELDS does not end with the blank line")


def test_one(data: bytes) -> None:
    msg = parse_message(data)
    check(
        not [d for d in msg.defects if d.startswith(("parser error", "decoding error"))],
        f"catch-all: {msg.defects}",
    )
    check(msg.size == len(data), "size")
    _check_parts(data, msg.body)
    check(
        envelope_from_json(envelope_to_json(msg.envelope)) == msg.envelope,
        "envelope JSON round trip",
    )
    check(body_from_json(body_to_json(msg.body)) == msg.body, "body structure JSON round trip")
    imap_complete(encoder.envelope(msg.envelope))
    imap_complete(encoder.body(msg.body, True))
    imap_complete(encoder.body(msg.body, False))
    check(len(msg.preview) <= 256, "preview longer than 256 characters")
    for what, text in (("subject", msg.subject or ""), ("preview", msg.preview), ("text", msg.text),
                       ("base subject", msg.base_subject)):  # fmt: skip
        _no_surrogates(text, what)
    for what, addrs in (
        ("from", msg.from_),
        ("to", msg.to),
        ("cc", msg.cc),
        ("sender", msg.sender),
    ):
        for name, addr in addrs:
            _no_surrogates(name + addr, what)
