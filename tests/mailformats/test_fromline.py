"""From_ line parsing and formatting (qmail mbox(5) asctime form and the variants)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from courriel.mailformats.fromline import format_from_line, parse_from_line

D = datetime(2026, 11, 29, 0, 2, 6, tzinfo=UTC)  # a Sunday


@pytest.mark.parametrize(
    ("line", "sender", "date"),
    [
        (b"From alice@example.org Sun Nov 29 00:02:06 2026", "alice@example.org", D),
        (b"From a@b Mon Nov  9 00:02:06 2026", "a@b", datetime(2026, 11, 9, 0, 2, 6, tzinfo=UTC)),
        (b"From a@b Mon Nov 09 00:02:06 2026", "a@b", datetime(2026, 11, 9, 0, 2, 6, tzinfo=UTC)),
        (b"From a@b Thu Nov 29 00:02:06 2026", "a@b", D),  # wrong weekday: date still read
        (b"From a@b Sun Nov 29 01:02:06 2026 +0100", "a@b", D),
        (b"From a@b Sat Nov 28 19:02:06 2026 -0500", "a@b", D),
        (b"From a@b Sat Nov 28 16:02 PST 2026", "a@b", D - timedelta(seconds=6)),
        (b"From a@b Sun Nov 29 00:02:06 2026 remote from gw", "a@b", D),
        (b"From a@b Sun Nov 29 00:02:06 CET 2026", "a@b", D),  # unknown zone: UTC
        (b"From a@b Sun Nov 29 00:02:06 MET DST 2026", "a@b", D),
        (b"From a@b Sun Nov 29 00:02:06 26", "a@b", D),
        (b"From a@b Sun Nov 29 00:02:60 2026", "a@b", D + timedelta(seconds=53)),
        (b"From  Sun Nov 29 00:02:06 2026", None, D),
        (b"From Sun Nov 29 00:02:06 2026", None, D),
        (b'From "a b"@c Sun Nov 29 00:02:06 2026', '"a b"@c', D),
        (b"From Mon@x Sun Nov 29 00:02:06 2026", "Mon@x", D),
        (b"From a@b Sun, 29 Nov 2026 00:02:06 +0000", "a@b", D),
        (b"From j\xc3\xb6rg@b Sun Nov 29 00:02:06 2026", "jörg@b", D),
        (b"From j\xf6rg@b Sun Nov 29 00:02:06 2026", "j\ufffdrg@b", D),
        (b"From a@b Sun Feb 30 00:02:06 2026", "a@b", None),
        (b"From a@b", "a@b", None),
        (b"From a@b yesterday", "a@b", None),
        (b"From ", None, None),
    ],
)
def test_parse(line: bytes, sender: str | None, date: datetime | None) -> None:
    assert parse_from_line(line) == (sender, date)


@pytest.mark.parametrize(
    ("sender", "date", "line"),
    [
        ("alice@example.org", D, b"From alice@example.org Sun Nov 29 00:02:06 2026"),
        (None, D, b"From MAILER-DAEMON Sun Nov 29 00:02:06 2026"),
        ("", D, b"From MAILER-DAEMON Sun Nov 29 00:02:06 2026"),
        ("a@b", datetime(2026, 11, 9, 0, 2, 6), b"From a@b Mon Nov  9 00:02:06 2026"),
        ("a@b", D.astimezone(timezone(timedelta(hours=2))), b"From a@b Sun Nov 29 00:02:06 2026"),
        ("a@b", D.replace(microsecond=999_999), b"From a@b Sun Nov 29 00:02:06 2026"),
        ("jörg@b", D, b"From j\xc3\xb6rg@b Sun Nov 29 00:02:06 2026"),
    ],
)
def test_format(sender: str | None, date: datetime, line: bytes) -> None:
    assert format_from_line(sender, date) == line


@pytest.mark.parametrize("sender", ["a\nb", "a\rb", "a\x00b", " a", "a "])
def test_format_rejects_what_a_line_cannot_hold(sender: str) -> None:
    with pytest.raises(ValueError, match="From_ line"):
        format_from_line(sender, D)
