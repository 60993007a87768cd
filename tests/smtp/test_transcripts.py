"""Byte-level transcripts of the error paths (and a few good ones) over a raw socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import CourrielServer
from tests.smtp.conftest import MAX_RCPTS, MAX_SIZE, Raw, auth_plain, delivered, inbox, unique

H = b"mail.example.test"


@pytest.fixture
def mx(server: CourrielServer) -> Iterator[Raw]:
    c = Raw(server.port("smtp"))
    assert c.greeting == b"220 " + H + b" ESMTP courriel\r\n"
    assert c.cmd(b"EHLO client.test\r\n").startswith(b"250-" + H + b" greets client.test\r\n")
    yield c
    c.close()


@pytest.fixture
def sub(server: CourrielServer) -> Iterator[Raw]:
    c = Raw(server.port("submission"))
    c.cmd(b"EHLO client.test\r\n")
    yield c
    c.close()


def test_ehlo_capabilities(server: CourrielServer) -> None:
    c = Raw(server.port("smtp"))
    assert c.cmd(b"EHLO client.test\r\n") == (
        b"250-" + H + b" greets client.test\r\n250-PIPELINING\r\n250-SIZE " + str(MAX_SIZE).encode() + b"\r\n"
        b"250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n"
        b"250-STARTTLS\r\n250 HELP\r\n"
    )  # no AUTH on the MX before TLS
    c.starttls()
    caps = c.cmd(b"EHLO client.test\r\n")
    assert b"250-AUTH SCRAM-SHA-256 PLAIN LOGIN\r\n" in caps and b"STARTTLS" not in caps
    c.close()


def test_simple_commands(mx: Raw) -> None:
    assert mx.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
    assert mx.cmd(b"VRFY alice@example.test\r\n") == (
        b"252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"
    )
    assert mx.cmd(b"EXPN team@example.test\r\n") == b"502 5.5.1 EXPN is disabled\r\n"
    assert mx.cmd(b"HELP\r\n").startswith(b"214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT")
    assert mx.cmd(b"RSET\r\n") == b"250 2.0.0 OK\r\n"
    assert mx.cmd(b"FOO bar\r\n") == b"500 5.5.2 Syntax error, command unrecognized\r\n"
    assert mx.cmd(b"QUIT\r\n") == b"221 2.0.0 Bye\r\n"
    assert mx.closed()


def test_bad_sequence(server: CourrielServer) -> None:
    c = Raw(server.port("smtp"))
    assert c.cmd(b"MAIL FROM:<a@remote.test>\r\n") == b"503 5.5.1 Send EHLO or HELO first\r\n"
    assert c.cmd(b"HELO client.test\r\n") == b"250 " + H + b" greets client.test\r\n"
    assert c.cmd(b"RCPT TO:<alice@example.test>\r\n") == b"503 5.5.1 Bad sequence of commands: RCPT not allowed now\r\n"
    assert c.cmd(b"DATA\r\n") == b"503 5.5.1 Bad sequence of commands: DATA not allowed now\r\n"
    assert c.cmd(b"MAIL FROM:<a@remote.test>\r\n") == b"250 2.1.0 Sender OK\r\n"
    assert c.cmd(b"MAIL FROM:<a@remote.test>\r\n") == b"503 5.5.1 Bad sequence of commands: MAIL not allowed now\r\n"
    assert c.cmd(b"DATA\r\n") == b"554 5.5.1 No valid recipients\r\n"
    c.close()


def test_unknown_user(mx: Raw) -> None:
    assert mx.cmd(b"MAIL FROM:<a@remote.test>\r\n") == b"250 2.1.0 Sender OK\r\n"
    assert mx.cmd(b"RCPT TO:<nobody@example.test>\r\n") == b"550 5.1.1 User unknown\r\n"
    assert mx.cmd(b"RCPT TO:<loop1@example.test>\r\n").startswith(b"550 5.4.6 ")


def test_relay_attempt_without_auth(mx: Raw) -> None:
    assert mx.cmd(b"MAIL FROM:<a@remote.test>\r\n") == b"250 2.1.0 Sender OK\r\n"
    assert mx.cmd(b"RCPT TO:<victim@elsewhere.test>\r\n") == b"554 5.7.1 Relay access denied\r\n"
    assert mx.cmd(b"RCPT TO:<victim@[127.0.0.1]>\r\n") == b"554 5.7.1 Relay access denied\r\n"
    assert mx.cmd(b"RCPT TO:<@example.test:victim@elsewhere.test>\r\n") == b"554 5.7.1 Relay access denied\r\n"
    assert mx.cmd(b"DATA\r\n") == b"554 5.5.1 No valid recipients\r\n"


def test_submission_requires_auth(sub: Raw) -> None:
    assert sub.cmd(b"MAIL FROM:<alice@example.test>\r\n") == b"530 5.7.0 Authentication required\r\n"


def test_auth_refused_before_tls_on_mx(mx: Raw) -> None:
    assert mx.cmd(auth_plain("alice@example.test", "alice-pw")) == (
        b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    )


def test_foreign_sender(sub: Raw) -> None:
    assert sub.cmd(auth_plain("alice@example.test", "alice-pw")) == b"235 2.7.0 Authentication successful\r\n"
    assert sub.cmd(b"MAIL FROM:<bob@example.test>\r\n") == b"553 5.7.1 Sender address not owned by alice@example.test\r\n"
    assert sub.cmd(b"MAIL FROM:<ceo@remote.test>\r\n") == b"553 5.7.1 Sender address not owned by alice@example.test\r\n"
    assert sub.cmd(b"MAIL FROM:<>\r\n") == b"553 5.7.1 Sender address not owned by alice@example.test\r\n"
    # Own address and an alias pointing to it are fine; the From header is checked too.
    assert sub.cmd(b"MAIL FROM:<alice.smith@example.test>\r\n") == b"250 2.1.0 Sender OK\r\n"
    assert sub.cmd(b"RCPT TO:<bob@example.test>\r\n") == b"250 2.1.5 Recipient OK\r\n"
    assert sub.cmd(b"DATA\r\n") == b"354 End data with <CR><LF>.<CR><LF>\r\n"
    assert sub.cmd(b"From: Bob <bob@example.test>\r\n\r\nspoof\r\n.\r\n") == (
        b"553 5.7.1 From address bob@example.test not owned by alice@example.test\r\n"
    )
    assert sub.cmd(b"MAIL FROM:<alice@example.test>\r\n") == b"250 2.1.0 Sender OK\r\n"


def test_oversize(mx: Raw, server: CourrielServer) -> None:
    assert mx.cmd(b"MAIL FROM:<a@remote.test> SIZE=%d\r\n" % (MAX_SIZE + 1)) == (
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    )
    # Declared small, sent big: the data is read to its end, then refused; nothing stored.
    before = len(inbox(server, "alice@example.test"))
    assert mx.cmd(b"MAIL FROM:<a@remote.test> SIZE=100\r\n") == b"250 2.1.0 Sender OK\r\n"
    assert mx.cmd(b"RCPT TO:<alice@example.test>\r\n") == b"250 2.1.5 Recipient OK\r\n"
    assert mx.cmd(b"DATA\r\n").startswith(b"354 ")
    body = (b"x" * 998 + b"\r\n") * (MAX_SIZE // 1000 + 5)
    assert mx.cmd(b"Subject: big\r\n\r\n" + body + b".\r\n") == (
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    )
    assert mx.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"  # the session goes on, in sync
    assert len(inbox(server, "alice@example.test")) == before


def test_too_many_recipients(mx: Raw) -> None:
    mx.cmd(b"MAIL FROM:<a@remote.test>\r\n")
    for _ in range(MAX_RCPTS):
        assert mx.cmd(b"RCPT TO:<alice@example.test>\r\n") == b"250 2.1.5 Recipient OK\r\n"
    assert mx.cmd(b"RCPT TO:<bob@example.test>\r\n") == b"452 4.5.3 Too many recipients\r\n"


def test_line_too_long(mx: Raw) -> None:
    assert mx.cmd(b"NOOP " + b"x" * 20000 + b"\r\n") == b"500 5.5.6 Line too long\r\n"
    assert mx.cmd(b"NOOP " + b"x" * 3000 + b"\r\n") == b"500 5.5.6 Line too long\r\n"
    assert mx.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_long_line_in_data_refused(mx: Raw) -> None:
    mx.cmd(b"MAIL FROM:<a@remote.test>\r\n")
    mx.cmd(b"RCPT TO:<alice@example.test>\r\n")
    mx.cmd(b"DATA\r\n")
    assert mx.cmd(b"Subject: x\r\n\r\n" + b"y" * 2500 + b"\r\n.\r\n") == b"550 5.6.0 Line longer than 2000 octets\r\n"


def test_pipelining(mx: Raw, server: CourrielServer) -> None:
    """RFC 2920: a whole transaction in one write; the replies come back in order."""
    msg = unique("pipelined")
    mx.send(
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
        b"RCPT TO:<x@elsewhere.test>\r\nDATA\r\n"
    )
    assert [mx.reply() for _ in range(5)] == [
        b"250 2.1.0 Sender OK\r\n",
        b"550 5.1.1 User unknown\r\n",
        b"250 2.1.5 Recipient OK\r\n",
        b"554 5.7.1 Relay access denied\r\n",
        b"354 End data with <CR><LF>.<CR><LF>\r\n",
    ]
    mx.send(msg + b".\r\nNOOP\r\nQUIT\r\n")
    assert mx.reply().startswith(b"250 2.0.0 OK: queued as ")
    assert mx.reply() == b"250 2.0.0 OK\r\n"
    assert mx.reply() == b"221 2.0.0 Bye\r\n"
    delivered(server, "alice@example.test", msg)


SMUGGLING = [
    b"\n.\n",  # bare LF dot bare LF
    b"\r\n.\n",
    b"\n.\r\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n\x00.\r\n",
]


@pytest.mark.parametrize("end", SMUGGLING)
def test_smuggling(server: CourrielServer, end: bytes) -> None:
    """Only CRLF.CRLF ends DATA; a message with any other 'end' and a smuggled transaction
    after it is refused whole (bare CR/LF), and the smuggled mail is never delivered."""
    c = Raw(server.port("smtp"))
    c.cmd(b"EHLO attacker.test\r\n")
    smuggled = unique("smuggled")
    first = unique("cover")
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert [c.reply() for _ in range(3)][-1].startswith(b"354")
    c.send(
        first.rstrip(b"\r\n") + end + b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        + smuggled + b".\r\n"
    )  # fmt: skip
    reply = c.reply()
    if end == b"\r\n\x00.\r\n":  # a NUL line is not an end and not bare: stored as sent
        assert reply.startswith(b"250 ")
    else:
        assert reply == b"550 5.6.0 Bare CR or LF in message; lines must end with CRLF\r\n"
    assert c.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"  # nothing of the smuggled commands ran
    c.close()
    for m in inbox(server, "bob@example.test"):
        assert not m.startswith(b"Return-Path: <admin@example.test>")  # no smuggled transaction
        if end != b"\r\n\x00.\r\n":
            assert not m.endswith(smuggled)


def test_starttls_injection(server: CourrielServer) -> None:
    """RFC 3207 §4.2: commands pipelined after STARTTLS in plaintext are discarded."""
    c = Raw(server.port("smtp"))
    c.cmd(b"EHLO client.test\r\n")
    c.send(b"STARTTLS\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.test>\r\n")
    assert c.reply() == b"220 2.0.0 Ready to start TLS\r\n"
    from tests.smtp.conftest import client_tls

    c.sock = client_tls().wrap_socket(c.sock)
    # The injected MAIL was dropped: the session starts over and wants EHLO.
    assert c.cmd(b"RCPT TO:<alice@example.test>\r\n") == b"503 5.5.1 Send EHLO or HELO first\r\n"
    assert c.cmd(b"EHLO client.test\r\n").startswith(b"250-")
    assert c.cmd(b"RCPT TO:<alice@example.test>\r\n") == b"503 5.5.1 Bad sequence of commands: RCPT not allowed now\r\n"
    assert c.cmd(b"STARTTLS\r\n") == b"503 5.5.1 TLS already active\r\n"
    c.close()


def test_bdat(mx: Raw, server: CourrielServer) -> None:
    """RFC 3030 CHUNKING over a raw socket: chunks pipelined, byte-exact storage."""
    msg = unique("chunked") + b"bare\nLF lines are not allowed, even in BDAT\r\n"
    clean = unique("chunked-clean") + b".leading dot kept as is\r\n"
    mx.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<carol@example.test>\r\n")
    mx.send(b"BDAT 20\r\n" + clean[:20] + b"BDAT %d LAST\r\n" % (len(clean) - 20) + clean[20:])
    replies = [mx.reply() for _ in range(4)]
    assert replies[:3] == [b"250 2.1.0 Sender OK\r\n", b"250 2.1.5 Recipient OK\r\n", b"250 2.0.0 20 octets received\r\n"]
    assert replies[3].startswith(b"250 2.0.0 OK: queued as ")
    trace, _ = delivered(server, "carol@example.test", clean)
    assert trace[0] == b"Return-Path: <a@remote.test>\r\n"
    mx.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<carol@example.test>\r\nBDAT %d LAST\r\n" % len(msg) + msg)
    assert [mx.reply() for _ in range(3)][2] == b"550 5.6.0 Bare CR or LF in message; lines must end with CRLF\r\n"
    # BDAT out of sequence: its chunk is read past, the session stays in sync.
    assert mx.cmd(b"BDAT 5 LAST\r\nhello") == b"503 5.5.1 Bad sequence of commands: BDAT not allowed now\r\n"
    assert mx.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
    # DATA after BDAT is refused (RFC 3030 §3).
    mx.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<carol@example.test>\r\nBDAT 3\r\nabcDATA\r\n")
    assert [mx.reply() for _ in range(4)][3] == b"503 5.5.1 DATA not allowed after BDAT\r\n"
    # Too big: every chunk is read, the message refused.
    assert mx.cmd(b"BDAT %d LAST\r\n" % (MAX_SIZE + 10) + b"z" * (MAX_SIZE + 10)) == (
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    )
    assert mx.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_too_many_errors_closes(server: CourrielServer) -> None:
    c = Raw(server.port("smtp"))
    for _ in range(19):
        assert c.cmd(b"BOGUS\r\n") == b"500 5.5.2 Syntax error, command unrecognized\r\n"
    assert c.cmd(b"BOGUS\r\n") == b"500 5.5.2 Syntax error, command unrecognized\r\n"
    assert c.reply() == b"421 4.7.0 Too many errors, closing\r\n"
    assert c.closed()
    c.close()


def test_postmaster_and_alias_expansion(mx: Raw, server: CourrielServer) -> None:
    """Aliases, a catch-all, and <Postmaster> without a domain (RFC 5321 §4.5.1)."""
    server.cli("alias", "add", "postmaster@example.test", "carol@example.test")
    msg = unique("team")
    mx.send(
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<team@example.test>\r\nRCPT TO:<anything@other.test>\r\n"
        b"RCPT TO:<Postmaster>\r\nDATA\r\n"
    )
    assert [mx.reply() for _ in range(5)][1:4] == [b"250 2.1.5 Recipient OK\r\n"] * 3
    assert mx.cmd(msg + b".\r\n").startswith(b"250 2.0.0 OK: queued as ")
    for user in ("alice", "bob", "carol"):  # bob twice (team and catch-all): one copy
        trace, _ = delivered(server, f"{user}@example.test", msg)
        assert trace[0] == b"Return-Path: <a@remote.test>\r\n"
        assert trace[1].startswith(b"Received: from client.test ([127.0.0.1])\r\n\tby mail.example.test (courriel) with ESMTP id ")


def test_recipient_deleted_during_transaction(mx: Raw, server: CourrielServer) -> None:
    """The user goes away between RCPT and the end of DATA: a temporary failure, nothing
    stored, and the session goes on (the next attempt gets the permanent 550)."""
    server.cli("user", "add", "dave@example.test", "--password-stdin", stdin="dave-pw\n")
    mx.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<dave@example.test>\r\nDATA\r\n")
    assert [mx.reply() for _ in range(3)][1] == b"250 2.1.5 Recipient OK\r\n"
    server.cli("user", "del", "dave@example.test")
    assert mx.cmd(unique("late") + b".\r\n") == b"451 4.3.0 Recipient changed during the transaction, try again\r\n"
    assert mx.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
