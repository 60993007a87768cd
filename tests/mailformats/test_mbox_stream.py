"""Streaming: chunk edges, big messages, paths and file objects, appending, From_ lines."""

from __future__ import annotations

import dataclasses
import io
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from courriel.mailformats import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    SEEN,
    MailItem,
    count_mbox,
    read_mbox,
    write_mbox,
)

D = datetime(2026, 11, 29, 0, 2, 6, tzinfo=UTC)
FROM = b"From a@b Sun Nov 29 00:02:06 2026"
TRICKY = (
    FROM + b"\nSubject: 1\n\n>From a\n\n>>From b\nFrom\n\n"
    + FROM + b"\n\n"  # empty message
    + FROM + b"\r\nSubject: crlf\r\n\r\nx\r\n\r\n"
    + b"From odd line\n\n\n\n"
    + FROM + b"\nlast"
)  # fmt: skip


@pytest.mark.parametrize("chunk_size", [*range(1, 12), 13, 64, 1 << 20])
def test_chunk_size_does_not_change_the_result(chunk_size: int) -> None:
    expected = list(read_mbox(io.BytesIO(TRICKY), chunk_size=1 << 20))
    assert len(expected) == 5
    assert list(read_mbox(io.BytesIO(TRICKY), chunk_size=chunk_size)) == expected
    assert count_mbox(io.BytesIO(TRICKY), chunk_size=chunk_size) == 5


class TrickleReader(io.RawIOBase):
    """A pipe-like file: read(n) returns at most 3 bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(3, len(b)))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_short_reads_are_not_end_of_file() -> None:
    expected = list(read_mbox(io.BytesIO(TRICKY)))
    assert list(read_mbox(TrickleReader(TRICKY))) == expected  # type: ignore[arg-type]
    assert count_mbox(TrickleReader(TRICKY)) == 5  # type: ignore[arg-type]


def test_message_far_larger_than_a_chunk() -> None:
    body = b"".join(b"line %d From x\n" % i for i in range(100_000)) + b"From y\n"
    file = FROM + b"\n" + body.replace(b"\nFrom y", b"\n>From y") + b"\n" + FROM + b"\nz\n\n"
    items = list(read_mbox(io.BytesIO(file), chunk_size=4096))
    assert [len(i.data) for i in items] == [len(body) + body.count(b"\n"), 3]
    assert items[0].data.endswith(b"\r\nFrom y\r\n")
    out = io.BytesIO()
    write_mbox(out, items)
    assert out.getvalue() == file


@pytest.mark.parametrize(
    "start", [b"\nFrom a@b", b"Subject: x\n", b"from a", b"From", b"\xef\xbb\xbfFrom "]
)
def test_not_an_mbox(start: bytes) -> None:
    with pytest.raises(ValueError, match="not an mbox"):
        list(read_mbox(io.BytesIO(start + b"\n\n")))
    with pytest.raises(ValueError, match="not an mbox"):
        count_mbox(io.BytesIO(start + b"\n\n"))


def test_paths_and_file_objects(tmp_path: Path) -> None:
    path = tmp_path / "box"
    items = [MailItem(b"Subject: %d\r\n\r\nx\r\n" % i, "a@b", D) for i in range(3)]
    assert write_mbox(path, items[:2]) == 2
    assert write_mbox(str(path), items[2:]) == 1  # appends
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [i.data for i in read_mbox(path)] == [i.data for i in items]
    assert count_mbox(path) == count_mbox(str(path)) == 3
    with open(path, "rb") as f:
        assert len(list(read_mbox(f))) == 3
        assert not f.closed


@pytest.mark.parametrize(
    ("existing", "prefix"),
    [(b"", b""), (FROM + b"\na\n\n", b""), (FROM + b"\na\n", b"\n"), (FROM + b"\na", b"\n\n"),
     (FROM + b"\r\na\r\n\r\n", b"")],
)  # fmt: skip
def test_append_completes_the_last_message(tmp_path: Path, existing: bytes, prefix: bytes) -> None:
    path = tmp_path / "box"
    path.write_bytes(existing)
    write_mbox(path, [MailItem(b"b\r\n", "a@b", D)], fsync=False)
    assert path.read_bytes() == existing + prefix + FROM + b"\nb\n\n"


def test_raw_from_line_is_kept_only_while_it_agrees() -> None:
    odd = b"From a@b Sun Nov 29 01:02:06 2026 +0100"
    (item,) = read_mbox(io.BytesIO(odd + b"\nx\n\n"))
    assert (item.envelope_from, item.internal_date, item.mbox_from_line) == ("a@b", D, odd)

    def first_line(it: MailItem) -> bytes:
        out = io.BytesIO()
        write_mbox(out, [it])
        return out.getvalue().split(b"\n")[0]

    assert first_line(item) == odd
    assert first_line(dataclasses.replace(item, envelope_from="c@d")) == b"From c@d" + FROM[8:]
    later = dataclasses.replace(item, internal_date=D.replace(year=2027))
    assert first_line(later) == b"From a@b Mon Nov 29 00:02:06 2027"
    assert first_line(dataclasses.replace(item, internal_date=D.replace(tzinfo=None))) == odd


def test_unparseable_from_line_survives() -> None:
    file = b"From somebody sometime\nx\n\n"
    (item,) = read_mbox(io.BytesIO(file))
    assert (item.envelope_from, item.internal_date) == ("somebody", None)
    out = io.BytesIO()
    write_mbox(out, [item])
    assert out.getvalue() == file


def test_raw_from_line_must_be_one_line() -> None:
    item = MailItem(b"", None, None, mbox_from_line=b"From a\nb")
    with pytest.raises(ValueError, match="From_ line"):
        write_mbox(io.BytesIO(), [item])


def test_missing_date_and_sender_are_filled_in() -> None:
    out = io.BytesIO()
    before = datetime.now(UTC).replace(microsecond=0)
    write_mbox(out, [MailItem(b"x\r\n")])
    (item,) = read_mbox(io.BytesIO(out.getvalue()))
    assert item.envelope_from == "MAILER-DAEMON"
    assert item.internal_date is not None
    assert before <= item.internal_date <= datetime.now(UTC)


def test_status_headers_become_flags_and_stay_in_data() -> None:
    data = (
        b"Subject: x\r\nStatus: RO\r\nX-Status: AFDT\r\nX-Keywords: $Junk work\r\n\r\nStatus: R\r\n"
    )
    (item,) = read_mbox(io.BytesIO(FROM + b"\n" + data.replace(b"\r\n", b"\n") + b"\n"))
    assert item.flags == {SEEN, ANSWERED, FLAGGED, DELETED, DRAFT}
    assert item.keywords == {"$Junk", "work"}
    assert item.data == data


def test_write_is_atomic_per_message() -> None:
    out = io.BytesIO()
    good = MailItem(b"x\r\n", "a@b", D)
    with pytest.raises(ValueError):
        write_mbox(out, [good, MailItem(b"y\r\n", "bad\nsender", D)])
    assert out.getvalue() == FROM + b"\nx\n\n"


def test_reading_a_path_opens_lazily(tmp_path: Path) -> None:
    it = read_mbox(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        next(it)
    assert not os.path.exists(tmp_path / "missing")
