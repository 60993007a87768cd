"""IMAP under attack: 10 MB lines, unterminated literals, a literal announced at 2^63
octets, hostile mailbox names, invalid UTF-8, deep nesting and pipelining floods, while
other clients are served.

Already covered elsewhere: STARTTLS command injection, a 10 KB line, the ordinary literal
limits and per-user connection limits in tests/imap/test_limits.py; parser fuzzing in
tests/imap/test_fuzz.py.
"""

from __future__ import annotations

import threading

import pytest

from tests.harness import CourrielServer
from tests.hostile.conftest import Guard, Raw, serve_others

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def srv(shared: CourrielServer) -> CourrielServer:
    return shared


@pytest.fixture(scope="module")
def guard(srv: CourrielServer) -> Guard:
    return Guard(srv)


def imap(srv: CourrielServer, login: bool = True) -> Raw:
    c = Raw(srv.port("imap"))
    assert c.line().startswith(b"* OK [CAPABILITY ")
    if login:
        c.send(b"L LOGIN alice@example.test alice-pw\r\n")
        assert c.until_tagged(b"L").startswith(b"L OK ")
    return c


def tagged(c: Raw, tag: bytes, command: bytes) -> bytes:
    """Send ``tag command`` and return the tagged response line."""
    c.send(tag + b" " + command + b"\r\n")
    return c.until_tagged(tag).rsplit(b"\r\n", 2)[-2] + b"\r\n"


@pytest.mark.parametrize("login", [False, True], ids=["before-login", "after-login"])
def test_ten_megabyte_line(srv: CourrielServer, guard: Guard, login: bool) -> None:
    """Read and dropped in buffer-sized pieces: BAD [TOOBIG], and the session goes on (even
    when the long line ends with a literal announcement, which is not honoured)."""
    with guard.attack():
        c = imap(srv, login)
        c.send(b"a NOOP ")
        block = b"x" * (1024 * 1024)
        for _ in range(10):
            c.send(block)
        c.send(b" {5}\r\n")
        assert c.line() == b"a BAD [TOOBIG] line too long\r\n"
        guard.check_memory()
        assert tagged(c, b"b", b"NOOP") == b"b OK NOOP completed\r\n"
        c.close()


@pytest.mark.parametrize("size", [b"9223372036854775808", b"18446744073709551616"], ids=["2^63", "2^64"])
def test_literal_announced_at_2_63(srv: CourrielServer, guard: Guard, size: bytes) -> None:
    """A synchronising literal too large is refused instead of "+" (RFC 7888 §4 TOOBIG) and
    the session goes on; a non-synchronising one cannot be skipped: BYE and close."""
    with guard.attack():
        c = imap(srv, login=False)
        assert tagged(c, b"a", b"LOGIN {" + size + b"}") == b"a NO [TOOBIG] literal too large (limit 8192 octets)\r\n"
        c.close()
        c = imap(srv)
        assert tagged(c, b"b", b"APPEND INBOX {" + size + b"}").startswith(b"b NO [TOOBIG] literal too large")
        assert tagged(c, b"c", b"NOOP") == b"c OK NOOP completed\r\n"
        c.send(b"d APPEND INBOX {" + size + b"+}\r\n")
        assert c.line() == b"* BYE literal too large\r\n"
        assert c.closed()
        c.close()


def test_literal_size_beyond_any_integer(srv: CourrielServer, guard: Guard) -> None:
    """32 digits are not a literal size at all (the reader takes at most 20; RFC 9051 §9's
    number64 has at most 19): the line is a syntax error, never a wait for that many octets."""
    with guard.attack():
        c = imap(srv)
        huge = b"9" * 32
        assert tagged(c, b"a", b"APPEND INBOX {" + huge + b"}") == b"a BAD expected a number\r\n"
        assert tagged(c, b"b", b"APPEND INBOX {" + huge + b"+}") == b"b BAD expected a number\r\n"
        assert tagged(c, b"c", b"NOOP") == b"c OK NOOP completed\r\n"
        c.close()


