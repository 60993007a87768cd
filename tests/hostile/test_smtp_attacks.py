"""SMTP and LMTP under attack: smuggling through BDAT and split terminators, pipelining
floods, 10 MB lines, NUL and invalid UTF-8, while other clients are served.

Already covered elsewhere (not repeated): the DATA smuggling endings (bare LF/CR, NUL) and
STARTTLS command injection in tests/smtp/test_transcripts.py, line limits and errors
closing the session there too, the connection limit per address and the timeouts in
tests/smtp/test_auth.py.
"""

from __future__ import annotations

import threading

import pytest

from tests.harness import CourrielServer
from tests.hostile.conftest import GOOD, Guard, Raw, inbox, queue_size, serve_others

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def srv(shared: CourrielServer) -> CourrielServer:
    return shared


@pytest.fixture(scope="module")
def guard(srv: CourrielServer) -> Guard:
    return Guard(srv)


def mx(srv: CourrielServer, port: str = "smtp", hello: bytes = b"EHLO attacker.test\r\n") -> Raw:
    c = Raw(srv.port(port))
    assert c.smtp_reply().startswith(b"220 ")
    assert c.cmd(hello).startswith(b"250")
    return c


def test_smuggling_inside_bdat(srv: CourrielServer, guard: Guard) -> None:
    """RFC 3030: a BDAT chunk is counted octets; a CRLF.CRLF and commands inside it are
    message content, never commands (no second transaction)."""
    with guard.attack(allow=frozenset({(GOOD, "INBOX")})):
        c = mx(srv)
        chunk = (
            b"Subject: bdat-smuggle\r\n\r\nbody\r\n.\r\nMAIL FROM:<admin@example.test>\r\n"
            b"RCPT TO:<alice@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n"
        )
        c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<" + GOOD.encode() + b">\r\n")
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        assert [c.smtp_reply() for _ in range(3)][2].startswith(b"250 2.0.0 OK")
        assert c.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
        c.close()
    stored = [m for m in inbox(srv, GOOD) if b"bdat-smuggle" in m]
    assert len(stored) == 1 and stored[0].endswith(chunk)


def test_smuggling_bdat_size_lies(srv: CourrielServer, guard: Guard) -> None:
    """A chunk shorter than announced swallows the next command as data; one longer leaves
    the rest to be read as commands, which then fail: neither delivers anything."""
    with guard.attack():
        c = mx(srv)
        c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
        assert c.smtp_reply().startswith(b"250") and c.smtp_reply().startswith(b"250")
        # 10 octets announced, 40 sent: the rest is taken as a command line.
        c.send(b"BDAT 10\r\n" + b"Subject: x\r\nRCPT TO:<bob@example.test>\r\nXX\r\n")
        assert c.smtp_reply() == b"250 2.0.0 10 octets received\r\n"
        assert c.smtp_reply() == b"500 5.5.2 Syntax error, command unrecognized\r\n"  # the CRLF left over
        assert c.smtp_reply() == b"250 2.1.5 Recipient OK\r\n"  # still the same transaction
        assert c.smtp_reply() == b"500 5.5.2 Syntax error, command unrecognized\r\n"
        assert c.cmd(b"RSET\r\n") == b"250 2.0.0 OK\r\n"  # abandoned: nothing delivered
        # 1,000,000 announced, the client stalls and leaves: nothing stored.
        c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 1000000 LAST\r\nshort")
        c.close()


def test_split_terminator_and_bare_lf_at_read_boundaries(srv: CourrielServer, guard: Guard) -> None:
    """The end of DATA arriving in pieces (CR LF . / CR LF), and a bare LF at a 64 KB read
    boundary: the first delivers once, the second is refused whole."""
    with guard.attack(allow=frozenset({(GOOD, "INBOX")})):
        c = mx(srv)
        c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<" + GOOD.encode() + b">\r\nDATA\r\n")
        assert [c.smtp_reply() for _ in range(3)][2].startswith(b"354 ")
        for piece in (b"Subject: split\r\n\r\nline\r", b"\n.", b"\r", b"\n"):
            c.send(piece)
        assert c.smtp_reply().startswith(b"250 2.0.0 OK")
        c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        assert [c.smtp_reply() for _ in range(3)][2].startswith(b"354 ")
        filler = b"Subject: boundary\r\n\r\n" + b"y" * (65536 - 21 - 1)
        c.send(filler + b"\n.\nMAIL FROM:<x@remote.test>\r\n\r\n.\r\n")
        assert c.smtp_reply() == b"550 5.6.0 Bare CR or LF in message; lines must end with CRLF\r\n"
        assert c.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
        c.close()


