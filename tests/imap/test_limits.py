"""Limits and TLS policy on a server of its own (no plaintext auth, few failures allowed):
LOGINDISABLED, STARTTLS injection, long lines, oversized literals, failed-auth lockout,
connections per user."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest

from tests.harness import CourrielServer
from tests.imap.conftest import PASSWORD, Raw, plain

USERS = {"alice@example.test": PASSWORD, "mallory@example.test": PASSWORD}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    env = {
        "COURRIEL_LIMITS_MAX_AUTH_FAILURES": "3",
        "COURRIEL_IMAP_MAX_LINE_LENGTH": "4096",
        "COURRIEL_IMAP_MAX_CONNECTIONS_PER_USER": "2",
        "COURRIEL_LIMITS_MAX_MESSAGE_SIZE": "100000",
    }
    with CourrielServer(tmp_path_factory.mktemp("imap-strict"), users=USERS, only=("imap", "imaps"), env=env) as srv:
        yield srv


def _tls(raw: Raw, cert: object) -> None:
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    raw.sock = ctx.wrap_socket(raw.sock)
    raw.file = raw.sock.makefile("rb")


def test_logindisabled_before_tls(strict: CourrielServer) -> None:
    raw = Raw(strict.port("imap"))
    assert b"LOGINDISABLED" in raw.greeting and b"AUTH=" not in raw.greeting
    assert raw.cmd("a LOGIN alice@example.test " + PASSWORD) == [
        b"a NO [PRIVACYREQUIRED] authentication requires TLS (use STARTTLS)\r\n"
    ]
    assert raw.cmd(b"b AUTHENTICATE PLAIN " + plain("alice@example.test"))[-1].startswith(b"b NO [PRIVACYREQUIRED]")
    raw.close()


def test_starttls_discards_injected_commands(strict: CourrielServer) -> None:
    raw = Raw(strict.port("imap"))
    raw.send(b"a STARTTLS\r\nb CAPABILITY\r\n")  # RFC 9051 §6.2.1: b must not be run
    assert raw.line() == b"a OK begin TLS negotiation now\r\n"
    _tls(raw, strict.cert)
    out = raw.ok("c CAPABILITY")
    assert b"AUTH=PLAIN" in out[0] and b"LOGINDISABLED" not in out[0] and b"STARTTLS" not in out[0]
    assert len(out) == 2  # nothing for "b"
    raw.login("alice@example.test")
    raw.close()


def test_line_too_long_is_bad_and_session_survives(strict: CourrielServer) -> None:
    raw = Raw(strict.port("imaps"), tls_cert=strict.cert)
    raw.send(b"a NOOP " + b"x" * 10000 + b"\r\n")
    assert raw.line() == b"a BAD [TOOBIG] line too long\r\n"
    assert raw.ok("b NOOP") == [b"b OK NOOP completed\r\n"]
    raw.close()


def test_literal_limits(strict: CourrielServer) -> None:
    raw = Raw(strict.port("imaps"), tls_cert=strict.cert)
    # Before authentication literals are small.
    raw.send(b"a LOGIN {9000}\r\n")
    assert raw.line().startswith(b"a NO [TOOBIG] literal too large")
    raw.login("alice@example.test")
    # A synchronising literal over the limit is refused instead of "+".
    raw.send(b"b APPEND INBOX {200000}\r\n")
    assert raw.line().startswith(b"b NO [TOOBIG] ")
    # A non-synchronising one is read, thrown away, and refused.
    raw.send(b"c APPEND INBOX {200000+}\r\n" + b"x" * 200000 + b"\r\n")
    assert raw.line().startswith(b"c NO [TOOBIG] ")
    # Outside APPEND, literals are bounded by the line length.
    raw.send(b"d SELECT {5000+}\r\n" + b"y" * 5000 + b"\r\n")
    assert raw.line().startswith(b"d NO [TOOBIG] ")
    assert raw.ok("e NOOP") == [b"e OK NOOP completed\r\n"]
    raw.close()


def test_connections_per_user(strict: CourrielServer) -> None:
    clients = [Raw(strict.port("imaps"), tls_cert=strict.cert) for _ in range(3)]
    clients[0].login("alice@example.test")
    clients[1].login("alice@example.test")
    assert clients[2].cmd("a LOGIN alice@example.test " + PASSWORD) == [
        b"a NO [LIMIT] too many connections for this user\r\n"
    ]
    clients[0].ok("z LOGOUT")
    clients[0].close()
    clients[2].login("alice@example.test")
    for c in clients[1:]:
        c.close()


def test_failed_logins_lock_the_address_out(strict: CourrielServer) -> None:
    raw = Raw(strict.port("imaps"), tls_cert=strict.cert)
    for i in range(3):
        out = raw.cmd(f"a{i} LOGIN mallory@example.test wrong")
        assert out == [f"a{i} NO [AUTHENTICATIONFAILED] invalid credentials\r\n".encode()]
    # Locked out now: even the right password is refused without being checked.
    out = raw.cmd("b LOGIN mallory@example.test " + PASSWORD)
    assert out == [b"b NO [UNAVAILABLE] too many failed authentications; try again later\r\n"]
    raw.close()
