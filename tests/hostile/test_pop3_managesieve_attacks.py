"""POP3 and ManageSieve under attack: 10 MB lines, literals announced at 2^63 octets and cut
short, invalid UTF-8 and NUL, pipelining floods, while other clients are served.

Already covered elsewhere: POP3 STLS and ManageSieve STARTTLS injection, a line beyond the
buffer, too many bad commands (tests/pop3/test_transcripts.py, tests/pop3/test_auth.py,
tests/managesieve/test_session.py).
"""

from __future__ import annotations

import base64
import threading

import pytest

from tests.harness import CourrielServer
from tests.hostile.conftest import Guard, Raw, serve_others

MB = 1024 * 1024


@pytest.fixture(scope="module")
def srv(shared: CourrielServer) -> CourrielServer:
    return shared


@pytest.fixture(scope="module")
def guard(srv: CourrielServer) -> Guard:
    return Guard(srv)


def pop3(srv: CourrielServer, login: bool) -> Raw:
    c = Raw(srv.port("pop3"))
    assert c.line().startswith(b"+OK ")
    if login:
        c.send(b"USER alice@example.test\r\nPASS alice-pw\r\n")
        assert c.line() == b"+OK send PASS\r\n"
        assert c.line().startswith(b"+OK ")
    return c


def sieve(srv: CourrielServer, login: bool) -> Raw:
    c = Raw(srv.port("managesieve"))
    while not c.line().startswith(b"OK"):
        pass
    if login:
        token = base64.b64encode(b"\0alice@example.test\0alice-pw")
        c.send(b'AUTHENTICATE "PLAIN" "' + token + b'"\r\n')
        assert c.line() == b'OK "authenticated"\r\n'
    return c


def sieve_status(c: Raw) -> bytes:
    """The next OK/NO/BYE line (skipping data lines)."""
    while True:
        line = c.line()
        if not line or line.startswith((b"OK", b"NO", b"BYE")):
            return line


@pytest.mark.parametrize("protocol", ["pop3", "managesieve"])
def test_ten_megabyte_line(srv: CourrielServer, guard: Guard, protocol: str) -> None:
    """Framing is lost past the buffer: one clear error, then the connection closes (the
    rest of the 10 MB is never read into memory)."""
    with guard.attack():
        c = pop3(srv, False) if protocol == "pop3" else sieve(srv, False)
        c.sock.settimeout(10)
        try:
            for _ in range(10):
                c.send(b"x" * MB)
            c.send(b"\r\n")
        except OSError:
            pass  # closed before we could send it all
        expected = b"-ERR line too long, closing\r\n" if protocol == "pop3" else b'BYE "line too long"\r\n'
        assert c.line() == expected
        assert c.closed()
        guard.check_memory()
        c.close()


def test_pop3_invalid_utf8_nul_and_flood(srv: CourrielServer, guard: Guard) -> None:
    with guard.attack():
        c = pop3(srv, False)
        for line in (b"USER \xff\xfe\r\n", b"\x00\x00\r\n", b"CA\xffPA\r\n", b"AUTH PLAIN \xff\xff\r\n"):
            got = c.cmd(line)
            assert got.startswith(b"-ERR "), (line, got)
        c.close()
        # 20,000 pipelined commands in a session, another client served meanwhile.
        c = pop3(srv, True)
        n = 20_000
        replies: list[bytes] = []

        def read() -> None:
            while len(replies) < n:
                line = c.line()
                if not line:
                    return
                replies.append(line)

        reader = threading.Thread(target=read)
        reader.start()
        sender = threading.Thread(target=c.send, args=(b"NOOP\r\nSTAT\r\n" * (n // 2),))
        sender.start()
        serve_others(srv)
        sender.join(120)
        reader.join(120)
        assert len(replies) == n and all(r.startswith(b"+OK") for r in replies)
        assert c.cmd(b"QUIT\r\n").startswith(b"+OK ")  # nothing marked: nothing removed
        c.close()


@pytest.mark.parametrize("size", [b"9223372036854775808", b"18446744073709551616"], ids=["2^63", "2^64"])
def test_managesieve_literal_at_2_63(srv: CourrielServer, guard: Guard, size: bytes) -> None:
    """More than 10 digits are no literal size for ManageSieve: a syntax error, and the
    session goes on (an 11-digit one is refused with BYE in tests/managesieve)."""
    with guard.attack():
        for login in (False, True):
            c = sieve(srv, login)
            command = b'PUTSCRIPT "bomb" {' if login else b'AUTHENTICATE "PLAIN" {'
            c.send(command + size + b"+}\r\n")
            got = sieve_status(c)
            assert got.startswith(b'NO "syntax error') and got.endswith(b'literal"\r\n'), got
            c.send(b"NOOP\r\n")
            assert sieve_status(c).startswith(b"OK")
            c.close()
        c = sieve(srv, True)
        c.send(b'PUTSCRIPT "bomb" {9999999999+}\r\n')
        assert sieve_status(c) == b'BYE (QUOTA/MAXSIZE) "literal too large"\r\n'
        assert c.closed()
        c.close()


def test_managesieve_unterminated_literal_and_invalid_utf8(srv: CourrielServer, guard: Guard) -> None:
    with guard.attack():
        c = sieve(srv, True)
        c.send(b'PUTSCRIPT "cut" {1000+}\r\nrequire "fileinto";')
        c.close()  # gone in the middle of the literal
        c = sieve(srv, True)
        for command in (
            b'PUTSCRIPT "\xff\xfe" {5+}\r\nkeep;\r\n',
            b'PUTSCRIPT "x" {6+}\r\n\xff\xfekeep\r\n',
            b'CHECKSCRIPT {12+}\r\nif header :is "\xc3\x28" ""\r\n',
            b'GETSCRIPT "\x00"\r\n',
        ):
            c.send(command)
            got = sieve_status(c)
            assert got.startswith(b"NO"), (command, got)
        c.send(b"LISTSCRIPTS\r\n")
        listing = b""
        while True:
            line = c.line()
            listing += line
            if line.startswith((b"OK", b"NO", b"BYE")) or not line:
                break
        assert listing == b'OK "Listscripts completed."\r\n' or listing.startswith(b"OK"), listing
        assert b'"cut"' not in listing and b'"x"' not in listing
        c.close()
