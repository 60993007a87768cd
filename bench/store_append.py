"""Durable delivery into the store, beside the naive Maildir way, in one run.

courriel: ``Store.append`` of 5 KB messages from 1, 10 and 50 concurrent writers; each
append returns only once its file, the file's directory and the transaction are on disk.
Reference: what a Maildir MDA does per message (write a file in tmp/, fsync it, rename it
into new/, fsync the directory), run by as many threads. Reported as messages per second
and the ratio courriel / Maildir.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from courriel.store.api import INBOX
from courriel.store.sqlite.store import SQLiteStore

SIZE = 5 * 1024


def message(i: int) -> bytes:
    head = (
        f"From: Bench <bench@example.test>\r\nTo: u@example.test\r\nSubject: bench {i}\r\n"
        f"Message-ID: <{i}@bench.test>\r\nDate: Sun, 29 Nov 2026 00:00:00 +0000\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again.\r\n"
    return head + line * ((SIZE - len(head)) // len(line))


async def courriel_rate(root: Path, n: int, concurrency: int) -> float:
    store = await SQLiteStore.open(root / "courriel.db", root / "blobs")
    try:
        if await store.get_user("u@example.test") is None:
            await store.add_domain("example.test")
            await store.add_user("u@example.test", "pw")
        user = await store.get_user("u@example.test")
        assert user is not None
        inbox = await store.get_mailbox(user.id, INBOX)
        assert inbox is not None
        counter = iter(range(n))

        async def worker() -> None:
            for i in counter:
                await store.append(inbox.id, message(i))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)
    finally:
        await store.close()


def maildir_rate(root: Path, n: int, concurrency: int) -> float:
    for d in ("tmp", "new", "cur"):
        (root / d).mkdir(parents=True, exist_ok=True)
    new_fd = os.open(root / "new", os.O_RDONLY | os.O_DIRECTORY)

    def deliver(i: int) -> None:
        name = f"{time.time_ns()}.{i}.bench"
        tmp = root / "tmp" / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, message(i))
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, root / "new" / name)
        os.fsync(new_fd)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(deliver, range(n)))
    elapsed = time.perf_counter() - start
    os.close(new_fd)
    return n / elapsed


async def run(quick: bool = False) -> list[tuple[int, float, float]]:
    n = 200 if quick else 2000
    rows = []
    print(f"store append, 5 KB messages, {n} per run, durable (fsynced) before returning")
    print(f"{'concurrency':>11} {'courriel msg/s':>15} {'Maildir msg/s':>14} {'ratio':>6}")
    for conc in (1, 10, 50):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as a:
            ours = await courriel_rate(Path(a), n, conc)
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as b:
            ref = await asyncio.to_thread(maildir_rate, Path(b), n, conc)
        rows.append((conc, ours, ref))
        print(f"{conc:>11} {ours:>15.0f} {ref:>14.0f} {ours / ref:>6.2f}")
    return rows
