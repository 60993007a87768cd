"""AUTH end to end: SCRAM-SHA-256 with our own client side, brute-force limits, plus the
connection limits, idle timeout and shutdown of a strictly configured server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import CourrielServer
from tests.smtp.conftest import Raw, auth_plain, delivered, start_server, unique


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def scram_exchange(c: Raw, user: str, password: str, tamper: bool = False) -> bytes:
    """RFC 5802 / RFC 7677 client side over SMTP AUTH (RFC 4954); returns the final reply."""
    nonce = _b64(secrets.token_bytes(18))
    client_first_bare = b"n=" + user.encode() + b",r=" + nonce
    reply = c.cmd(b"AUTH SCRAM-SHA-256 " + _b64(b"n,," + client_first_bare) + b"\r\n")
    assert reply.startswith(b"334 "), reply
    server_first = base64.b64decode(reply[4:].strip())
    attrs = dict(item.split(b"=", 1) for item in server_first.split(b","))
    assert attrs[b"r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs[b"s"]), int(attrs[b"i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = b"c=" + _b64(b"n,,") + b",r=" + attrs[b"r"]
    auth_message = client_first_bare + b"," + server_first + b"," + without_proof
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    if tamper:
        proof = bytes([proof[0] ^ 1]) + proof[1:]
    reply = c.cmd(_b64(without_proof + b",p=" + _b64(proof)) + b"\r\n")
    if not reply.startswith(b"334 "):
        return reply
    # Server-final message in a 334 (RFC 4954 §4): verify the server's signature.
    server_final = base64.b64decode(reply[4:].strip())
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expected = b"v=" + _b64(hmac.new(server_key, auth_message, hashlib.sha256).digest())
    assert server_final == expected
    return c.cmd(b"\r\n")


def test_scram_sha256(server: CourrielServer) -> None:
    c = Raw(server.port("submissions"), tls=True)
    c.cmd(b"EHLO client.test\r\n")
    assert scram_exchange(c, "alice@example.test", "alice-pw") == b"235 2.7.0 Authentication successful\r\n"
    msg = unique("scram")
    c.send(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert [c.reply() for _ in range(3)][2].startswith(b"354 ")
    assert c.cmd(msg + b".\r\n").startswith(b"250 2.0.0 OK: queued as ")
    c.close()
    assert b"(authenticated as alice@example.test)" in delivered(server, "bob@example.test", msg)[0][1]


def test_scram_wrong_proof(server: CourrielServer) -> None:
    c = Raw(server.port("submissions"), tls=True)
    c.cmd(b"EHLO client.test\r\n")
    assert scram_exchange(c, "carol@example.test", "carol-pw", tamper=True) == (
        b"535 5.7.8 Authentication credentials invalid\r\n"
    )
    assert scram_exchange(c, "carol@example.test", "carol-pw") == b"235 2.7.0 Authentication successful\r\n"
    c.close()


def test_auth_exchange_errors(server: CourrielServer) -> None:
    c = Raw(server.port("submissions"), tls=True)
    c.cmd(b"EHLO client.test\r\n")
    assert c.cmd(b"AUTH CRAM-MD5\r\n") == b"504 5.5.4 Unrecognized authentication type\r\n"
    assert c.cmd(b"AUTH PLAIN\r\n") == b"334 \r\n"
    assert c.cmd(b"*\r\n") == b"501 5.0.0 Authentication cancelled\r\n"
    assert c.cmd(b"AUTH PLAIN !!!notbase64\r\n").startswith(b"501 5.5.2 ")
    assert c.cmd(b"AUTH LOGIN\r\n") == b"334 VXNlcm5hbWU6\r\n"
    assert c.cmd(_b64(b"bob@example.test") + b"\r\n") == b"334 UGFzc3dvcmQ6\r\n"
    assert c.cmd(_b64(b"bob-pw") + b"\r\n") == b"235 2.7.0 Authentication successful\r\n"
    assert c.cmd(auth_plain("bob@example.test", "bob-pw")) == b"503 5.5.1 Already authenticated\r\n"
    c.close()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    root: Path = tmp_path_factory.mktemp("smtp-strict")
    srv = start_server(
        root,
        {
            "COURRIEL_LIMITS_MAX_AUTH_FAILURES": "2",
            "COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP": "3",
            "COURRIEL_SMTP_COMMAND_TIMEOUT": "1",
            "COURRIEL_SMTP_SESSION_TIMEOUT": "3",
        },
        plaintext_auth=False,
    )
    try:
        yield srv
    finally:
        srv.stop()


def test_brute_force(strict: CourrielServer) -> None:
    """Failures from one address: slowed, then refused for a while; the session is closed
    after too many; the log never shows a password."""
    c = Raw(strict.port("submissions"), tls=True)
    c.cmd(b"EHLO attacker.test\r\n")
    assert c.cmd(auth_plain("alice@example.test", "guess-1")) == b"535 5.7.8 Authentication credentials invalid\r\n"
    assert c.cmd(auth_plain("alice@example.test", "guess-2")) == b"535 5.7.8 Authentication credentials invalid\r\n"
    # Locked out now: even the right password is not checked.
    refused = b"454 4.7.0 Too many authentication failures from your address, try again later\r\n"
    assert c.cmd(auth_plain("alice@example.test", "alice-pw")) == refused
    c.close()
    c = Raw(strict.port("submission"))  # another listener, same address: refused too
    c.cmd(b"EHLO attacker.test\r\n")
    c.starttls()
    c.cmd(b"EHLO attacker.test\r\n")
    assert c.cmd(auth_plain("alice@example.test", "alice-pw")) == refused
    c.close()
    assert not any("guess-" in line or "alice-pw" in line for line in strict.stderr + strict.output)


def test_connection_limit_per_ip(strict: CourrielServer) -> None:
    clients = [Raw(strict.port("smtp")) for _ in range(3)]
    import socket

    with socket.create_connection(("127.0.0.1", strict.port("smtp")), timeout=30) as s:
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(1024)
            if not chunk:
                break
            data += chunk
        assert data == b"421 4.7.0 mail.example.test too many connections from your address, try again later\r\n"
    for c in clients:
        c.close()
    # The server frees the slots when it sees the connections close: wait for that, so the
    # next test on this server is not refused (bounded: 30 s).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", strict.port("smtp")), timeout=30) as s:
            if s.recv(3) == b"220":
                return
        time.sleep(0.05)
    raise AssertionError("connection slots were not released")


def test_idle_timeout(strict: CourrielServer) -> None:
    c = Raw(strict.port("smtp"))
    assert c.reply() == b"421 4.4.2 mail.example.test timeout, closing\r\n"
    assert c.closed()
    c.close()


def test_shutdown_sends_421(tmp_path: Path) -> None:
    import signal

    srv = start_server(tmp_path)
    try:
        idle = Raw(srv.port("smtp"))
        idle.cmd(b"EHLO client.test\r\n")
        busy = Raw(srv.port("submissions"), tls=True)
        busy.cmd(b"EHLO client.test\r\n")
        busy.cmd(b"MAIL FROM:<x@y.test>\r\n")
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        bye = b"421 4.3.2 Service shutting down, closing transmission channel\r\n"
        # Services stop one after the other (submissions first): read in that order.
        assert busy.reply() == bye
        assert busy.closed()
        busy.close()
        assert idle.reply() == bye
        assert idle.closed()
        idle.close()
    finally:
        assert srv.stop() == 0


def test_session_timeout(strict: CourrielServer) -> None:
    """A client that keeps the session busy is still cut off after smtp.session_timeout."""
    import time

    c = Raw(strict.port("smtp"))
    for _ in range(100):
        reply = c.cmd(b"NOOP\r\n")
        if reply != b"250 2.0.0 OK\r\n":
            break
        time.sleep(0.2)
    assert reply == b"421 4.4.2 mail.example.test session too long, closing\r\n"
    assert c.closed()
    c.close()


def test_submission_without_tls_offers_no_auth(strict: CourrielServer) -> None:
    """allow_plaintext_auth off (the default): no AUTH before STARTTLS, so no MAIL either."""
    c = Raw(strict.port("submission"))
    caps = c.cmd(b"EHLO client.test\r\n")
    assert b"AUTH" not in caps and b"250-STARTTLS\r\n" in caps
    assert c.cmd(auth_plain("bob@example.test", "bob-pw")) == (
        b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    )
    assert c.cmd(b"MAIL FROM:<bob@example.test>\r\n") == b"530 5.7.0 Authentication required\r\n"
    c.starttls()
    assert b"250-AUTH SCRAM-SHA-256 PLAIN LOGIN\r\n" in c.cmd(b"EHLO client.test\r\n")
    c.close()