def test_pipelining_flood(srv: CourrielServer, guard: Guard) -> None:
    """50,000 pipelined commands in one write while another client is served: each answered
    in order; 2,000 pipelined recipients: the limit answers 452 4.5.3 and nothing is queued."""
    n = 50_000
    queued = queue_size(srv)
    with guard.attack():
        c = mx(srv)
        replies: list[bytes] = []

        def read() -> None:
            for _ in range(n):
                replies.append(c.smtp_reply())

        reader = threading.Thread(target=read)
        reader.start()
        sender = threading.Thread(target=c.send, args=(b"NOOP\r\n" * (n // 2) + b"RSET\r\n" * (n // 2),))
        sender.start()
        serve_others(srv)  # during the flood
        sender.join(120)
        reader.join(120)
        assert len(replies) == n and set(replies) == {b"250 2.0.0 OK\r\n"}
        c.send(b"MAIL FROM:<a@remote.test>\r\n" + b"RCPT TO:<alice@example.test>\r\n" * 2000)
        got = [c.smtp_reply() for _ in range(2001)]
        assert got[1:101] == [b"250 2.1.5 Recipient OK\r\n"] * 100
        assert set(got[101:]) == {b"452 4.5.3 Too many recipients\r\n"}
        assert c.cmd(b"QUIT\r\n") == b"221 2.0.0 Bye\r\n"
        c.close()
    assert queue_size(srv) == queued


@pytest.mark.parametrize("where", ["command", "data", "lmtp"])
def test_ten_megabyte_line(srv: CourrielServer, guard: Guard, where: str) -> None:
    """A 10 MB line is dropped as it arrives (never buffered whole): a command gets
    500 5.5.6 and the session goes on; in DATA the message is refused at its end."""
    with guard.attack():
        c = mx(srv, "lmtp", b"LHLO attacker.test\r\n") if where == "lmtp" else mx(srv)
        if where == "data":
            c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
            assert [c.smtp_reply() for _ in range(3)][2].startswith(b"354 ")
            c.send(b"Subject: long\r\n\r\n")
        else:
            c.send(b"NOOP ")
        block = b"z" * (1024 * 1024)
        for _ in range(10):
            c.send(block)
        if where == "data":
            c.send(b"\r\n.\r\n")
            assert c.smtp_reply().startswith(b"5")  # line length (5.5.2/5.6.0) or size
        else:
            c.send(b"\r\n")
            assert c.smtp_reply() == b"500 5.5.6 Line too long\r\n"
        guard.check_memory()
        assert c.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
        c.close()


UTF8 = b"500 5.5.2 Invalid UTF-8 in command\r\n"
CONTROL = b"500 5.5.2 Control character in command\r\n"
BAD_BYTES = [
    (b"EHLO \xff\xfe.test\r\n", UTF8),
    (b"HELO a\x00b\r\n", CONTROL),
    (b"MAIL FROM:<\xc3\x28@remote.test> SMTPUTF8\r\n", UTF8),
    (b"MAIL FROM:<\xed\xa0\x80@remote.test> SMTPUTF8\r\n", UTF8),  # a UTF-16 surrogate
    (b"NO\xffOP\r\n", UTF8),
    (b"\x00\x00\x00\r\n", CONTROL),
    (b"\r\n", b"500 5.5.2 Syntax error, command unrecognized\r\n"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", UTF8),  # a stray ClientHello
]


def test_invalid_utf8_and_nul_in_commands(srv: CourrielServer, guard: Guard) -> None:
    with guard.attack():
        c = mx(srv)
        for line, reply in BAD_BYTES:
            got = c.cmd(line)
            assert got == reply, (line, got)
        assert c.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
        c.close()
        c = mx(srv)  # RCPT with invalid UTF-8, after a valid SMTPUTF8 MAIL
        assert c.cmd(b"MAIL FROM:<a@remote.test> SMTPUTF8\r\n").startswith(b"250 ")
        assert c.cmd(b"RCPT TO:<\xff\xff@example.test>\r\n") == UTF8
        c.close()


def test_invalid_utf8_in_a_message_is_stored_as_sent(srv: CourrielServer, guard: Guard) -> None:
    """8-bit garbage in header and body is not a reason to lose mail: stored byte-exact."""
    body = b"Subject: \xff\xfe\xc3\x28 caf\xe9\r\nFrom: \xed\xa0\x80 <x@remote.test>\r\n\r\n\xff\x00\xfe\r\n"
    with guard.attack(allow=frozenset({(GOOD, "INBOX")})):
        c = mx(srv)
        c.send(b"MAIL FROM:<a@remote.test> BODY=8BITMIME\r\nRCPT TO:<" + GOOD.encode() + b">\r\nDATA\r\n")
        assert [c.smtp_reply() for _ in range(3)][2].startswith(b"354 ")
        assert c.cmd(body + b".\r\n").startswith(b"250 2.0.0 OK")
        c.close()
    assert sum(m.endswith(body) for m in inbox(srv, GOOD)) == 1