def test_unterminated_literals(srv: CourrielServer, guard: Guard) -> None:
    """Literals cut short (the client vanishes mid-literal): nothing is stored, nothing
    leaks, and other sessions are served meanwhile."""
    with guard.attack():
        c = imap(srv, login=False)
        c.send(b"a LOGIN {20}\r\n")
        assert c.line() == b"+ Ready for literal data\r\n"
        c.send(b"alice")
        c.close()
        held = []
        for nonsync in (False, True):
            c = imap(srv)
            if nonsync:
                c.send(b"b APPEND INBOX {1000000+}\r\n" + b"Subject: cut\r\n\r\n" + b"y" * 400_000)
            else:
                c.send(b"b APPEND INBOX {1000000}\r\n")
                assert c.line() == b"+ Ready for literal data\r\n"
                c.send(b"Subject: cut\r\n\r\n" + b"y" * 400_000)
            held.append(c)
        serve_others(srv)  # while both APPENDs wait for the rest of their literal
        guard.check_memory()
        for c in held:
            c.close()


#: (mailbox name as sent, the tagged response to CREATE). RFC 9051 leaves names to the
#: server; "." and ".." levels are refused because clients map names to directories.
NAMES: list[tuple[bytes, bytes]] = [
    (b'".."', b'NO [CANNOT] "." and ".." are not allowed as mailbox name levels'),
    (b'"."', b'NO [CANNOT] "." and ".." are not allowed as mailbox name levels'),
    (b'"a/../b"', b'NO [CANNOT] "." and ".." are not allowed as mailbox name levels'),
    (b'"../../etc/passwd"', b'NO [CANNOT] "." and ".." are not allowed as mailbox name levels'),
    (b'"INBOX/.."', b'NO [CANNOT] "." and ".." are not allowed as mailbox name levels'),
    (b'"/"', b"NO [CANNOT] invalid mailbox name"),
    (b'"/etc"', b"NO [CANNOT] empty hierarchy level in mailbox name"),
    (b'"a//b"', b"NO [CANNOT] empty hierarchy level in mailbox name"),
    (b"{3+}\r\na\x00b", b"BAD NUL in a literal (RFC 9051 \xc2\xa74.3)"),
    (b'"&AAA-"', b"NO [CANNOT] control character in mailbox name"),  # NUL in modified UTF-7
    (b'"&"', b"BAD bad mailbox name: unterminated &-sequence"),
    (b'"' + b"n" * 10_000 + b'"', b"NO [CANNOT] mailbox name empty or too long"),
    (b"{10000+}\r\n" + b"m" * 10_000, b"NO [CANNOT] mailbox name empty or too long"),
    (b"{4+}\r\n\xff\xfe\xc3\x28", b"BAD invalid UTF-8"),
    (b'"a*b"', b"NO [CANNOT] wildcards are not allowed in mailbox names"),
]


@pytest.mark.parametrize("utf8", [False, True], ids=["modified-utf7", "utf8-accept"])
def test_hostile_mailbox_names(srv: CourrielServer, guard: Guard, utf8: bool) -> None:
    """CREATE, RENAME to, SELECT and DELETE with each name: refused, nothing created."""
    with guard.attack():
        c = imap(srv)
        if utf8:
            assert tagged(c, b"e", b"ENABLE UTF8=ACCEPT") == b"e OK ENABLE completed\r\n"
        # Modified UTF-7 sequences are plain characters once UTF8=ACCEPT is on (RFC 6855 §3).
        names = [(n, e) for n, e in NAMES if not (utf8 and n.startswith(b'"&'))]
        names += [(b'"\xed\xa0\x80"', b"BAD invalid UTF-8")] if utf8 else []
        for i, (name, expected) in enumerate(names):
            tag = b"c%d" % i
            assert tagged(c, tag, b"CREATE " + name) == tag + b" " + expected + b"\r\n", name[:30]
            got = tagged(c, b"r", b"RENAME Sent " + name)
            assert got.startswith((b"r NO [", b"r BAD ")), (name[:30], got)
            got = tagged(c, b"s", b"EXAMINE " + name)
            assert got.startswith((b"s NO [", b"s BAD ")), (name[:30], got)
            got = tagged(c, b"d", b"DELETE " + name)
            assert got.startswith((b"d NO [", b"d BAD ")), (name[:30], got)
        assert tagged(c, b"z", b"NOOP") == b"z OK NOOP completed\r\n"
        c.close()


