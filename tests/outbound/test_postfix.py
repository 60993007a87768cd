"""Debian's Postfix on loopback as the remote MX: courriel delivers to it over STARTTLS,
DKIM-signed, and Postfix stores the message byte for byte in its Maildir."""

from __future__ import annotations

import os
import shutil
import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.postfix_peer import PostfixPeer, available
from tests.harness import CourrielServer, free_port
from tests.outbound.conftest import outbound_env, queue_listing, wait_for
from tests.outbound.dnsserver import DnsServer
from tests.tools import need, unavailable


@pytest.fixture
def postfix(tmp_path: Path) -> Iterator[PostfixPeer]:
    need("postfix")
    if not available():
        unavailable("Postfix needs root here")
    peer = PostfixPeer(free_port())
    # A certificate for Postfix's smtpd, so that our client has STARTTLS to use.
    tls = peer.root / "etc"
    tls.mkdir(parents=True, exist_ok=True)
    from courriel.tls import generate_self_signed

    generate_self_signed(tls / "cert.pem", tls / "key.pem", "mta.bench.local")
    peer.extra_main = (
        f"smtpd_tls_cert_file = {tls}/cert.pem\nsmtpd_tls_key_file = {tls}/key.pem\n"
        "smtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\n"
    )
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


def maildir_files(peer: PostfixPeer) -> list[bytes]:
    new = peer.root / "vmail" / "u" / "new"
    return [(new / n).read_bytes() for n in sorted(os.listdir(new))] if new.is_dir() else []


def test_courriel_delivers_to_postfix(tmp_path: Path, dns: DnsServer, postfix: PostfixPeer) -> None:
    dns.add("bench.test", "MX", "10 mta.bench.test.")
    dns.add("mta.bench.test", "A", "127.0.0.1")
    with CourrielServer(tmp_path, plaintext_auth=True, env=outbound_env(dns, postfix.port)) as srv:
        srv.cli("dkim", "keygen", "example.test", "--selector", "pf")
        body = (
            b"From: alice@example.test\r\nTo: u@bench.test\r\nSubject: to postfix\r\n"
            b"Date: Sun, 29 Nov 2026 01:00:00 +0000\r\nMessage-ID: <pf1@example.test>\r\n\r\n.leading dot\r\nend\r\n"
        )
        with smtplib.SMTP("127.0.0.1", srv.port("submission")) as c:
            c.login("alice@example.test", "alice-pw")
            c.sendmail("alice@example.test", ["u@bench.test"], body)
        files = wait_for(lambda: maildir_files(postfix), timeout=60, what=f"postfix delivery\n{postfix.log()}")
        wait_for(lambda: "queue is empty" in queue_listing(srv), what="empty queue")
    stored = files[0].replace(b"\n", b"\r\n")
    assert stored.endswith(b"\r\n" + body)  # dot-stuffing undone by Postfix: byte-exact
    assert b"DKIM-Signature: v=1; a=ed25519-sha256" in stored and b"s=pfe;" in stored
    assert b"with ESMTPS id" in stored, postfix.log()  # Postfix's Received: TLS was used
    assert "status=sent" in postfix.log() or "delivered" in postfix.log()
    shutil.rmtree(tmp_path / "data" / "dkim", ignore_errors=True)
