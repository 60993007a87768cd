"""mboxrd quoting and line endings, message by message: store data ↔ file bytes."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from courriel.mailformats import MailItem, read_mbox, write_mbox
from courriel.mailformats.mbox import decode_message, encode_message

D = datetime(2026, 11, 29, 0, 2, 6, tzinfo=UTC)
FROM = b"From a@b Sun Nov 29 00:02:06 2026"
H = b"Subject: s\r\n\r\n"  # header in store form
HF = b"Subject: s\n\n"  # the same in file form

# (data as the store keeps it, the message's bytes in the file after the From_ line)
QUOTING = [
    (H + b"From x\r\n", HF + b">From x\n\n"),
    (H + b">From x\r\n", HF + b">>From x\n\n"),
    (H + b">>From x\r\n", HF + b">>>From x\n\n"),
    (H + b"a\r\n\r\nFrom x\r\nb\r\n", HF + b"a\n\n>From x\nb\n\n"),
    (H + b"From\r\n", HF + b"From\n\n"),
    (H + b"Fromage\r\n", HF + b"Fromage\n\n"),
    (H + b"From:\r\n", HF + b"From:\n\n"),
    (H + b">From\r\n", HF + b">From\n\n"),
    (H + b" From x\r\n", HF + b" From x\n\n"),
    (H + b"x>From y\r\n", HF + b"x>From y\n\n"),
    (H + b"From x\r\nFrom y\r\n", HF + b">From x\n>From y\n\n"),
    (b"From x\r\n", b">From x\n\n"),  # very first line of the message
    (b">From x\r\n", b">>From x\n\n"),
    (b"", b"\n"),  # empty message: just the separator line
    (b"\r\n", b"\n\n"),
    (b"\r\n\r\n", b"\n\n\n"),
    (H + b"a\rb\r\n", HF + b"a\rb\n\n"),  # a bare CR stays
    (H + b"8bit \xe9\xff\x00\r\n", HF + b"8bit \xe9\xff\x00\n\n"),
]


@pytest.mark.parametrize(("data", "in_file"), QUOTING)
def test_encode(data: bytes, in_file: bytes) -> None:
    assert encode_message(MailItem(data, "a@b", D)) == FROM + b"\n" + in_file


@pytest.mark.parametrize(("data", "in_file"), QUOTING)
def test_decode_through_a_file(data: bytes, in_file: bytes) -> None:
    (item,) = read_mbox(io.BytesIO(FROM + b"\n" + in_file))
    assert (item.data, item.envelope_from, item.internal_date) == (data, "a@b", D)
    assert item.mbox_from_line is None


def test_decode_message_takes_the_file_body_without_separator() -> None:
    item = decode_message(FROM, b">From x\n>>From y\nz\n")
    assert item.data == b"From x\r\n>From y\r\nz\r\n"


@pytest.mark.parametrize(
    ("file", "datas"),
    [
        # an unquoted From line not after an empty line belongs to the message
        (FROM + b"\nFrom x\n\n", [b"From x\r\n"]),
        (FROM + b"\na\nFrom x\n\n", [b"a\r\nFrom x\r\n"]),
        # ... but after an empty line it starts a message (mboxrd: it should be quoted)
        (FROM + b"\na\n\nFrom x\n\n", [b"a\r\n", b""]),
        # CRLF inside an LF mbox stays CRLF (not doubled); so does a whole CRLF mbox
        (FROM + b"\na\r\nb\n\n", [b"a\r\nb\r\n"]),
        (FROM + b"\r\na\r\n\r\n" + FROM + b"\r\nb\r\n\r\n", [b"a\r\n", b"b\r\n"]),
        # the last message may lack its separator line, or its final newline
        (FROM + b"\na\n", [b"a\r\n"]),
        (FROM + b"\na", [b"a"]),
        (FROM + b"\n", [b""]),
        (FROM, [b""]),
        (FROM + b"\n\n\n", [b"\r\n"]),
        # Content-Length is not a separator (mboxcl): the From_ lines decide
        (FROM + b"\nContent-Length: 2\n\nab\ncd\n\n", [b"Content-Length: 2\r\n\r\nab\r\ncd\r\n"]),
        (b"", []),
    ],
)
def test_read_edge_files(file: bytes, datas: list[bytes]) -> None:
    assert [item.data for item in read_mbox(io.BytesIO(file))] == datas


def test_message_without_final_newline_gains_one() -> None:
    """mboxrd cannot say "no final newline": the writer adds one (documented)."""
    item = MailItem(H + b"no newline", "a@b", D)
    out = io.BytesIO()
    write_mbox(out, [item])
    assert out.getvalue() == FROM + b"\n" + HF + b"no newline\n\n"
    (back,) = read_mbox(io.BytesIO(out.getvalue()))
    assert back.data == item.data + b"\r\n"


def test_crlf_mbox_is_written_back_with_lf() -> None:
    crlf = FROM + b"\r\nSubject: s\r\n\r\nbody\r\n\r\n"
    out = io.BytesIO()
    write_mbox(out, read_mbox(io.BytesIO(crlf)))
    assert out.getvalue() == crlf.replace(b"\r\n", b"\n")
