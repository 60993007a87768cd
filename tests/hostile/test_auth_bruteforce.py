"""Password guessing: from one address (slowed, then locked out on every protocol at once),
from many addresses (each locked out on its own; the real user elsewhere is not), and a
parallel burst from one address. The attackers connect from 127.0.0.2 and up; the
well-behaved client from 127.0.0.1 is served throughout. Passwords never reach the logs.

Already covered elsewhere: one protocol at a time in tests/smtp/test_auth.py::test_brute_force,
tests/imap/test_limits.py, tests/pop3/test_auth.py::test_failed_logins_are_limited.
"""

from __future__ import annotations

import base64
import threading

import pytest

from tests.harness import CourrielServer
from tests.hostile.conftest import (
    ARGON2_KB,
    MAX_AUTH_FAILURES,
    RSS_GROWTH_KB,
    Guard,
    Raw,
    serve_others,
)

MAX_FAILURES = MAX_AUTH_FAILURES


@pytest.fixture(scope="module")
def srv(shared: CourrielServer) -> CourrielServer:
    return shared


@pytest.fixture(scope="module")
def guard(srv: CourrielServer) -> Guard:
    return Guard(srv, growth_kb=RSS_GROWTH_KB + ARGON2_KB)


def plain(user: str, password: str) -> bytes:
    return base64.b64encode(f"\0{user}\0{password}".encode())


def imap_login(srv: CourrielServer, source: str, password: str) -> bytes:
    c = Raw(srv.port("imap"), source=source)
    try:
        assert c.line().startswith(b"* OK ")
        c.send(b"a LOGIN alice@example.test " + password.encode() + b"\r\n")
        return c.until_tagged(b"a").rsplit(b"\r\n", 2)[-2]
    finally:
        c.close()


def test_one_address_is_locked_out_everywhere(srv: CourrielServer, guard: Guard) -> None:
    src = "127.0.0.2"
    with guard.attack():
        c = Raw(srv.port("submission"), source=src)
        assert c.smtp_reply().startswith(b"220 ")
        c.cmd(b"EHLO attacker.test\r\n")
        for i in range(MAX_FAILURES):
            reply = c.cmd(b"AUTH PLAIN " + plain("alice@example.test", f"wrong-guess-{i}") + b"\r\n")
            assert reply == b"535 5.7.8 Authentication credentials invalid\r\n"
        locked = b"454 4.7.0 Too many authentication failures from your address, try again later\r\n"
        assert c.cmd(b"AUTH PLAIN " + plain("alice@example.test", "alice-pw") + b"\r\n") == locked
        c.close()
        # Every protocol refuses that address now, even with the right password.
        assert imap_login(srv, src, "alice-pw") == b"a NO [UNAVAILABLE] too many failed authentications; try again later"
        p = Raw(srv.port("pop3"), source=src)
        assert p.line().startswith(b"+OK ")
        p.send(b"USER alice@example.test\r\nPASS alice-pw\r\n")
        assert p.line() == b"+OK send PASS\r\n"
        assert p.line() == b"-ERR [SYS/TEMP] too many failed logins from your address, try later\r\n"
        assert p.closed()
        p.close()
        m = Raw(srv.port("managesieve"), source=src)
        while not m.line().startswith(b"OK"):
            pass
        m.send(b'AUTHENTICATE "PLAIN" "' + plain("alice@example.test", "alice-pw") + b'"\r\n')
        assert m.line() == b'BYE (TRYLATER) "too many failed logins from your address, try later"\r\n'
        m.close()
        # Another address (the real user's) is not affected.
        assert imap_login(srv, "127.0.0.1", "alice-pw").startswith(b"a OK ")
    assert not any("wrong-guess" in line for line in srv.stderr + srv.output)


def test_many_addresses_each_limited(srv: CourrielServer, guard: Guard) -> None:
    """Twelve addresses guessing at once: each is locked out after its own failures (there
    is no global limit: a distributed attack gets MAX_FAILURES guesses per address and
    lockout period), and the real user logs in meanwhile from another address."""
    sources = [f"127.0.0.{n}" for n in range(10, 22)]
    results: dict[str, list[bytes]] = {}

    def attack(src: str) -> None:
        got = [imap_login(srv, src, f"wrong-guess-{src}-{i}") for i in range(MAX_FAILURES)]
        got.append(imap_login(srv, src, "alice-pw"))
        results[src] = got

    with guard.attack():
        threads = [threading.Thread(target=attack, args=(src,)) for src in sources]
        for t in threads:
            t.start()
        serve_others(srv)
        assert imap_login(srv, "127.0.0.1", "alice-pw").startswith(b"a OK ")
        for t in threads:
            t.join(300)
    failed = b"a NO [AUTHENTICATIONFAILED] invalid credentials"
    locked = b"a NO [UNAVAILABLE] too many failed authentications; try again later"
    assert results == {src: [failed] * MAX_FAILURES + [locked] for src in sources}


def test_parallel_burst_from_one_address(srv: CourrielServer, guard: Guard) -> None:
    """Thirty connections from one address guessing at the same instant. The limiter counts
    attempts in flight with the failures, so only max_auth_failures passwords get checked;
    the others are refused at once, and the address is locked out afterwards."""
    src = "127.0.0.3"
    n = 30
    conns = [Raw(srv.port("imap"), source=src) for _ in range(n)]
    with guard.attack():
        for c in conns:
            assert c.line().startswith(b"* OK ")
        for i, c in enumerate(conns):
            c.send(b"a LOGIN alice@example.test wrong-guess-burst-%d\r\n" % i)
        replies = [c.until_tagged(b"a").rsplit(b"\r\n", 2)[-2] for c in conns]
        for c in conns:
            c.close()
        checked = replies.count(b"a NO [AUTHENTICATIONFAILED] invalid credentials")
        refused = replies.count(b"a NO [UNAVAILABLE] too many failed authentications; try again later")
        print(f"\nparallel burst of {n} from one address: {checked} passwords checked")
        assert checked + refused == n and checked == MAX_FAILURES
        assert imap_login(srv, src, "alice-pw") == b"a NO [UNAVAILABLE] too many failed authentications; try again later"
