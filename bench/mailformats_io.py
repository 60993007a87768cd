"""Throughput of the mbox and Maildir readers and writers.

    python -m bench.mailformats_io [messages] [--fsync]

Builds a synthetic mbox (sizes from 200 bytes to 60 kB, quoted From lines, 8-bit
bytes) in a temporary directory and reports messages/s and MB/s for each step.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from courriel.mailformats.item import MailItem
from courriel.mailformats.maildir import MaildirWriter, read_maildir
from courriel.mailformats.mbox import count_mbox, read_mbox, write_mbox


def synthetic_items(n: int, seed: int = 1) -> list[MailItem]:
    rng = random.Random(seed)
    pool = [bytes(rng.choices(b"abcdefgh ij.,\xe9", k=rng.randrange(78))) for _ in range(2000)]
    pool += [b"From the start", b">From quoted", b""]
    items = []
    for i in range(n):
        body = rng.choices(pool, k=rng.choice([3, 10, 30, 100, 800]))
        data = b"Subject: %d\r\nStatus: RO\r\n\r\n" % i + b"\r\n".join(body) + b"\r\n"
        items.append(MailItem(data, "a@example.org", None))
    return items


def timed(label: str, n: int, size: int, step: Callable[[], object]) -> None:
    start = time.perf_counter()
    step()
    elapsed = time.perf_counter() - start
    print(f"{label:<22} {n / elapsed:>10,.0f} msg/s {size / elapsed / 1e6:>8,.1f} MB/s")


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv and argv[0].isdigit() else 10_000
    fsync = "--fsync" in argv
    items = synthetic_items(n)
    with tempfile.TemporaryDirectory() as tmp:
        src, copy, maildir = Path(tmp) / "in.mbox", Path(tmp) / "out.mbox", Path(tmp) / "md"
        write_mbox(src, items)
        size = src.stat().st_size
        print(f"{n} messages, {size / 1e6:.1f} MB")
        timed("count_mbox", n, size, lambda: count_mbox(src))
        timed("read_mbox", n, size, lambda: sum(1 for _ in read_mbox(src)))
        timed("read+write_mbox", n, size, lambda: write_mbox(copy, read_mbox(src), fsync=fsync))
        assert copy.read_bytes() == src.read_bytes()

        def to_maildir() -> None:
            with MaildirWriter(maildir, fsync=fsync) as writer:
                for item in read_mbox(src):
                    writer.write(item)

        timed(f"mbox→Maildir{' (fsync)' if fsync else ''}", n, size, to_maildir)
        timed("read_maildir", n, size, lambda: sum(1 for _ in read_maildir(maildir)))


if __name__ == "__main__":
    main(sys.argv[1:])
