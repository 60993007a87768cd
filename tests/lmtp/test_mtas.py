"""Behind an existing MTA: Debian's Postfix, Exim and Sendmail, each run privately on loopback,
accept mail over SMTP and deliver it into courriel over LMTP (Postfix over TCP, Exim and
Sendmail over the Unix socket); at RCPT each asks courriel's lookup service (socketmap) and
refuses unknown recipients itself. The stored messages are read back over IMAP: after the
trace fields (Return-Path, courriel's Received, the MTA's Received) the message is exactly
what the client sent.

Configurations: tests/lmtp/mtas.py, the same as docs/INTEGRATION.md.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.postfix_peer import POSTFIX, PostfixPeer
from tests.harness import free_port
from tests.lmtp import mtas
from tests.lmtp.conftest import Lmtp, message, split_trace, wait_message
from tests.tools import need


@dataclass
class Mta:
    name: str
    port: int
    log: Callable[[], str]
    received_by: bytes  # what its Received field says after "by"


@pytest.fixture(scope="module", params=["postfix", "exim", "sendmail"])
def mta(request: pytest.FixtureRequest, server: Lmtp) -> Iterator[Mta]:
    port, lookup = free_port(), server.port("lookup")
    peer: mtas.Exim | mtas.Sendmail | PostfixPeer
    if request.param == "postfix":
        need("postfix")
        mtas.need_binary(Path(POSTFIX), "Postfix")
        peer = mtas.postfix(port, f"inet:127.0.0.1:{server.port('lmtp')}", lookup)
        by = b"by mta.bench.local (Postfix)"
    elif request.param == "exim":
        mtas.need_binary(mtas.EXIM, "Exim")
        peer = mtas.Exim(port, server.socket_path, lookup)
        by = b"by mta.exim.test with esmtp (Exim 4."
    else:
        mtas.need_binary(mtas.SENDMAIL, "Sendmail")
        need("m4")
        need("unshare", "util-linux")
        peer = mtas.Sendmail(port, server.socket_path, lookup)
        by = b"by mta.sendmail.test (8."
    peer.start()
    try:
        yield Mta(request.param, port, peer.log, by)
    finally:
        peer.stop()


def test_mta_delivers_over_lmtp(server: Lmtp, mta: Mta) -> None:
    body = b"First line\r\n.a line starting with a dot\r\n\xc3\xa9t\xc3\xa9 (8-bit)\r\n\r\n-- \r\nsig\r\n"
    data, marker = message(mta.name, body)
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=60) as c:
        refused = c.sendmail(
            "sender@remote.test",
            ["alice@example.test", "team@example.test"],
            data,
            mail_options=["BODY=8BITMIME"],
        )
    assert refused == {}
    for user in ("alice@example.test", "bob@example.test"):
        stored = wait_message(server, user, marker, mta.log)
        fields = split_trace(stored, data)
        assert fields[0] == b"Return-Path: <sender@remote.test>", fields
        assert b"by mail.example.test (courriel) with LMTP id " in fields[1], fields
        assert any(f.startswith(b"Received: from ") and mta.received_by in f for f in fields[2:]), (
            fields,
            mta.log(),
        )


def test_mta_refuses_unknown_recipient_at_rcpt(server: Lmtp, mta: Mta) -> None:
    data, _ = message(mta.name + "-unknown")
    with smtplib.SMTP("127.0.0.1", mta.port, timeout=60) as c:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            c.sendmail("sender@remote.test", ["ghost@example.test"], data)
        c.rset()
        refused = c.sendmail(
            "sender@remote.test", ["nobody@example.test", "bob@example.test"], data
        )
    code, text = info.value.recipients["ghost@example.test"]
    assert code == 550 and b"5.1.1" in text, (code, text, mta.log())
    assert refused["nobody@example.test"][0] == 550
    assert set(refused) == {"nobody@example.test"}
