"""imaplib against a server with plaintext authentication off (its default): CAPABILITY,
LOGINDISABLED, STARTTLS, IMAPS, LOGIN, AUTHENTICATE PLAIN / SCRAM-SHA-256 / SASL-IR, LOGOUT.
RFC 9051 §6.1-6.2, RFC 4959 (SASL-IR), RFC 5802/7677 (SCRAM).
"""

from __future__ import annotations

import base64
import imaplib
import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.imap_interop.clients import (
    ALICE,
    Clients,
    capabilities,
    has_cap,
    need_cap,
    ok,
    tls_context,
)
from tests.imap_interop.peers import Target, start_target
from tests.imap_interop.scram import ScramSha256


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from start_target(tmp_path_factory.mktemp("imap-tls"), plaintext_auth=False)


def test_cleartext_port_offers_starttls_and_refuses_passwords(target: Target, clients: Clients) -> None:
    conn = clients.plain()
    assert conn.welcome.startswith(b"* OK")
    caps = capabilities(conn)
    assert "IMAP4REV1" in caps
    has_cap(target, caps, "IMAP4rev2")
    assert "STARTTLS" in caps
    if has_cap(target, caps, "LOGINDISABLED"):  # §6.2.3: no LOGIN before TLS
        with pytest.raises(imaplib.IMAP4.error):  # imaplib turns the NO/BAD into an error
            conn.login(ALICE, target.users[ALICE])
        assert conn.state == "NONAUTH"
    ok(conn.noop())  # the session survives the refusal
    typ, _data = conn.logout()
    assert typ == "BYE"


def test_starttls_then_login(target: Target, clients: Clients) -> None:
    conn = clients.plain()
    ok(conn.starttls(ssl_context=tls_context(target)))
    assert isinstance(conn.sock, ssl.SSLSocket)
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    caps = capabilities(conn)  # §6.2.1: capabilities are asked again after STARTTLS
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    assert "AUTH=PLAIN" in caps
    ok(conn.login(ALICE, target.users[ALICE]))
    data = ok(conn.select("INBOX"))
    assert int(data[0]) >= 0
    # STARTTLS is only valid once, in the not-authenticated state
    with pytest.raises(imaplib.IMAP4.error):
        conn.starttls(ssl_context=tls_context(target))
    assert conn.logout()[0] == "BYE"


def test_starttls_discards_pipelined_plaintext(target: Target, clients: Clients) -> None:
    """Commands sent after STARTTLS before the handshake must not be run (command injection,
    CVE-2011-0411): the server discards them or closes the connection."""
    with socket.create_connection((target.host, target.imap_port), timeout=30) as raw:
        with raw.makefile("rb") as f:
            assert f.readline().startswith(b"* OK")
            raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
            assert f.readline().startswith(b"a OK")
        try:
            tls = tls_context(target).wrap_socket(raw, server_hostname=target.host)
        except (ssl.SSLEOFError, ConnectionResetError):
            return  # closed rather than discarded: also safe
        with tls, tls.makefile("rb") as g:
            tls.sendall(b"c NOOP\r\n")
            line = g.readline()
            assert line.startswith(b"c OK"), line  # nothing answered the injected "b CAPABILITY"
            tls.sendall(b"d LOGOUT\r\n")
            assert g.readline().startswith(b"* BYE")


def test_imaps_verifies_and_logs_in(target: Target, clients: Clients) -> None:
    conn = clients.imaps()
    assert conn.welcome.startswith(b"* OK")
    caps = capabilities(conn)
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    ok(conn.login(ALICE, target.users[ALICE]))
    assert conn.state == "AUTH"
    ok(conn.noop())
    assert conn.logout()[0] == "BYE"


def test_imaps_certificate_is_checked(target: Target, clients: Clients) -> None:
    """The client side really verifies (so the TLS tests above prove something)."""
    with (
        socket.create_connection((target.host, target.imaps_port), timeout=30) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        tls_context(target).wrap_socket(raw, server_hostname="wrong.invalid")


def test_authenticate_plain(target: Target, clients: Clients) -> None:
    conn = clients.imaps()
    need_cap(target, capabilities(conn), "AUTH=PLAIN")
    ok(conn.authenticate("PLAIN", lambda _: f"\0{ALICE}\0{target.users[ALICE]}".encode()))
    assert conn.state == "AUTH"
    ok(conn.select("INBOX"))
    conn.logout()


def test_authenticate_plain_wrong_password(target: Target, clients: Clients) -> None:
    conn = clients.imaps()
    with pytest.raises(imaplib.IMAP4.error) as err:
        conn.authenticate("PLAIN", lambda _: f"\0{ALICE}\0wrong".encode())
    assert "AUTHENTICATIONFAILED" in str(err.value)  # RFC 5530 response code
    assert conn.state == "NONAUTH"
    conn.logout()


def test_authenticate_cancelled(target: Target, clients: Clients) -> None:
    conn = clients.imaps()
    with pytest.raises(imaplib.IMAP4.error):  # §6.2.2: "*" cancels, the server answers BAD
        conn.authenticate("PLAIN", lambda _: None)
    ok(conn.noop())
    conn.logout()


def test_authenticate_scram_sha_256(target: Target, clients: Clients) -> None:
    conn = clients.imaps()
    need_cap(target, capabilities(conn), "AUTH=SCRAM-SHA-256")
    scram = ScramSha256(ALICE, target.users[ALICE])
    ok(conn.authenticate("SCRAM-SHA-256", scram))
    assert scram.verified, "the server's signature must be checked"
    ok(conn.select("INBOX"))
    conn.logout()


def test_authenticate_scram_wrong_password(target: Target, clients: Clients) -> None:
    conn = clients.imaps()
    with pytest.raises(imaplib.IMAP4.error):
        conn.authenticate("SCRAM-SHA-256", ScramSha256(ALICE, "not-the-password"))
    assert conn.state == "NONAUTH"
    conn.logout()


def test_authenticate_sasl_ir(target: Target, clients: Clients) -> None:
    """RFC 4959: the initial response on the AUTHENTICATE line, no continuation round trip."""
    conn = clients.imaps()
    need_cap(target, capabilities(conn), "SASL-IR")
    ir = base64.b64encode(f"\0{ALICE}\0{target.users[ALICE]}".encode()).decode()
    typ, data = conn.xatom("AUTHENTICATE", "PLAIN", ir)
    assert typ == "OK", data
    conn.state = "AUTH"
    ok(conn.select("INBOX"))
    conn.logout()


def test_sasl_ir_on_cleartext_port_is_refused(target: Target, clients: Clients) -> None:
    conn = clients.plain()
    need_cap(target, capabilities(conn), "LOGINDISABLED")
    ir = base64.b64encode(f"\0{ALICE}\0{target.users[ALICE]}".encode()).decode()
    try:
        typ, _ = conn.xatom("AUTHENTICATE", "PLAIN", ir)
    except imaplib.IMAP4.error:  # BAD
        typ = "BAD"
    assert typ in ("NO", "BAD")
    with pytest.raises(imaplib.IMAP4.error):
        conn.select("INBOX")  # still not authenticated
    conn.logout()
