"""MTA to MTA: Debian's Postfix, on loopback, relays mail into courriel's MX (STARTTLS,
PIPELINING, 8BITMIME, DSN, SMTPUTF8 as Postfix chooses to use them)."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator

import pytest

from bench.postfix_peer import PostfixPeer, available
from tests.harness import CourrielServer, free_port
from tests.smtp.conftest import inbox, split_trace, unique
from tests.tools import need, unavailable


@pytest.fixture(scope="module")
def postfix(server: CourrielServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostfixPeer]:
    need("postfix")
    if not available():
        unavailable("Postfix needs root here")
    peer = PostfixPeer(
        free_port(),
        extra_main=f"relayhost = [127.0.0.1]:{server.port('smtp')}\nsmtp_tls_security_level = may\n",
    ).start()
    try:
        yield peer
    finally:
        peer.stop()


def wait_for(server: CourrielServer, address: str, tail: bytes, peer: PostfixPeer) -> bytes:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for m in inbox(server, address):
            if m.endswith(tail):
                return m
        time.sleep(0.2)
    raise AssertionError(f"not relayed; postfix log:\n{peer.log()}")


def test_postfix_relays_into_courriel(server: CourrielServer, postfix: PostfixPeer) -> None:
    body = unique("via postfix").replace(b"\r\n\r\n", b"\r\nDate: Sun, 29 Nov 2026 00:00:00 +0000\r\n\r\n", 1)
    with smtplib.SMTP("127.0.0.1", postfix.port) as c:
        assert c.sendmail("sender@remote.test", ["alice@example.test", "team@example.test"], body) == {}
    stored = wait_for(server, "alice@example.test", body.split(b"\r\n\r\n", 1)[1], postfix)
    trace, rest = split_trace(stored)
    assert trace[0] == b"Return-Path: <sender@remote.test>\r\n"
    received = trace[1].decode()
    assert received.startswith("Received: from mta.bench.local ([127.0.0.1])")
    assert " with ESMTPS id " in received and "(using TLSv1.3" in received, postfix.log()
    # Postfix added its own Received line; the message itself follows byte for byte.
    postfix_received, original = rest.split(b"\r\nFrom: ", 1)
    assert postfix_received.startswith(b"Received: from ") and b"by mta.bench.local (Postfix)" in postfix_received
    assert b"From: " + original == body
    wait_for(server, "bob@example.test", body.split(b"\r\n\r\n", 1)[1], postfix)


def test_postfix_gets_unknown_user_refusal(server: CourrielServer, postfix: PostfixPeer) -> None:
    """courriel's 550 5.1.1 at RCPT reaches Postfix, which bounces (logged as such)."""
    with smtplib.SMTP("127.0.0.1", postfix.port) as c:
        c.sendmail("sender@remote.test", ["ghost@example.test"], unique("ghost"))
    deadline = time.monotonic() + 60
    while "ghost@example.test" not in postfix.log() or "5.1.1" not in postfix.log():
        assert time.monotonic() < deadline, postfix.log()
        time.sleep(0.2)
    assert "said: 550 5.1.1 User unknown" in postfix.log()
