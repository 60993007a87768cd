"""kill -9 while 1,000 messages are queued and being delivered: after a restart every
message arrives, none is lost, and only what was on the wire at the instant of the kill
can arrive twice (RFC 5321 §6.1 / RFC 1047: a 250 lost with the process)."""

from __future__ import annotations

import smtplib
from collections import Counter
from pathlib import Path

from tests.harness import CourrielServer
from tests.outbound.conftest import Sink, outbound_env, queue_listing, wait_for
from tests.outbound.dnsserver import DnsServer

COUNT = 1000
PER_DOMAIN = 4


def message_id(data: bytes) -> str:
    start = data.index(b"Message-ID: <") + 13
    return data[start : data.index(b">", start)].decode()


def test_kill_9_with_1000_queued(tmp_path: Path, dns: DnsServer, sink: Sink) -> None:
    dns.add("remote.test", "MX", "10 mx.remote.test.")
    dns.add("mx.remote.test", "A", "127.0.0.1")
    env = outbound_env(dns, sink.port, COURRIEL_OUTBOUND_MAX_PER_DOMAIN=str(PER_DOMAIN),
                       COURRIEL_OUTBOUND_ENABLED="false")  # fmt: skip
    srv = CourrielServer(tmp_path, plaintext_auth=True, env=env)
    with srv, smtplib.SMTP("127.0.0.1", srv.port("submission")) as c:
        c.login("alice@example.test", "alice-pw")
        for i in range(COUNT):
            msg = f"From: alice@example.test\r\nSubject: {i}\r\nMessage-ID: <m{i}@example.test>\r\n\r\n{i}\r\n"
            c.sendmail("alice@example.test", ["bob@remote.test"], msg)
    assert queue_listing(srv).count("<bob@remote.test>\tqueued") == COUNT
    srv.env["COURRIEL_OUTBOUND_ENABLED"] = "true"
    srv.start()
    wait_for(lambda: len(sink.messages) >= COUNT // 5, what="deliveries under way")
    srv.kill()
    at_kill = len(sink.messages)
    assert at_kill < COUNT, "all delivered before the kill: nothing tested"
    srv.start()
    try:
        wait_for(lambda: len({message_id(m.data) for m in sink.messages}) == COUNT, timeout=120, what="all delivered")
        wait_for(lambda: "queue is empty" in queue_listing(srv), what="empty queue")
    finally:
        srv.stop()
    counts = Counter(message_id(m.data) for m in sink.messages)
    assert set(counts) == {f"m{i}@example.test" for i in range(COUNT)}  # nothing lost
    twice = [mid for mid, n in counts.items() if n > 1]
    # Only the messages in flight when the process died (one per connection) may repeat.
    assert all(counts[mid] == 2 for mid in twice) and len(twice) <= PER_DOMAIN, twice
    # Connections are reused (up to outbound.max_per_connection messages each).
    assert sink.sessions <= COUNT // 50, sink.sessions
    print(f"kill -9 after {at_kill} deliveries; repeated after restart: {len(twice)}; sessions: {sink.sessions}")