def test_invalid_utf8_and_nul_in_commands(srv: CourrielServer, guard: Guard) -> None:
    with guard.attack():
        c = imap(srv, login=False)
        for i, command in enumerate(
            [
                b"LOGIN \xff\xfe alice-pw",
                b"LOGIN {6+}\r\nal\x00ice pw",
                b"NO\xffOP",
                b"AUTHENTICATE PLAIN \xff\xff",
            ]
        ):
            tag = b"a%d" % i
            got = tagged(c, tag, command)
            assert got.startswith((tag + b" NO ", tag + b" BAD ")), (command, got)
        c.send(b"\xff\xfe NOOP\r\n")  # no valid tag
        assert c.line().startswith(b"* BAD ")
        c.close()
        c = imap(srv)
        assert tagged(c, b"x", b"EXAMINE INBOX").startswith(b"x OK [READ-ONLY]")
        for i, command in enumerate(
            [
                b"SEARCH CHARSET UTF-8 SUBJECT {4+}\r\n\xff\xfe\xc3\x28",
                b"SEARCH CHARSET \xff\xfe ALL",
                b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (\xff\xfe)])",
                b"LIST \"\" \xff*",
                b"STATUS {4+}\r\n\xff\xfe\xc3\x28 (MESSAGES)",
            ]
        ):
            tag = b"b%d" % i
            got = tagged(c, tag, command)
            assert got.startswith((tag + b" NO ", tag + b" BAD ", tag + b" OK ")), (command, got)
        assert tagged(c, b"z", b"NOOP") == b"z OK NOOP completed\r\n"
        c.close()


def test_deep_nesting(srv: CourrielServer, guard: Guard) -> None:
    """Nesting bounds (search programs, section parts, parenthesised lists): BAD, no
    recursion blow-up in the server."""
    with guard.attack():
        c = imap(srv)
        assert tagged(c, b"x", b"EXAMINE INBOX").startswith(b"x OK [READ-ONLY]")
        assert tagged(c, b"a", b"SEARCH " + b"(" * 10_000 + b"ALL" + b")" * 10_000).startswith(b"a BAD ")
        assert tagged(c, b"b", b"SEARCH " + b"NOT " * 10_000 + b"ALL").startswith(b"b BAD ")
        assert tagged(c, b"c", b"SEARCH " + b"OR ALL " * 5_000 + b"ALL").startswith(b"c BAD ")
        got = tagged(c, b"d", b"FETCH 1 BODY.PEEK[" + b"1." * 5_000 + b"1]")
        assert got.startswith((b"d BAD ", b"d NO ", b"d OK ")), got
        got = tagged(c, b"e", b"FETCH 1 (" + b"(" * 5_000 + b"FLAGS" + b")" * 5_000 + b")")
        assert got.startswith(b"e BAD "), got
        assert tagged(c, b"z", b"NOOP") == b"z OK NOOP completed\r\n"
        c.close()


def test_pipelining_flood(srv: CourrielServer, guard: Guard) -> None:
    """20,000 pipelined commands while another client is served: all answered in order."""
    n = 20_000
    with guard.attack():
        c = imap(srv)
        done: list[bytes] = []

        def read() -> None:
            while len(done) < n:
                line = c.line()
                if not line:
                    return
                if line.startswith(b"t"):
                    done.append(line)

        reader = threading.Thread(target=read)
        reader.start()
        flood = b"".join(b"t%d %s\r\n" % (i, b"NOOP" if i % 2 else b"CAPABILITY") for i in range(n))
        sender = threading.Thread(target=c.send, args=(flood,))
        sender.start()
        serve_others(srv)
        sender.join(120)
        reader.join(120)
        assert len(done) == n
        assert done[-1] == b"t%d OK NOOP completed\r\n" % (n - 1)
        assert all(b" OK " in line for line in done)
        c.close()
