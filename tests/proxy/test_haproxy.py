"""Listeners with ``proxy_protocol = true`` behind a real HAProxy (send-proxy = v1,
send-proxy-v2 = v2): courriel sees the client's address, not the proxy's, in Received
headers, connection-per-address limits and authentication limits; a header from anyone
but server.trusted_proxies is refused."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import CourrielServer
from tests.proxy.haproxy import Frontend, HAProxy

PROXY_SOURCE = "127.0.0.2"  # haproxy's address towards courriel (the only trusted proxy)


def _connect(host: str, port: int, timeout: float | None, source: str) -> socket.socket:
    return socket.create_connection((host, port), timeout, source_address=(source, 0))


class IMAPFrom(imaplib.IMAP4):
    """imaplib from a chosen loopback source address."""

    def __init__(self, port: int, source: str) -> None:
        self.source = source
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return _connect(str(self.host), int(self.port), timeout, self.source)


class IMAPSFrom(imaplib.IMAP4_SSL):
    def __init__(self, port: int, source: str, cafile: Path) -> None:
        self.source = source
        super().__init__("127.0.0.1", port, ssl_context=_client_tls(cafile), timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        sock = _connect(self.host, self.port, timeout, self.source)
        wrapped: socket.socket = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
        return wrapped


class POP3From(poplib.POP3):
    def __init__(self, port: int, source: str) -> None:
        self.source = source
        super().__init__("127.0.0.1", port, timeout=30)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return _connect(str(self.host), int(self.port), timeout, self.source)


def _client_tls(cafile: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = False
    return ctx


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CourrielServer, HAProxy]]:
    root = tmp_path_factory.mktemp("proxy")
    env = {
        "COURRIEL_SERVER_TRUSTED_PROXIES": PROXY_SOURCE,
        "COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP": "3",
        "COURRIEL_LIMITS_MAX_AUTH_FAILURES": "1",
    }
    for name in ("smtp", "submission", "imap", "imaps", "pop3"):
        env[f"COURRIEL_{name.upper()}_PROXY_PROTOCOL"] = "true"
    srv = CourrielServer(root, env=env, plaintext_auth=True, only=("smtp", "submission", "imap", "imaps", "pop3"))
    srv.start()
    hap = HAProxy(root, [
        Frontend("smtp_v1", [("127.0.0.1", srv.port("smtp"))], "v1"),
        Frontend("smtp_v2", [("127.0.0.1", srv.port("smtp"))], "v2"),
        Frontend("imap_v2", [("127.0.0.1", srv.port("imap"))], "v2", check=True, expect="* OK"),
        Frontend("imap_v1", [("127.0.0.1", srv.port("imap"))], "v1"),
        Frontend("imaps_v2", [("127.0.0.1", srv.port("imaps"))], "v2"),
        Frontend("pop3_v1", [("127.0.0.1", srv.port("pop3"))], "v1"),
        Frontend("submission_v1", [("127.0.0.1", srv.port("submission"))], "v1"),
        Frontend("imap_plain", [("127.0.0.1", srv.port("imap"))], ""),
    ], source=PROXY_SOURCE)  # fmt: skip
    try:
        hap.start()
        yield srv, hap
    finally:
        hap.stop()
        srv.stop()


def _send(port: int, source: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as smtp:
        smtp.ehlo("client.example")
        msg = f"From: x@remote.example\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\r\nhi\r\n"
        smtp.sendmail("x@remote.example", ["alice@example.test"], msg)


def _headers(hap: HAProxy, subject: str) -> str:
    imap = IMAPFrom(hap.port("imap_v2"), "127.0.0.7")
    try:
        imap.login("alice@example.test", "alice-pw")
        imap.select("INBOX")
        typ, data = imap.search(None, "SUBJECT", f'"{subject}"')
        assert typ == "OK" and data[0], data
        typ, fetched = imap.fetch(data[0].split()[-1], "(BODY.PEEK[HEADER])")
        assert typ == "OK"
        item = fetched[0]
        assert isinstance(item, tuple)
        return item[1].decode()
    finally:
        imap.logout()


def test_received_header_names_the_client_v1_and_v2(stack: tuple[CourrielServer, HAProxy]) -> None:
    _, hap = stack
    _send(hap.port("smtp_v1"), "127.0.0.5", "via proxy v1")
    _send(hap.port("smtp_v2"), "127.0.0.6", "via proxy v2")
    v1 = _headers(hap, "via proxy v1")
    v2 = _headers(hap, "via proxy v2")
    assert "from client.example ([127.0.0.5])" in v1, v1
    assert "from client.example ([127.0.0.6])" in v2, v2
    assert PROXY_SOURCE not in v1 + v2


def test_connection_limit_counts_the_client_address(stack: tuple[CourrielServer, HAProxy]) -> None:
    srv, hap = stack
    held: list[IMAPFrom] = []
    try:
        for _ in range(3):  # limits.max_connections_per_ip
            held.append(IMAPFrom(hap.port("imap_v2"), "127.0.0.8"))
        # the fourth from the same client: refused (through v1 as well as v2)
        for frontend in ("imap_v2", "imap_v1"):
            with pytest.raises(imaplib.IMAP4.error, match="too many connections from your address"):
                IMAPFrom(hap.port(frontend), "127.0.0.8")
        # another client through the same proxy is welcome
        other = IMAPFrom(hap.port("imap_v1"), "127.0.0.9")
        other.login("bob@example.test", "bob-pw")
        other.logout()
    finally:
        for imap in held:
            imap.logout()
    assert any("refused 127.0.0.8: too many connections" in line for line in srv.stderr)


def test_authentication_limit_counts_the_client_address(stack: tuple[CourrielServer, HAProxy]) -> None:
    _, hap = stack
    bad = POP3From(hap.port("pop3_v1"), "127.0.0.10")
    bad.user("bob@example.test")
    with pytest.raises(poplib.error_proto, match="AUTH"):
        bad.pass_("wrong")
    bad.close()
    # limits.max_auth_failures = 1: that client is locked out, even with the right password
    again = POP3From(hap.port("pop3_v1"), "127.0.0.10")
    again.user("bob@example.test")
    with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
        again.pass_("bob-pw")
    again.close()
    # ...but another client behind the same proxy logs in
    good = POP3From(hap.port("pop3_v1"), "127.0.0.11")
    good.user("bob@example.test")
    good.pass_("bob-pw")
    assert good.stat()[0] >= 0
    good.quit()


def test_implicit_tls_after_the_header(stack: tuple[CourrielServer, HAProxy]) -> None:
    srv, hap = stack
    imap = IMAPSFrom(hap.port("imaps_v2"), "127.0.0.12", srv.cert)
    try:
        typ, _ = imap.login("alice@example.test", "alice-pw")
        assert typ == "OK"
        assert imap.sock.version() is not None  # type: ignore[attr-defined]
    finally:
        imap.logout()
    assert any("alice@example.test logged in from 127.0.0.12" in line for line in srv.stderr)


def test_submission_starttls_after_the_header(stack: tuple[CourrielServer, HAProxy]) -> None:
    srv, hap = stack
    with smtplib.SMTP("127.0.0.1", hap.port("submission_v1"), source_address=("127.0.0.13", 0), timeout=30) as smtp:
        smtp.ehlo("client.example")
        smtp.starttls(context=_client_tls(srv.cert))
        smtp.ehlo("client.example")
        smtp.login("alice@example.test", "alice-pw")
        smtp.sendmail("alice@example.test", ["bob@example.test"], b"Subject: starttls\r\n\r\nhi\r\n")
    deadline = time.monotonic() + 10
    while not any("submission" in line and "127.0.0.13" in line for line in srv.stderr):
        assert time.monotonic() < deadline, srv.stderr[-5:]
        time.sleep(0.05)


def _closed_without_a_word(sock: socket.socket) -> bool:
    sock.settimeout(10)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_header_from_an_untrusted_address_is_refused(stack: tuple[CourrielServer, HAProxy]) -> None:
    srv, _ = stack
    with socket.create_connection(("127.0.0.1", srv.port("smtp")), 10, source_address=("127.0.0.1", 0)) as sock:
        sock.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 40000 25\r\n")
        assert _closed_without_a_word(sock)
    with socket.create_connection(("127.0.0.1", srv.port("imap")), 10, source_address=("127.0.0.3", 0)) as sock:
        sock.sendall(b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes(12))
        assert _closed_without_a_word(sock)
    deadline = time.monotonic() + 10
    want = ("smtp: refused 127.0.0.1: not in server.trusted_proxies", "imap: refused 127.0.0.3: not in server.trusted_proxies")
    while not all(any(w in line for line in srv.stderr) for w in want) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(any(w in line for line in srv.stderr) for w in want), srv.stderr[-10:]


def test_trusted_proxy_without_a_valid_header_is_refused(stack: tuple[CourrielServer, HAProxy]) -> None:
    srv, hap = stack
    # haproxy relaying without send-proxy: the client's own bytes are not a header
    with socket.create_connection(("127.0.0.1", hap.port("imap_plain")), 10) as sock:
        sock.sendall(b"A1 CAPABILITY\r\n")
        assert _closed_without_a_word(sock)
    with socket.create_connection(("127.0.0.1", srv.port("pop3")), 10, source_address=(PROXY_SOURCE, 0)) as sock:
        sock.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n")  # heading zero in a port
        assert _closed_without_a_word(sock)
    deadline = time.monotonic() + 10
    while sum("bad PROXY header" in line for line in srv.stderr) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sum(f"refused {PROXY_SOURCE}: bad PROXY header" in line for line in srv.stderr) >= 2


def _op_state(hap: HAProxy, backend: str, server: str) -> str:
    """srv_op_state from ``show servers state`` (2: running, 0: stopped)."""
    for line in hap.command(f"show servers state {backend}").splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[3] == server:
            return fields[5]
    return ""


def test_health_checks_with_local_command_are_accepted(stack: tuple[CourrielServer, HAProxy]) -> None:
    _, hap = stack
    # imap_v2 checks every 500 ms: a v2 LOCAL header, then the IMAP greeting must come
    deadline = time.monotonic() + 10
    while _op_state(hap, "imap_v2_nodes", "node0") != "2":
        assert time.monotonic() < deadline, hap.command("show servers state imap_v2_nodes")
        time.sleep(0.1)
