"""LMTP (RFC 2033) over TCP and the Unix socket: LHLO, one reply per recipient after DATA
and BDAT LAST, refusals at RCPT, quotas per recipient, and the message stored byte for byte
(read back over IMAP)."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator

import pytest

from courriel.config import load_config
from courriel.mailauth.srs import Srs
from tests.harness import CourrielServer
from tests.lmtp.conftest import MAX_SIZE, Lmtp, imap_messages, message, split_trace, wait_message
from tests.smtp.conftest import Raw

OPEN: list[Raw] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def connect(srv: CourrielServer) -> Raw:
    c = Raw(srv.port("lmtp"))
    OPEN.append(c)
    return c


def lhlo(srv: CourrielServer) -> Raw:
    c = connect(srv)
    assert c.greeting.startswith(b"220 mail.example.test LMTP")
    assert c.cmd(b"LHLO mta.test\r\n").startswith(b"250-mail.example.test")
    return c


def test_lhlo_capabilities_and_helo_refused(server: Lmtp) -> None:
    c = connect(server)
    assert c.cmd(b"EHLO mta.test\r\n") == b"500 5.5.1 This is an LMTP server: use LHLO\r\n"
    assert c.cmd(b"HELO mta.test\r\n").startswith(b"500 5.5.1")
    assert c.cmd(b"MAIL FROM:<a@remote.test>\r\n").startswith(b"503 5.5.1")
    caps = c.cmd(b"LHLO mta.test\r\n").split(b"\r\n")
    names = {line[4:].split(b" ")[0] for line in caps[1:] if line}
    assert {
        b"PIPELINING",
        b"8BITMIME",
        b"SMTPUTF8",
        b"ENHANCEDSTATUSCODES",
        b"CHUNKING",
        b"SIZE",
    } <= names
    assert not names & {b"AUTH", b"STARTTLS", b"DSN"}
    assert c.cmd(b"HELP\r\n").startswith(b"214-2.0.0 Commands: LHLO MAIL RCPT DATA BDAT")
    assert c.cmd(b"QUIT\r\n").startswith(b"221 ")


def test_one_reply_per_recipient_after_data(server: Lmtp) -> None:
    """RFC 2033 §4.2: a reply for each accepted RCPT, in order; an alias and a user that
    share an INBOX store one copy there."""
    c = lhlo(server)
    data, marker = message("perrcpt", b"Line one\r\n..leading dot\r\n\xc3\xa9t\xc3\xa9 8-bit\r\n")
    replies = c.cmd(
        b"MAIL FROM:<sender@remote.test> BODY=8BITMIME\r\nRCPT TO:<alice@example.test>\r\n"
        b"RCPT TO:<ghost@example.test>\r\nRCPT TO:<team@example.test>\r\nRCPT TO:<someone@other.test>\r\nDATA\r\n"
    )
    assert replies == b"250 2.1.0 Sender OK\r\n"
    assert c.reply() == b"250 2.1.5 Recipient OK\r\n"
    assert c.reply() == b"550 5.1.1 User unknown\r\n"
    assert c.reply() == b"250 2.1.5 Recipient OK\r\n"
    assert c.reply() == b"250 2.1.5 Recipient OK\r\n"
    assert c.reply() == b"354 End data with <CR><LF>.<CR><LF>\r\n"
    c.send(data + b".\r\n")
    for rcpt in (b"alice@example.test", b"team@example.test", b"someone@other.test"):
        r = c.reply()
        assert r.startswith(b"250 2.0.0 <" + rcpt + b"> delivered as "), r
    assert c.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"
    original = data.replace(b"\r\n..", b"\r\n.")  # dot-stuffed on the wire (RFC 5321 §4.5.2)
    for user in ("alice@example.test", "bob@example.test", "carol@example.test"):
        fields = split_trace(wait_message(server, user, marker), original)
        assert fields[0] == b"Return-Path: <sender@remote.test>"
        assert fields[1].startswith(
            b"Received: from mta.test ([127.0.0.1])\r\n\tby mail.example.test (courriel) with LMTP id "
        )


def test_bdat_last_gets_per_recipient_replies(server: Lmtp) -> None:
    c = lhlo(server)
    data, marker = message("bdat")
    half = len(data) // 2
    c.send(
        b"MAIL FROM:<>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
        + b"BDAT %d\r\n" % half
        + data[:half]
        + b"BDAT %d LAST\r\n" % (len(data) - half)
        + data[half:]
    )
    assert [c.reply() for _ in range(4)] == [
        b"250 2.1.0 Sender OK\r\n", b"250 2.1.5 Recipient OK\r\n", b"250 2.1.5 Recipient OK\r\n",
        b"250 2.0.0 %d octets received\r\n" % half,
    ]  # fmt: skip
    assert c.reply().startswith(b"250 2.0.0 <alice@example.test> delivered as ")
    assert c.reply().startswith(b"250 2.0.0 <bob@example.test> delivered as ")
    fields = split_trace(wait_message(server, "bob@example.test", marker), data)
    assert fields[0] == b"Return-Path: <>"


def test_refusals_at_rcpt(server: Lmtp) -> None:
    c = lhlo(server)
    assert c.cmd(b"MAIL FROM:<a@remote.test>\r\n").startswith(b"250 ")
    assert c.cmd(b"RCPT TO:<someone@remote.test>\r\n") == b"550 5.1.2 Not a local domain\r\n"
    assert c.cmd(b"RCPT TO:<loop1@example.test>\r\n").startswith(b"550 5.4.6 ")
    assert c.cmd(b"RCPT TO:<ghost@example.test>\r\n") == b"550 5.1.1 User unknown\r\n"
    assert c.cmd(b"RCPT TO:<bad address>\r\n").startswith(b"501 5.")
    # No accepted recipient: DATA is refused with a single reply (RFC 2033 §4.2 needs one).
    assert c.cmd(b"DATA\r\n") == b"554 5.5.1 No valid recipients\r\n"
    assert c.cmd(b"RSET\r\n") == b"250 2.0.0 OK\r\n"
    assert c.cmd(b"AUTH PLAIN AGFsaWNlAGFsaWNlLXB3\r\n").startswith(b"500 5.5.2")
    assert c.cmd(b"STARTTLS\r\n").startswith(b"500 5.5.2")


def test_full_mailbox_defers_only_its_recipient(server: Lmtp) -> None:
    """One shared write fails on full@'s quota (3,000 bytes): each recipient is then stored
    alone, and only full@ gets 452 (the MTA retries it alone later), or 552 when the message
    could never fit."""
    c = lhlo(server)
    first, _ = message("quota-first", b"f" * 1800 + b"\r\n")
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<full@example.test>\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    c.send(first + b".\r\n")
    assert c.reply().startswith(b"250 2.0.0 <full@example.test> delivered as ")
    data, marker = message("quota", b"x" * 1500 + b"\r\n")
    c.send(
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<full@example.test>\r\n"
    )
    c.send(b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(5)] == [b"250", b"250", b"250", b"250", b"354"]
    c.send(data + b".\r\n")
    assert c.reply().startswith(b"250 2.0.0 <alice@example.test>")
    assert c.reply() == b"452 4.2.2 <full@example.test> mailbox full, try again later\r\n"
    assert c.reply().startswith(b"250 2.0.0 <bob@example.test>")
    split_trace(wait_message(server, "alice@example.test", marker), data)
    split_trace(wait_message(server, "bob@example.test", marker), data)
    assert not [m for m in imap_messages(server, "full@example.test") if marker in m]
    big, _ = message("quota-big", b"y" * 4000 + b"\r\n")
    c.send(
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<full@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
    )
    assert [c.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    c.send(big + b".\r\n")
    assert (
        c.reply()
        == b"552 5.2.2 <full@example.test> mailbox full: message larger than the quota\r\n"
    )
    assert c.reply().startswith(b"250 2.0.0 <bob@example.test>")
    # The announced size is checked at RCPT already.
    c.send(b"MAIL FROM:<a@remote.test> SIZE=1500\r\nRCPT TO:<full@example.test>\r\n")
    assert c.reply().startswith(b"250 ")
    assert c.reply() == b"452 4.2.2 Mailbox full\r\n"
    assert c.cmd(b"RSET\r\n").startswith(b"250 ")
    c.send(b"MAIL FROM:<a@remote.test> SIZE=5000\r\nRCPT TO:<full@example.test>\r\n")
    assert c.reply().startswith(b"250 ")
    assert c.reply() == b"552 5.2.2 Mailbox full: message larger than the recipient's quota\r\n"


def test_refused_message_gets_a_reply_per_recipient(server: Lmtp) -> None:
    """Size over the limit and bare LF: the refusal is repeated for each recipient."""
    c = lhlo(server)
    c.send(
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
    )
    assert [c.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    c.send(b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * (MAX_SIZE // 1000 + 2) + b".\r\n")
    assert [c.reply() for _ in range(2)] == [
        b"552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    ] * 2
    c.send(
        b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
    )
    assert [c.reply()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
    c.send(b"Subject: bare\r\n\r\nbare\nLF\r\n.\r\n")
    assert [c.reply()[:10] for _ in range(2)] == [b"550 5.6.0 "] * 2
    assert c.cmd(b"NOOP\r\n") == b"250 2.0.0 OK\r\n"


def test_unix_socket_with_smtplib(server: Lmtp) -> None:
    data, marker = message("unix")
    with smtplib.LMTP(str(server.socket_path)) as c:
        refused = c.sendmail(
            "sender@remote.test", ["bob@example.test", "nobody@example.test"], data
        )
    assert refused == {"nobody@example.test": (550, b"5.1.1 User unknown")}
    fields = split_trace(wait_message(server, "bob@example.test", marker), data)
    assert b" (courriel) with LMTP id " in fields[1]


def test_untrusted_network_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    """LMTP has no authentication: TCP clients outside lmtp.trusted_networks get 421."""
    env = {"COURRIEL_LMTP_TRUSTED_NETWORKS": "192.0.2.0/24"}
    srv = CourrielServer(tmp_path_factory.mktemp("untrusted"), only=("lmtp",), env=env)
    with srv, socket.create_connection(("127.0.0.1", srv.port("lmtp")), timeout=30) as s:
        assert s.recv(200).startswith(b"421 4.7.0 ")
        assert s.recv(200) == b""


def test_sieve_ereject_refuses_in_protocol(server: Lmtp) -> None:
    """carol's Sieve script ereject-s: LMTP answers 550 for her (RFC 5429 §2.2); her other
    mail is delivered."""
    c = lhlo(server)
    refused, _ = message("sieve-refuse")
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    c.send(refused + b".\r\n")
    assert c.reply() == b"550 5.7.1 <carol@example.test> Carol does not want this\r\n"
    kept, marker = message("sieve-keep")
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    c.send(kept + b".\r\n")
    assert c.reply().startswith(b"250 2.0.0 <carol@example.test> delivered as ")
    split_trace(wait_message(server, "carol@example.test", marker), kept)
    assert not [m for m in imap_messages(server, "carol@example.test") if b"sieve-refuse" in m]


def test_srs_bounce_is_routed_back(server: Lmtp) -> None:
    srs = Srs.from_config(load_config(server.data, env=server.env))
    address = srs.forward("origin@remote.test")
    c = lhlo(server)
    data, _ = message("srs-bounce")
    c.send(b"MAIL FROM:<>\r\nRCPT TO:<" + address.encode() + b">\r\nDATA\r\n")
    assert [c.reply()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    c.send(data + b".\r\n")
    assert c.reply().startswith(b"250 2.0.0 <" + address.encode() + b"> delivered as ")
    assert "origin@remote.test" in server.cli("queue", "list").stdout
