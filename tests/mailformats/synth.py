"""A deterministic synthetic mbox, built independently of the code under test.

Every message is written in mboxrd form by hand (quoting with str.startswith, not the
module's regex), so the expected data, sender, date and flags are known up front.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from courriel.mailformats import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
SENDERS = ["alice@example.org", "bob+list@example.net", "MAILER-DAEMON",
           "jörg@exämple.de", "x@[192.0.2.1]", "owner-list@lists.example.com"]  # fmt: skip
TRICKY_LINES = [b"From here on", b"From bob@example.org Thu Nov 29 00:02:06 2026",
                b">From quoted", b">>From twice", b">>>From thrice", b"From", b"Fromage",
                b" From indented", b">From", b"From:", b"", b"", b">", b"From  double space",
                "déjà vu, ça marche".encode(), "日本語の行".encode(),
                bytes(range(0x80, 0x100)), b"\x00\x01\x7f tab\there",
                b"trailing space ", b"a\rbare CR inside"]  # fmt: skip
STATUS = {SEEN: "R", ANSWERED: "A", FLAGGED: "F", DELETED: "D", DRAFT: "T"}


@dataclass(frozen=True)
class Expected:
    data: bytes
    sender: str | None
    date: datetime | None
    flags: frozenset[str]
    from_line_exact: bool


@dataclass(frozen=True)
class Synthetic:
    file: bytes
    messages: list[Expected]


def asctime(d: datetime) -> str:
    return f"{DAYS[d.weekday()]} {MONTHS[d.month - 1]} {d.day:2d} {d:%H:%M:%S} {d.year}"


def from_line(rng: random.Random, sender: str, date: datetime) -> tuple[bytes, bool, datetime]:
    """A From_ line: mostly canonical, sometimes one of the variants seen in the wild."""
    kind = rng.randrange(20)
    if kind == 0:  # numeric zone: the date is local time
        local = date + timedelta(hours=2)
        return f"From {sender} {asctime(local)} +0200".encode(), False, date
    if kind == 1:
        return f"From {sender} {asctime(date)} remote from gw".encode(), False, date
    if kind == 2:  # zero-padded day
        text = f"{DAYS[date.weekday()]} {MONTHS[date.month - 1]} {date:%d %H:%M:%S %Y}"
        return f"From {sender} {text}".encode(), date.day >= 10, date
    return f"From {sender} {asctime(date)}".encode(), True, date


def quote(line: bytes) -> bytes:
    """mboxrd quoting, written the slow obvious way."""
    if line.lstrip(b">").startswith(b"From "):
        return b">" + line
    return line


def line_pool(rng: random.Random, n: int = 4096) -> list[bytes]:
    alphabet = b"abcdefghij klmnop.,;\xe9\xc3\xa9"
    return [bytes(rng.choices(alphabet, k=rng.randrange(76))) for _ in range(n)]


def message_lines(
    rng: random.Random, pool: list[bytes], i: int, sender: str, flags: frozenset[str]
) -> list[bytes]:
    headers = [
        f"Return-Path: <{sender if sender != 'MAILER-DAEMON' else ''}>",
        f"From: Sender {i} <{sender}>",
        "To: rcpt@example.org",
        f"Subject: message {i} {'é' * (i % 3)}",
        f"Message-ID: <{i}@synthetic.example>",
    ]
    if flags or rng.random() < 0.3:
        headers.append("Status: " + ("R" if SEEN in flags else "") + "O")
        x = "".join(STATUS[f] for f in sorted(flags) if f != SEEN)
        if x:
            headers.append("X-Status: " + x)
    lines = [h.encode() for h in headers] + [b""]
    size = rng.choice([0, 1, 3, 10, 20, 40, 100]) if i % 97 else 1500  # some big ones
    body = rng.choices(pool, k=size)
    for k in range(0, size, 10):
        body[k] = rng.choice(TRICKY_LINES)
    lines.extend(body)
    if i % 50 == 0:  # the first body line is a From line
        lines.insert(lines.index(b"") + 1, b"From the first line")
    return lines


def synthetic_mbox(n: int, seed: int) -> Synthetic:
    rng = random.Random(seed)
    base = datetime(2001, 1, 1, tzinfo=UTC)
    pool = line_pool(rng)
    chunks: list[bytes] = []
    messages: list[Expected] = []
    for i in range(n):
        sender = rng.choice(SENDERS)
        date = base + timedelta(seconds=rng.randrange(30 * 365 * 86400))
        flags = frozenset(f for f in STATUS if rng.random() < 0.2)
        line, exact, date = from_line(rng, sender, date)
        if i % 1000 == 999:  # an empty message
            lines: list[bytes] = []
            flags = frozenset()
        else:
            lines = message_lines(rng, pool, i, sender, flags)
        chunks.append(line + b"\n")
        chunks.extend(quote(x) + b"\n" for x in lines)
        chunks.append(b"\n")
        data = b"".join(x + b"\r\n" for x in lines)
        messages.append(Expected(data, sender, date, flags, exact))
    return Synthetic(b"".join(chunks), messages)
