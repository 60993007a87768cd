"""kill -9 while the outbound queue delivers 800 messages to two remote domains, several
times, restarting on the same data directory each time.

SMTP's guarantee is at-least-once (RFC 5321 §6.1; RFC 1047: a 250 lost with the process
means the message is sent again). Checked at the end: every queued message reached the
remote MX with its bytes intact, to the right recipient; only messages in flight at a kill
arrived twice (at most one per open connection per kill); the queue is empty; no bounce or
delay report was generated (none at the remote, none in the sender's mailboxes); the store
invariants hold.
"""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as AioSMTP
from aiosmtpd.smtp import Envelope as AioEnvelope
from aiosmtpd.smtp import Session as AioSession

from tests.harness import CourrielServer, free_port
from tests.outbound.conftest import Sink, outbound_env, queue_listing, wait_for
from tests.outbound.dnsserver import DnsServer
from tests.reliability.common import (
    everything,
    intact,
    make_message,
    message_id,
    seeded_rng,
    store_check,
    summary,
)

COUNT = 800
KILLS = 3
PER_DOMAIN = 4
DOMAINS = ("remote.test", "other.test")
SENDERS = 4


class SlowSink(Sink):
    """The remote MX, a few milliseconds per message, so kills land mid-conversation."""

    async def handle_DATA(self, server: AioSMTP, session: AioSession, envelope: AioEnvelope) -> str:
        await asyncio.sleep(0.003)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_sink() -> Iterator[SlowSink]:
    s = SlowSink(free_port())
    ctl = Controller(s, hostname="127.0.0.1", port=s.port, decode_data=False, enable_SMTPUTF8=True)
    ctl.start()
    try:
        yield s
    finally:
        ctl.stop()


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def submit(srv: CourrielServer, items: list[tuple[str, str, bytes]]) -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("submission")) as c:
        c.login("alice@example.test", "alice-pw")
        for _, rcpt, data in items:
            c.sendmail("alice@example.test", [rcpt], data)


@pytest.mark.slow
@pytest.mark.timeout(600)  # 10-40 s alone; generous for a loaded 2-core machine
def test_kill_9_during_outbound_delivery(tmp_path: Path, dns: DnsServer, slow_sink: SlowSink) -> None:
    rng = seeded_rng()
    for domain in DOMAINS:
        dns.add(domain, "MX", f"10 mx.{domain}.")
        dns.add(f"mx.{domain}", "A", "127.0.0.1")
    env = outbound_env(dns, slow_sink.port, COURRIEL_OUTBOUND_MAX_PER_DOMAIN=str(PER_DOMAIN),
                       COURRIEL_OUTBOUND_MAX_PER_CONNECTION="50", COURRIEL_OUTBOUND_ENABLED="false")  # fmt: skip
    srv = CourrielServer(tmp_path, plaintext_auth=True, env=env, only=("submission", "outbound"))
    items = []
    for n in range(COUNT):
        mid = f"crash-out-{n}@example.test"
        rcpt = f"user{n % 7}@{DOMAINS[n % len(DOMAINS)]}"
        items.append((mid, rcpt, make_message(mid, "alice@example.test", rcpt, rng, size=rng.randint(200, 4000))))
    originals = {mid: (rcpt, data) for mid, rcpt, data in items}
    with srv:  # queue everything first (outbound off), from a few sessions at once
        senders = [threading.Thread(target=submit, args=(srv, items[i::SENDERS])) for i in range(SENDERS)]
        for t in senders:
            t.start()
        for t in senders:
            t.join(120)
    assert queue_listing(srv).count("\tqueued") == COUNT

    srv.env["COURRIEL_OUTBOUND_ENABLED"] = "true"
    marks = sorted(rng.randint(COUNT // 10, COUNT * 8 // 10) for _ in range(KILLS))
    kills: list[int] = []
    srv.start()
    try:
        for mark in marks:
            wait_for(lambda m=mark: len(slow_sink.messages) >= m, timeout=120, what=f"{mark} deliveries")  # type: ignore[misc]
            time.sleep(rng.uniform(0, 0.05))
            srv.kill()
            kills.append(len(slow_sink.messages))
            srv.start()
        assert kills[-1] < COUNT, "all delivered before the last kill: nothing tested"
        wait_for(lambda: {message_id(m.data) for m in slow_sink.messages} >= set(originals), timeout=120,
                 what="every message delivered")  # fmt: skip
        wait_for(lambda: "queue is empty" in queue_listing(srv), what="an empty queue")
    finally:
        srv.stop()

    counts = Counter(message_id(m.data) for m in slow_sink.messages)
    assert set(counts) == set(originals), f"unexpected: {set(counts) - set(originals)}"  # no bounce, nothing else
    for m in slow_sink.messages:
        got = message_id(m.data)
        assert got is not None
        rcpt, data = originals[got]
        assert m.mail_from == "alice@example.test" and m.rcpts == [rcpt], (m.mail_from, m.rcpts)
        # DKIM is not configured: the bytes arrive as submitted, after the trace header(s).
        assert m.data.replace(b"\r\n", b"\n").endswith(data.replace(b"\r\n", b"\n")) and intact(m.data), got
    twice = [mid for mid, n in counts.items() if n > 1]
    in_flight = KILLS * PER_DOMAIN * len(DOMAINS)
    assert all(counts[mid] <= 1 + KILLS for mid in twice) and len(twice) <= in_flight, twice
    reports = [f for f in everything(srv) if f.user == "alice@example.test"]
    assert not reports, f"reports generated: {[f.data[:200] for f in reports[:3]]}"
    store_check(srv)
    summary(tmp_path, f"crash-outbound: {KILLS} kills survived (at {kills} delivered), {COUNT} queued, "
                      f"{COUNT} delivered, 0 lost, {len(twice)} delivered twice (in flight at a kill), "
                      f"0 bounces, queue empty")  # fmt: skip
