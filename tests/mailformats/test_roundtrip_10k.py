"""10,000 generated messages: mbox → items → mbox byte-identical, and via Maildir."""

from __future__ import annotations

import io
from pathlib import Path

from courriel.mailformats import (
    MaildirWriter,
    count_messages,
    detect_format,
    read_maildir,
    read_mbox,
    write_mbox,
)

from .synth import Synthetic


def test_read_gives_the_expected_messages(big_mbox: tuple[Path, Synthetic]) -> None:
    path, synthetic = big_mbox
    items = list(read_mbox(path))
    assert len(items) == len(synthetic.messages) == 10_000
    for item, expected in zip(items, synthetic.messages, strict=True):
        assert item.data == expected.data
        assert item.envelope_from == expected.sender
        assert item.internal_date == expected.date
        assert item.flags == expected.flags
        assert (item.mbox_from_line is None) == expected.from_line_exact


def test_mbox_read_write_is_byte_identical(
    big_mbox: tuple[Path, Synthetic], tmp_path: Path
) -> None:
    path, _ = big_mbox
    out = tmp_path / "copy.mbox"
    assert write_mbox(out, read_mbox(path), fsync=False) == 10_000
    assert out.read_bytes() == path.read_bytes()


def test_counts(big_mbox: tuple[Path, Synthetic]) -> None:
    path, _ = big_mbox
    assert detect_format(path) == "mbox"
    assert count_messages(path) == 10_000


def test_mbox_to_maildir_and_back(big_mbox: tuple[Path, Synthetic], tmp_path: Path) -> None:
    path, synthetic = big_mbox
    maildir = tmp_path / "Maildir"
    with MaildirWriter(maildir, fsync=False) as writer:
        for item in read_mbox(path):
            writer.write(item)
    assert detect_format(maildir) == "maildir"
    assert count_messages(maildir) == 10_000

    back = list(read_maildir(maildir))
    assert len(back) == 10_000
    for item, expected in zip(back, synthetic.messages, strict=True):  # order is kept
        assert item.data == expected.data
        assert item.flags == expected.flags
        assert item.internal_date == expected.date
        # Maildir keeps the envelope sender only as Return-Path: (<> for MAILER-DAEMON)
        if not expected.data:
            assert item.envelope_from is None
        elif expected.sender == "MAILER-DAEMON":
            assert item.envelope_from == ""
        else:
            assert item.envelope_from == expected.sender

    out = io.BytesIO()
    assert write_mbox(out, back) == 10_000
    again = list(read_mbox(io.BytesIO(out.getvalue())))
    assert [i.data for i in again] == [m.data for m in synthetic.messages]
    assert [i.flags for i in again] == [m.flags for m in synthetic.messages]
    assert [i.internal_date for i in again] == [m.date for m in synthetic.messages]
    senders = [m.sender if m.data else "MAILER-DAEMON" for m in synthetic.messages]
    assert [i.envelope_from for i in again] == senders
