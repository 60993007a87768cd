"""ManageSieve over a raw socket: byte-exact transcripts of each command and error path."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import pytest

from tests.harness import CourrielServer

USERS = {"alice@example.test": "alice-pw", "bob@example.test": "bob-pw"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    env = {
        "COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH": "true",
        "COURRIEL_MANAGESIEVE_MAX_SCRIPTS": "3",
        "COURRIEL_MANAGESIEVE_MAX_SCRIPT_SIZE": "2000",
        "COURRIEL_MANAGESIEVE_MAX_BAD_COMMANDS": "3",
    }
    srv = CourrielServer(tmp_path_factory.mktemp("ms"), users=dict(USERS), only=("managesieve",), env=env)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


OPEN: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


class Raw:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        OPEN.append(self.sock)
        self.buf = b""
        self.greeting = self.until_status()

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        out, _, self.buf = self.buf.partition(b"\r\n")
        return out + b"\r\n"

    def until_status(self) -> bytes:
        out = b""
        while True:
            line = self.line()
            out += line
            if line.startswith((b"OK", b"NO", b"BYE")):
                return out
            if line.rstrip().endswith(b"}"):  # a literal: its bytes, then more lines
                size = int(line.rsplit(b"{", 1)[1].rstrip(b"}\r\n"))
                while len(self.buf) < size:
                    self.buf += self.sock.recv(65536)
                out += self.buf[:size]
                self.buf = self.buf[size:]

    def cmd(self, data: bytes) -> bytes:
        self.sock.sendall(data)
        return self.until_status()

    def login(self, user: str = "alice@example.test", password: str = "alice-pw") -> None:
        token = base64.b64encode(f"\0{user}\0{password}".encode())
        assert self.cmd(b'AUTHENTICATE "PLAIN" "' + token + b'"\r\n') == b'OK "authenticated"\r\n'


def test_greeting_lists_capabilities(server: CourrielServer) -> None:
    r = Raw(server.port("managesieve"))
    assert r.greeting.startswith(b'"IMPLEMENTATION" "courriel"\r\n"SIEVE" "fileinto reject ereject envelope')
    assert b'"SASL" "SCRAM-SHA-256 PLAIN LOGIN"\r\n"STARTTLS"\r\n"VERSION" "1.0"\r\nOK' in r.greeting
    assert r.cmd(b"CAPABILITY\r\n").endswith(b'OK "capability completed"\r\n')


def test_script_lifecycle(server: CourrielServer) -> None:
    r = Raw(server.port("managesieve"))
    assert r.cmd(b"LISTSCRIPTS\r\n") == b'NO "LISTSCRIPTS not allowed now"\r\n'
    r.login()
    assert r.cmd(b'PUTSCRIPT "one" {5+}\r\nkeep;\r\n') == b'OK "putscript completed"\r\n'
    assert r.cmd(b'PUTSCRIPT "two" "discard;"\r\n') == b'OK "putscript completed"\r\n'
    assert r.cmd(b'SETACTIVE "one"\r\n') == b'OK "setactive completed"\r\n'
    assert r.cmd(b"LISTSCRIPTS\r\n") == b'"one" ACTIVE\r\n"two"\r\nOK "listscripts completed"\r\n'
    assert r.cmd(b'GETSCRIPT "one"\r\n') == b'{5}\r\nkeep;\r\nOK "getscript completed"\r\n'
    assert r.cmd(b'GETSCRIPT "none"\r\n') == b'NO (NONEXISTENT) "no such script"\r\n'
    assert r.cmd(b'DELETESCRIPT "one"\r\n') == b'NO (ACTIVE) "the active script cannot be deleted"\r\n'
    assert r.cmd(b'RENAMESCRIPT "two" "one"\r\n') == b'NO (ALREADYEXISTS) "a script with that name exists"\r\n'
    assert r.cmd(b'RENAMESCRIPT "one" "uno"\r\n') == b'OK "renamescript completed"\r\n'
    assert r.cmd(b'SETACTIVE ""\r\n') == b'OK "setactive completed"\r\n'
    assert r.cmd(b'DELETESCRIPT "uno"\r\n') == b'OK "deletescript completed"\r\n'
    assert r.cmd(b"LISTSCRIPTS\r\n") == b'"two"\r\nOK "listscripts completed"\r\n'
    assert r.cmd(b'NOOP "t1"\r\n') == b'OK (TAG "t1") "done"\r\n'
    # Another user sees none of alice's scripts.
    b = Raw(server.port("managesieve"))
    b.login("bob@example.test", "bob-pw")
    assert b.cmd(b"LISTSCRIPTS\r\n") == b'OK "listscripts completed"\r\n'
    assert r.cmd(b"LOGOUT\r\n") == b'OK "logout completed"\r\n'


def test_checkscript_and_invalid_putscript(server: CourrielServer) -> None:
    r = Raw(server.port("managesieve"))
    r.login("bob@example.test", "bob-pw")
    assert r.cmd(b'CHECKSCRIPT "require \\"fileinto\\"; fileinto \\"x\\";"\r\n') == b'OK "script is valid"\r\n'
    assert r.cmd(b'CHECKSCRIPT {15+}\r\nfileinto "x";\r\n\r\n') == b'NO "line 1: fileinto needs require \\"fileinto\\""\r\n'
    assert r.cmd(b'PUTSCRIPT "bad" {4+}\r\nkeep\r\n') == b'NO "line 1: unexpected end of script"\r\n'
    assert r.cmd(b'GETSCRIPT "bad"\r\n').startswith(b"NO (NONEXISTENT)")
    assert r.cmd(b'PUTSCRIPT "bad\\"name\x01" "keep;"\r\n') == b'NO "invalid script name"\r\n'


def test_quotas_havespace_maxscripts_maxsize(server: CourrielServer) -> None:
    r = Raw(server.port("managesieve"))
    r.login()
    assert r.cmd(b'HAVESPACE "x" 100\r\n') == b'OK "putscript would succeed"\r\n'
    assert r.cmd(b'HAVESPACE "x" 5000\r\n') == b'NO (QUOTA/MAXSIZE) "script too large"\r\n'
    big = b"#" + b"x" * 2100 + b"\r\nkeep;"
    assert r.cmd(b'PUTSCRIPT "big" {%d+}\r\n' % len(big) + big + b"\r\n") == b'NO (QUOTA/MAXSIZE) "script too large"\r\n'
    for name in (b"q1", b"q2", b"q3"):
        r.cmd(b'PUTSCRIPT "' + name + b'" "keep;"\r\n')
    assert r.cmd(b'HAVESPACE "q4" 10\r\n') == b'NO (QUOTA/MAXSCRIPTS) "too many scripts"\r\n'
    assert r.cmd(b'PUTSCRIPT "q4" "keep;"\r\n') == b'NO (QUOTA/MAXSCRIPTS) "too many scripts"\r\n'
    assert r.cmd(b'PUTSCRIPT "q1" "discard;"\r\n') == b'OK "putscript completed"\r\n'  # replacing is fine


def test_authentication_failures_and_cancel(server: CourrielServer) -> None:
    r = Raw(server.port("managesieve"))
    bad = base64.b64encode(b"\0alice@example.test\0wrong")
    assert r.cmd(b'AUTHENTICATE "PLAIN" "' + bad + b'"\r\n') == b'NO "authentication failed"\r\n'
    r.sock.sendall(b'AUTHENTICATE "PLAIN"\r\n')
    assert r.line() == b'""\r\n'  # an empty challenge
    assert r.cmd(b'"*"\r\n') == b'NO "authentication cancelled"\r\n'
    assert r.cmd(b'AUTHENTICATE "NOPE"\r\n') == b'NO "unsupported mechanism NOPE"\r\n'
    assert r.cmd(b'AUTHENTICATE "PLAIN" "!!"\r\n') == b'NO "authentication failed: invalid base64"\r\n'
    r.login()


def test_scram_sha_256(server: CourrielServer) -> None:
    import hashlib
    import hmac
    import os

    r = Raw(server.port("managesieve"))
    nonce = base64.b64encode(os.urandom(12)).decode()
    first_bare = f"n=alice@example.test,r={nonce}"
    r.sock.sendall(b'AUTHENTICATE "SCRAM-SHA-256" "' + base64.b64encode(("n,," + first_bare).encode()) + b'"\r\n')
    server_first = base64.b64decode(r.line().strip().strip(b'"')).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", b"alice-pw", base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    final_bare = f"c=biws,r={attrs['r']}"
    auth_message = f"{first_bare},{server_first},{final_bare}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
    final = base64.b64encode(f"{final_bare},p={proof}".encode())
    reply = r.cmd(b'"' + final + b'"\r\n')
    assert reply.startswith(b'OK (SASL "') and reply.endswith(b'") "authenticated"\r\n')
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    expected = base64.b64encode(hmac.digest(server_key, auth_message, "sha256"))
    assert base64.b64decode(reply.split(b'"')[1]) == b"v=" + expected


def test_bad_commands_close_and_long_literal_refused(server: CourrielServer) -> None:
    r = Raw(server.port("managesieve"))
    assert r.cmd(b"FOO\r\n") == b'NO "unknown command"\r\n'
    assert r.cmd(b"PUTSCRIPT x\r\n") == b'NO "syntax error: expected a string or a number"\r\n'
    assert r.cmd(b"BAR\r\n") == b'BYE "unknown command; too many bad commands"\r\n'
    r = Raw(server.port("managesieve"))
    r.login()
    assert r.cmd(b'PUTSCRIPT "x" {99999999+}\r\n') == b'BYE (QUOTA/MAXSIZE) "literal too large"\r\n'
    r = Raw(server.port("managesieve"))
    assert r.cmd(b"X" * 9000 + b"\r\n") == b'BYE "line too long"\r\n'


def test_plaintext_needs_tls_and_starttls_resends_capabilities(tmp_path_factory: pytest.TempPathFactory) -> None:
    import ssl

    with CourrielServer(tmp_path_factory.mktemp("ms-tls"), users=dict(USERS), only=("managesieve",)) as srv:
        r = Raw(srv.port("managesieve"))
        assert b'"SASL" "SCRAM-SHA-256"\r\n"STARTTLS"\r\n' in r.greeting
        token = base64.b64encode(b"\0alice@example.test\0alice-pw")
        assert r.cmd(b'AUTHENTICATE "PLAIN" "' + token + b'"\r\n') == (
            b'NO (ENCRYPT-NEEDED) "plaintext authentication needs TLS"\r\n'
        )
        # Pipelined after STARTTLS: discarded, never executed inside TLS (RFC 5804 §2.2).
        assert r.cmd(b"STARTTLS\r\nLOGOUT\r\n") == b'OK "begin TLS negotiation"\r\n'
        ctx = ssl.create_default_context(cafile=str(srv.cert))
        ctx.check_hostname = False
        r.sock = ctx.wrap_socket(r.sock)
        OPEN.append(r.sock)
        r.buf = b""
        caps = r.until_status()
        assert b'"SASL" "SCRAM-SHA-256 PLAIN LOGIN"\r\n' in caps and b'"STARTTLS"' not in caps
        assert caps.endswith(b'OK "TLS active"\r\n')
        r.login()
        assert r.cmd(b"STARTTLS\r\n") == b'NO "STARTTLS not allowed now"\r\n'
        assert r.cmd(b"LOGOUT\r\n") == b'OK "logout completed"\r\n'


def test_reserved_vacation_script_name(server: CourrielServer) -> None:
    """The name jmap-vacation is the JMAP VacationResponse's system script: no write, rename, delete
    or activation over ManageSieve, whether it exists or not (courriel.sieve.delivery)."""
    r = Raw(server.port("managesieve"))
    r.login("bob@example.test", "bob-pw")
    no = b'NO "the name jmap-vacation is reserved for the vacation response: change it over JMAP"\r\n'
    assert r.cmd(b'PUTSCRIPT "jmap-vacation" "keep;"\r\n') == no
    assert r.cmd(b'HAVESPACE "jmap-vacation" 10\r\n') == no
    assert r.cmd(b'SETACTIVE "jmap-vacation"\r\n') == no
    assert r.cmd(b'DELETESCRIPT "jmap-vacation"\r\n') == no
    assert r.cmd(b'RENAMESCRIPT "jmap-vacation" "mine"\r\n') == no
    assert r.cmd(b'PUTSCRIPT "mine" "keep;"\r\n') == b'OK "putscript completed"\r\n'
    assert r.cmd(b'RENAMESCRIPT "mine" "jmap-vacation"\r\n') == no
    assert r.cmd(b'GETSCRIPT "jmap-vacation"\r\n') == b'NO (NONEXISTENT) "no such script"\r\n'
    assert r.cmd(b'DELETESCRIPT "mine"\r\n') == b'OK "deletescript completed"\r\n'
    assert r.cmd(b"LISTSCRIPTS\r\n") == b'OK "listscripts completed"\r\n'
