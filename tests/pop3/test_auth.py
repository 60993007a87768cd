"""Authentication: USER/PASS, APOP, AUTH (PLAIN, LOGIN, SCRAM-SHA-256), STLS, pop3s, limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import poplib
import secrets
from pathlib import Path

import pytest

from tests.harness import CourrielServer
from tests.pop3.client import RawClient
from tests.pop3.conftest import PASSWORD, client_tls, msg, new_user

REFUSED = b"-ERR [AUTH] plaintext authentication disallowed before TLS (use STLS)\r\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_passwords_refused_before_tls(strict_server: CourrielServer) -> None:
    user = new_user(strict_server)
    c = RawClient(strict_server.port("pop3"))
    assert c.cmd_multi("CAPA")[1] == (
        b"TOP\r\nUIDL\r\nSASL SCRAM-SHA-256\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nSTLS\r\n"
        b"IMPLEMENTATION courriel\r\n.\r\n"
    )
    assert c.cmd(f"USER {user}") == REFUSED
    assert c.cmd(f"PASS {PASSWORD}") == REFUSED
    assert c.cmd("AUTH PLAIN " + b64(f"\0{user}\0{PASSWORD}".encode())) == REFUSED
    assert c.cmd("AUTH LOGIN") == REFUSED
    assert c.cmd_multi("AUTH") == (b"+OK SASL mechanisms follow\r\n", b"SCRAM-SHA-256\r\n.\r\n")


def test_stls_then_user_pass(strict_server: CourrielServer) -> None:
    user = new_user(strict_server, [msg("tls")])
    c = RawClient(strict_server.port("pop3"))
    # RFC 2595 §4: what the client pipelined after STLS is discarded, not run under TLS
    c.send(b"STLS\r\nNOOP\r\n")
    assert c.line() == b"+OK begin TLS negotiation\r\n"
    c.starttls(client_tls(strict_server))
    first, caps = c.cmd_multi("CAPA")
    assert first == b"+OK capability list follows\r\n"
    assert b"USER\r\n" in caps and b"SASL SCRAM-SHA-256 PLAIN LOGIN\r\n" in caps and b"STLS" not in caps
    assert c.cmd("STLS") == b"-ERR TLS is already active\r\n"
    assert c.login(user, PASSWORD).startswith(f"+OK {user} has 1 messages".encode())
    assert c.cmd("QUIT") == b"+OK bye, 0 messages deleted\r\n"


def test_poplib_stls_and_pop3s(strict_server: CourrielServer) -> None:
    user = new_user(strict_server, [msg("a"), msg("b")])
    p = poplib.POP3("127.0.0.1", strict_server.port("pop3"))
    assert "STLS" in p.capa()
    p.stls(client_tls(strict_server))
    p.user(user)
    p.pass_(PASSWORD)
    assert p.stat() == (2, len(msg("a")) + len(msg("b")))
    p.quit()
    s = poplib.POP3_SSL("127.0.0.1", strict_server.port("pop3s"), context=client_tls(strict_server))
    caps = s.capa()
    assert "STLS" not in caps and "USER" in caps and caps["SASL"] == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
    s.user(user)
    s.pass_(PASSWORD)
    assert s.retr(2)[1] == msg("b").split(b"\r\n")[:-1]
    s.quit()
    c = RawClient(strict_server.port("pop3s"), tls=client_tls(strict_server))
    assert c.cmd("STLS") == b"-ERR STLS is not offered here\r\n"


def test_apop_with_a_secret_set_by_the_cli(strict_server: CourrielServer) -> None:
    user = new_user(strict_server, [msg("apop")])
    out = strict_server.cli("user", "apop", user, "--password-stdin", stdin="apop secret\n")
    assert out.stdout.strip() == f"set the APOP secret of {user}"
    p = poplib.POP3("127.0.0.1", strict_server.port("pop3"))  # APOP sends no password: allowed before TLS
    assert p.apop(user, "apop secret").startswith(f"+OK {user} has 1 messages".encode())
    assert p.retr(1)[1][-1] == b"Hello."
    p.quit()
    p = poplib.POP3("127.0.0.1", strict_server.port("pop3"))
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] authentication failed"):
        p.apop(user, PASSWORD)  # the password is not the APOP secret
    p.close()
    # a generated secret is printed once; --remove turns APOP off
    generated = strict_server.cli("user", "apop", user, stdin="").stdout
    secret = generated.split("APOP secret: ")[1].strip()
    p = poplib.POP3("127.0.0.1", strict_server.port("pop3"))
    assert p.apop(user, secret).startswith(b"+OK")
    p.quit()
    strict_server.cli("user", "apop", user, "--remove")
    p = poplib.POP3("127.0.0.1", strict_server.port("pop3"))
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.apop(user, secret)
    p.close()
    with pytest.raises(RuntimeError) as bad:
        strict_server.cli("user", "apop", "nobody@example.test", "--password-stdin", stdin="x\n")  # fmt: skip
    assert "no user nobody@example.test" in str(bad.value)


def test_auth_plain_and_login(server: CourrielServer) -> None:
    user = new_user(server)
    c = RawClient(server.port("pop3"))
    assert c.cmd_multi("AUTH") == (b"+OK SASL mechanisms follow\r\n", b"SCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n")
    assert c.cmd("AUTH KERBEROS_V4") == b"-ERR unsupported authentication mechanism KERBEROS_V4\r\n"
    assert c.cmd("AUTH PLAIN") == b"+ \r\n"
    assert c.cmd("*") == b"-ERR authentication cancelled\r\n"
    assert c.cmd("AUTH PLAIN") == b"+ \r\n"
    assert c.cmd("not base64!") == b"-ERR authentication failed: invalid base64\r\n"
    assert c.cmd("AUTH PLAIN " + b64(b"no separators")) == b"-ERR authentication failed: malformed PLAIN response\r\n"
    assert c.cmd("AUTH PLAIN " + b64(f"\0{user}\0{PASSWORD}".encode())) == f"+OK {user} has 0 messages (0 octets)\r\n".encode()
    assert c.cmd("QUIT") == b"+OK bye, 0 messages deleted\r\n"
    c = RawClient(server.port("pop3"))
    assert c.cmd("AUTH PLAIN") == b"+ \r\n"
    assert c.cmd(b64(f"{user}\0{user}\0{PASSWORD}".encode())).startswith(b"+OK ")
    c.close()
    c = RawClient(server.port("pop3"))
    assert c.cmd("AUTH LOGIN") == b"+ " + b64(b"Username:").encode() + b"\r\n"
    assert c.cmd(b64(user.encode())) == b"+ " + b64(b"Password:").encode() + b"\r\n"
    assert c.cmd(b64(PASSWORD.encode())).startswith(b"+OK ")
    c.close()


class Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677)."""

    def __init__(self, user: str, password: str) -> None:
        self.password = password
        self.nonce = b64(secrets.token_bytes(18))
        self.first_bare = f"n={user},r={self.nonce}"

    def first(self) -> str:
        return b64(("n,," + self.first_bare).encode())

    def final(self, server_first_b64: str) -> str:
        server_first = base64.b64decode(server_first_b64).decode()
        attrs = dict(item.split("=", 1) for item in server_first.split(","))
        assert attrs["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c={b64(b'n,,')},r={attrs['r']}"
        self.auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return b64(f"{without_proof},p={b64(proof)}".encode())

    def verify(self, server_final_b64: str) -> bool:
        expected = hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest()
        return base64.b64decode(server_final_b64) == b"v=" + base64.b64encode(expected)


def test_scram_sha_256_before_tls(strict_server: CourrielServer) -> None:
    user = new_user(strict_server, [msg("scram")])
    c = RawClient(strict_server.port("pop3"))
    scram = Scram(user, PASSWORD)
    challenge = c.cmd("AUTH SCRAM-SHA-256 " + scram.first())  # with an initial response (RFC 5034 §4)
    assert challenge.startswith(b"+ ")
    final = c.cmd(scram.final(challenge[2:].strip().decode()))
    # RFC 4422 §3.6: the server's final message comes as a challenge answered by an empty line
    assert final.startswith(b"+ ") and scram.verify(final[2:].strip().decode())
    assert c.cmd("") == f"+OK {user} has 1 messages ({len(msg('scram'))} octets)\r\n".encode()
    assert c.cmd("QUIT") == b"+OK bye, 0 messages deleted\r\n"
    # without an initial response: an empty challenge first
    c = RawClient(strict_server.port("pop3"))
    scram = Scram(user, "wrong password")
    assert c.cmd("AUTH SCRAM-SHA-256") == b"+ \r\n"
    challenge = c.cmd(scram.first())
    assert c.cmd(scram.final(challenge[2:].strip().decode())) == b"-ERR [AUTH] authentication failed\r\n"


def test_failed_logins_are_limited(tmp_path: Path) -> None:
    env = {"COURRIEL_LIMITS_MAX_AUTH_FAILURES": "3", "COURRIEL_POP3_MAX_AUTH_ATTEMPTS": "2"}
    srv = CourrielServer(tmp_path, users={}, only=("pop3",), plaintext_auth=True, env=env)
    with srv:
        user = new_user(srv)
        c = RawClient(srv.port("pop3"))
        assert c.login(user, "wrong") == b"-ERR [AUTH] authentication failed\r\n"
        assert c.login("nobody@example.test", "wrong") == b"-ERR [AUTH] authentication failed\r\n"
        assert c.closed()  # pop3.max_auth_attempts per connection
        c = RawClient(srv.port("pop3"))
        assert c.login(user, "wrong") == b"-ERR [AUTH] authentication failed\r\n"
        # limits.max_auth_failures from this address: refused, even with the right password
        assert c.login(user, PASSWORD) == b"-ERR [SYS/TEMP] too many failed logins from your address, try later\r\n"
        assert c.closed()
        c = RawClient(srv.port("pop3"))
        assert c.cmd(f"APOP {user} {'0' * 32}").startswith(b"-ERR [SYS/TEMP] too many failed logins")
        log = "\n".join(srv.stderr)
    assert PASSWORD not in log and "wrong" not in log.replace("'wrong'", "")
    assert "authentication failed for" in log
