"""The mbox From_ line: "From " sender SP date, the date in C asctime() form.

qmail mbox(5): "From " envelope-sender SP date-in-asctime-form LF, e.g.
    From alice@example.org Thu Nov 29 00:02:06 2026
asctime pads the day with a space ("Nov  9"). Writers in the wild add a time zone
("... 2026 +0100", "... PST 2026"), drop the seconds, or append "remote from host";
a few write an RFC 5322 date. parse_from_line() reads all of these; the time is UTC
unless the line names a zone. format_from_line() writes only the canonical form.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime, timedelta

NULL_SENDER = "MAILER-DAEMON"  # what MTAs write for the null reverse-path <>

_DAYS = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")  # fmt: skip
# RFC 5322 §4.3 obsolete zone names, offsets in minutes; other names count as UTC.
_ZONES = {b"UT": 0, b"UTC": 0, b"GMT": 0, b"EST": -300, b"EDT": -240, b"CST": -360,
          b"CDT": -300, b"MST": -420, b"MDT": -360, b"PST": -480, b"PDT": -420}  # fmt: skip

_ASCTIME = re.compile(
    rb"(?<![^ \t])(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[ \t]+"
    rb"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[ \t]+"
    rb"(?P<day>\d{1,2})[ \t]+(?P<hh>\d{1,2}):(?P<mm>\d\d)(?::(?P<ss>\d\d))?[ \t]+"
    rb"(?:(?P<zone1>[+-]\d{4}|[A-Za-z]{1,5}(?:[ \t]+DST)?)[ \t]+)?"
    rb"(?P<year>\d{4}|\d\d)(?!\S)"
    rb"(?:[ \t]+(?P<zone2>[+-]\d{4}|UTC?|GMT|[ECMP][SD]T)(?!\S))?"
)


def parse_from_line(line: bytes) -> tuple[str | None, datetime | None]:
    """(sender, UTC date) of a From_ line given without its line ending.

    The sender is None when empty; the date is None when no date can be found.
    """
    rest = line[5:] if line.startswith(b"From ") else line
    m = _ASCTIME.search(rest)
    if m is not None:
        return _sender(rest[: m.start()]), _asctime_date(m)
    # No asctime date: first token is the sender, try an RFC 5322 date after it.
    sender, _, tail = rest.strip(b" \t").partition(b" ")
    try:
        date = email.utils.parsedate_to_datetime(tail.decode("ascii"))
    except (ValueError, TypeError, IndexError, UnicodeDecodeError):
        return _sender(sender), None
    return _sender(sender), _as_utc(date)


def format_from_line(sender: str | None, date: datetime) -> bytes:
    """The canonical From_ line (no line ending); None or "" becomes MAILER-DAEMON."""
    name = sender or NULL_SENDER
    if name != name.strip() or any(c < " " or c == "\x7f" for c in name):
        raise ValueError(f"envelope sender cannot go in a From_ line: {name!r}")
    d = _as_utc(date)
    return b"From %s %s %s %2d %02d:%02d:%02d %d" % (
        name.encode("utf-8"), _DAYS[d.weekday()], _MONTHS[d.month - 1],
        d.day, d.hour, d.minute, d.second, d.year,
    )  # fmt: skip


def _sender(raw: bytes) -> str | None:
    """Decode a sender; bytes that are not UTF-8 become U+FFFD (the raw line keeps them)."""
    text = raw.strip(b" \t").decode("utf-8", "replace")
    return text or None


def _as_utc(date: datetime) -> datetime:
    """Aware datetimes converted to UTC; naive ones taken as UTC."""
    if date.tzinfo is None:
        return date.replace(tzinfo=UTC)
    return date.astimezone(UTC)


def _asctime_date(m: re.Match[bytes]) -> datetime | None:
    year = int(m["year"])
    if len(m["year"]) == 2:  # RFC 5322 §4.3: 00-49 → 20xx, 50-99 → 19xx
        year += 2000 if year < 50 else 1900
    zone = m["zone2"] or m["zone1"] or b""
    if zone[:1] in (b"+", b"-"):
        offset = int(zone[1:3]) * 60 + int(zone[3:5])
        offset = -offset if zone[:1] == b"-" else offset
    else:
        offset = _ZONES.get(zone.upper(), 0)
    try:
        local = datetime(
            year, _MONTHS.index(m["mon"]) + 1, int(m["day"]), int(m["hh"]), int(m["mm"]),
            min(int(m["ss"] or 0), 59), tzinfo=UTC,
        )  # fmt: skip
        return local - timedelta(minutes=offset)
    except (ValueError, OverflowError):
        return None
