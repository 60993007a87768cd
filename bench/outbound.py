"""Outbound delivery: courriel's queue runner beside Postfix's, both relaying the same number
of queued 5 KB messages to the same remote MX (a third, private Postfix writing Maildir).

courriel: the messages are queued through the store while the outbound service is off,
then ``serve`` starts with it on; the clock runs from ``ready`` until the remote Maildir
holds every message (MX lookup through a test DNS server, one destination, 20 connections).
Postfix: the messages are injected with ``smtp-source`` while ``defer_transports = smtp``
holds them; the clock runs from the flush until the remote Maildir holds every message
(relayhost, its default 20 connections per destination). Ratio: courriel / Postfix msg/s.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.postfix_peer import POSTFIX, PostfixPeer, available
from tests.harness import CourrielServer, free_port
from tests.outbound.dnsserver import DnsServer

SMTP_SOURCE = "/usr/sbin/smtp-source"
POSTQUEUE = "/usr/sbin/postqueue"
POSTCONF = "/usr/sbin/postconf"
SIZE = 5 * 1024
PER_DOMAIN = 20


def _message(i: int) -> bytes:
    head = f"From: u@example.test\r\nTo: u@bench.test\r\nSubject: bench {i}\r\nMessage-ID: <b{i}@example.test>\r\n\r\n"
    line = b"x" * 76 + b"\r\n"
    return head.encode() + line * (SIZE // len(line))


async def _enqueue(data: Path, n: int) -> None:
    from courriel.store.api import QueueRecipient
    from courriel.store.sqlite.store import SQLiteStore

    store = await SQLiteStore.open(data / "courriel.db", data / "blobs")
    try:
        for i in range(n):
            await store.enqueue(_message(i), "u@example.test", [QueueRecipient("u@bench.test")])
    finally:
        await store.close()


def _wait(count: Callable[[], int], n: int, what: str, timeout: float = 600) -> float:
    deadline = time.monotonic() + timeout
    while count() < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: only {count()} of {n}")
        time.sleep(0.02)
    return time.perf_counter()


def _files(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path)) if path.exists() else 0


def courriel_round(sink: PostfixPeer, n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, DnsServer() as dns:
        dns.add("bench.test", "MX", "10 mx.bench.test.")
        dns.add("mx.bench.test", "A", "127.0.0.1")
        srv = CourrielServer(Path(tmp), users={"u@example.test": "pw"}, only=("smtp",))
        srv.env["COURRIEL_SERVER_LOG_LEVEL"] = "warning"
        srv.start()
        srv.stop()
        asyncio.run(_enqueue(srv.data, n))
        srv.env.update({
            "COURRIEL_OUTBOUND_ENABLED": "true", "COURRIEL_OUTBOUND_DNS": dns.address,
            "COURRIEL_OUTBOUND_PORT": str(sink.port), "COURRIEL_OUTBOUND_POLL_MS": "100",
            "COURRIEL_OUTBOUND_MAX_PER_DOMAIN": str(PER_DOMAIN),
        })  # fmt: skip
        srv.only = ("smtp", "outbound")
        before = sink.maildir_count("u")
        srv.start()
        t0 = time.perf_counter()
        try:
            t1 = _wait(lambda: sink.maildir_count("u") - before, n, "courriel outbound")
        finally:
            srv.stop()
        return n / (t1 - t0)


def postfix_round(sink: PostfixPeer, n: int) -> float:
    sender = PostfixPeer(
        free_port(),
        extra_main=f"myhostname = sender.bench.local\nvirtual_mailbox_domains =\n"
        f"relayhost = [127.0.0.1]:{sink.port}\ndefer_transports = smtp\n",
    ).start()
    try:
        proc = subprocess.run(
            [SMTP_SOURCE, "-s", "20", "-m", str(n), "-l", str(SIZE), "-f", "u@example.test", "-t", "v@bench.test",
             "-M", "client.test", f"127.0.0.1:{sender.port}"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        _wait(lambda: _files(sender.root / "spool" / "deferred"), n, "postfix holding")
        before = sink.maildir_count("catchall")
        t0 = time.perf_counter()
        etc = str(sender.etc)
        subprocess.run([POSTCONF, "-c", etc, "-e", "defer_transports ="], check=True, capture_output=True, timeout=60)
        subprocess.run([POSTFIX, "-c", etc, "reload"], check=True, capture_output=True, timeout=60)
        subprocess.run([POSTQUEUE, "-c", etc, "-f"], check=True, capture_output=True, timeout=60)
        t1 = _wait(lambda: sink.maildir_count("catchall") - before, n, f"postfix relay\n{sender.log()[-2000:]}")
        return n / (t1 - t0)
    finally:
        sender.stop()


def run(quick: bool = False) -> tuple[float, float] | None:
    if not available() or not os.access(SMTP_SOURCE, os.X_OK):
        print("outbound bench: Postfix not available (needs root and postfix), skipped")
        return None
    n = 200 if quick else 2000
    sink = PostfixPeer(free_port()).start()
    try:
        ours = courriel_round(sink, n)
        theirs = postfix_round(sink, n)
    finally:
        sink.stop()
    print(f"Outbound relay, {n} queued {SIZE // 1024} KB messages to one remote MX (Postfix to Maildir)")
    print(f"{'courriel msg/s':>15} {'Postfix msg/s':>14} {'ratio':>6}")
    print(f"{ours:>15.0f} {theirs:>14.0f} {ours / theirs:>6.2f}")
    return ours, theirs


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
