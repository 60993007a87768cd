"""A per-domain relay (outbound.routes) with AUTH, and the SMTPUTF8 bounce: the relay here
offers no SMTPUTF8, so a message that needs it fails with a clear 5.6.7 report."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.harness import CourrielServer, free_port
from tests.outbound.conftest import Sink, inbox, outbound_env, parse, queue_listing, wait_for
from tests.outbound.dnsserver import DnsServer


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"relay", b"s3cret")
    return AuthResult(success=ok, auth_data=auth_data.login if ok else None)


@pytest.fixture
def relay() -> Iterator[Sink]:
    s = Sink(free_port())
    ctl = Controller(s, hostname="127.0.0.1", port=s.port, decode_data=False, enable_SMTPUTF8=False,
                     auth_require_tls=False, authenticator=authenticator)  # fmt: skip
    ctl.start()
    try:
        yield s
    finally:
        ctl.stop()


@pytest.fixture
def server(tmp_path: Path, dns: DnsServer, sink: Sink, relay: Sink) -> Iterator[CourrielServer]:
    env = outbound_env(
        dns, sink.port,
        COURRIEL_OUTBOUND_ROUTES=f"relayed.test=127.0.0.1:{relay.port}",
        COURRIEL_OUTBOUND_SMARTHOST_TLS="none",
        COURRIEL_OUTBOUND_SMARTHOST_USER="relay",
        COURRIEL_OUTBOUND_SMARTHOST_PASSWORD="s3cret",
    )  # fmt: skip
    with CourrielServer(tmp_path, plaintext_auth=True, env=env) as srv:
        yield srv


def test_route_with_auth(server: CourrielServer, relay: Sink, dns: DnsServer) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("submission")) as c:
        c.login("alice@example.test", "alice-pw")
        c.sendmail("alice@example.test", ["x@relayed.test"], b"Subject: relayed\r\n\r\nvia the relay\r\n")
    wait_for(lambda: relay.messages, what="relayed delivery")
    assert relay.messages[0].rcpts == ["x@relayed.test"]
    assert relay.messages[0].login == b"relay"
    assert not [q for q in dns.queries if q[0] == "relayed.test"]  # no MX lookup for a routed domain


def test_smtputf8_needed_but_not_offered_bounces(server: CourrielServer, relay: Sink) -> None:
    msg = "From: alice@example.test\r\nSubject: ünïcode\r\n\r\nGrüße\r\n".encode()
    with smtplib.SMTP("127.0.0.1", server.port("submission")) as c:
        c.login("alice@example.test", "alice-pw")
        c.sendmail("alice@example.test", ["jörg@relayed.test"], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    box = wait_for(lambda: inbox(server, "alice@example.test"), what="bounce")
    per_rcpt = parse(box[0]).get_payload()[1].get_payload()[1]  # type: ignore[index,union-attr]
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.6.7"
    assert "does not support SMTPUTF8" in per_rcpt["Diagnostic-Code"]
    assert relay.messages == []
    wait_for(lambda: "queue is empty" in queue_listing(server), what="empty queue")
