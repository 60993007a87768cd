"""import and export: an mbox of 10,000 messages in and out, byte-identical."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from courriel.mailformats import read_mbox
from tests.cli.conftest import courriel

DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
BODY_LINES = [
    b"Hello,",
    b">From the archive: quoted",
    b">>From twice",
    "Grüße aus Köln, déjà vu".encode(),
    "Привет, мир".encode("koi8-r"),
    b"-- ",
    b"",
    b"a fairly long line " * 8,
]


def make_mbox(n: int, seed: int = 7) -> bytes:
    """An mbox in the usual form: asctime From_ lines, LF endings, a blank line after each message."""
    rng = random.Random(seed)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        d = start + timedelta(seconds=rng.randrange(200_000_000))
        sender = rng.choice(["alice@example.org", "MAILER-DAEMON", "bob+x@example.net"])
        stamp = f"{DAYS[d.weekday()]} {MONTHS[d.month - 1]} {d.day:2d} {d:%H:%M:%S} {d.year}"
        status = rng.choice([b"", b"Status: RO\n", b"Status: O\n"])
        headers = (
            f"From: {sender}\nTo: alice@example.test\nSubject: message {i}\n"
            f"Date: {d:%a, %d %b %Y %H:%M:%S} +0000\nMessage-ID: <{i}.{seed}@example.org>\n"
        ).encode() + status
        body = b"\n".join(rng.choice(BODY_LINES) for _ in range(rng.randrange(1, 40)))
        out.append(f"From {sender} {stamp}\n".encode() + headers + b"\n" + body + b"\n\n")
    return b"".join(out)


def test_mbox_round_trip_10000_byte_identical(data_dir: Path, tmp_path: Path) -> None:
    d = str(data_dir)
    courriel("-d", d, "user", "add", "alice@example.test", "--password-stdin", stdin="pw\n")
    original = make_mbox(10_000)
    src = tmp_path / "in.mbox"
    src.write_bytes(original)
    out = courriel("-d", d, "import", "alice@example.test", str(src), "--mailbox", "Imported", "--quiet")
    assert "imported 10000 messages" in out.stdout
    dst = tmp_path / "out.mbox"
    courriel("-d", d, "export", "alice@example.test", str(dst), "--mailbox", "Imported", "--quiet")
    assert dst.read_bytes() == original
    # through Maildir and back: every message identical, in order, with its date and flags
    # (Maildir has no envelope sender, so the From_ lines may differ)
    md = tmp_path / "maildir"
    courriel("-d", d, "export", "alice@example.test", str(md), "--mailbox", "Imported", "--format", "maildir", "--quiet")
    assert len(list((md / "cur").iterdir())) + len(list((md / "new").iterdir())) == 10_000
    courriel("-d", d, "import", "alice@example.test", str(md), "--mailbox", "Again", "--quiet")
    dst2 = tmp_path / "again.mbox"
    courriel("-d", d, "export", "alice@example.test", str(dst2), "--mailbox", "Again", "--quiet")
    first = list(read_mbox(dst))
    second = list(read_mbox(dst2))
    assert [m.data for m in second] == [m.data for m in first]
    assert [m.internal_date for m in second] == [m.internal_date for m in first]
    assert [m.flags for m in second] == [m.flags for m in first]
    assert courriel("-d", d, "store", "check").stdout.strip() == "store is sound"


def test_import_errors(data_dir: Path, tmp_path: Path) -> None:
    d = str(data_dir)
    courriel("-d", d, "user", "add", "alice@example.test", "--password-stdin", stdin="pw\n")
    missing = courriel("-d", d, "import", "alice@example.test", str(tmp_path / "nope"), check=False)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    junk = tmp_path / "junk.txt"
    junk.write_text("not mail\n")
    bad = courriel("-d", d, "import", "alice@example.test", str(junk), check=False)
    assert bad.returncode == 1
    nobody = courriel("-d", d, "export", "nobody@example.test", str(tmp_path / "x"), check=False)
    assert nobody.returncode == 1 and "no user" in nobody.stderr
