"""Properties over generated input (hypothesis): round trips, counting, fuzzing."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from courriel.mailformats import MailItem, count_mbox, read_mbox, write_mbox
from courriel.mailformats.lines import to_crlf, to_lf

TRICKY = [b"From ", b"From x", b">From x", b">>From x", b"From", b">", b"", b" From x",
          b"From a@b Sun Nov 29 00:02:06 2026", b"\xff\xfe8bit", b"a\rb", b"Status: RO"]  # fmt: skip
# A line's content: anything but CR and LF (store data has clean CRLF line endings).
line = st.one_of(
    st.sampled_from(TRICKY),
    st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
lines = st.lists(line, max_size=12)
senders = st.text(alphabet='abcXYZ019._+-@[]"<>éü日', min_size=1, max_size=30)
dates = st.datetimes(datetime(1970, 1, 1), datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)


@st.composite
def items(draw: st.DrawFn) -> MailItem:
    data = b"".join(x + b"\r\n" for x in draw(lines))
    return MailItem(data, draw(senders), draw(dates))


def mbox_bytes(messages: list[MailItem]) -> bytes:
    out = io.BytesIO()
    write_mbox(out, messages)
    return out.getvalue()


@settings(max_examples=300)
@given(st.lists(items(), max_size=6))
def test_write_then_read_gives_the_same_messages(messages: list[MailItem]) -> None:
    back = list(read_mbox(io.BytesIO(mbox_bytes(messages))))
    assert [(b.data, b.envelope_from, b.internal_date) for b in back] == [
        (m.data, m.envelope_from, m.internal_date) for m in messages
    ]
    assert all(b.mbox_from_line is None for b in back)


# An mbox file in the usual form, built by hand: From_ lines (canonical or not), LF
# lines, bodies where every line starting "From " is quoted, one empty line after each.
from_lines = st.one_of(
    st.just(b"From a@b Sun Nov 29 00:02:06 2026"),
    st.just(b"From a@b Thu Nov 29 00:02:06 2026 +0100"),
    st.just(b"From MAILER-DAEMON Mon Jan  1 00:00:00 2001 remote from x"),
    st.just(b"From bogus"),
    st.builds(
        lambda b: b"From " + b,
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
    ),
)
file_line = st.one_of(
    st.sampled_from([b">From x", b">>From x", b"From", b"", b"x\ry", b"\xff"]),
    st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
).filter(lambda x: not x.startswith(b"From "))


@st.composite
def usual_mbox(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        parts.append(draw(from_lines) + b"\n")
        parts.extend(x + b"\n" for x in draw(st.lists(file_line, max_size=8)))
        parts.append(b"\n")
    return b"".join(parts)


@settings(max_examples=400)
@given(usual_mbox())
def test_read_then_write_is_byte_identical(file: bytes) -> None:
    assert mbox_bytes(list(read_mbox(io.BytesIO(file)))) == file


# Fuzz: any bytes after "From ", any chunk size.
any_mbox = st.builds(
    lambda body: b"From " + body,
    st.lists(
        st.sampled_from([b"\n", b"\r\n", b"From ", b">From ", b"x", b"\r", b" "]), max_size=40
    ).map(b"".join),
)


@settings(max_examples=400)
@given(any_mbox, st.integers(1, 16))
def test_fuzz_count_and_chunking_agree(file: bytes, chunk_size: int) -> None:
    expected = list(read_mbox(io.BytesIO(file)))
    assert list(read_mbox(io.BytesIO(file), chunk_size=chunk_size)) == expected
    assert count_mbox(io.BytesIO(file), chunk_size=chunk_size) == len(expected)


@settings(max_examples=400)
@given(any_mbox.map(lambda b: b.replace(b"\r", b"")))
def test_fuzz_write_read_is_a_fixed_point(file: bytes) -> None:
    """Whatever an LF file held, once written by us it reads and writes back the same."""
    once = mbox_bytes(list(read_mbox(io.BytesIO(file))))
    items = list(read_mbox(io.BytesIO(once)))
    assert mbox_bytes(items) == once
    assert len(items) == len(list(read_mbox(io.BytesIO(file))))


@settings(max_examples=300)
@given(any_mbox)
def test_fuzz_whatever_we_read_we_can_write(file: bytes) -> None:
    items = list(read_mbox(io.BytesIO(file)))
    assert len(list(read_mbox(io.BytesIO(mbox_bytes(items))))) == len(items)


@given(st.binary())
def test_line_endings(raw: bytes) -> None:
    if b"\r\n" not in raw:
        assert to_lf(to_crlf(raw)) == raw
    data = to_crlf(raw)
    assert data.count(b"\n") == data.count(b"\r\n")  # no bare LF in store form
