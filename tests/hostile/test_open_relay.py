"""Every known relay trick, refused without AUTH; relaying works with it (sanity).

The rule (RFC 5321 §3.6.1, §7.1; docs/ARCHITECTURE.md "Relay policy"): only the domain
part decides where mail goes. A local part is opaque to everyone but the domain's own host
(§2.3.11, §4.1.2), so ``%``, ``!`` and quoted ``@`` in it are never interpreted as a further
hop: in a local domain such an address is looked up as it is (unknown: 550 5.1.1; a
catch-all takes it like any other name, into a local mailbox). A source route is ignored and
the final mailbox used (§4.1.2 and Appendix C), so it is relaying to that mailbox's domain.
Domains are case-insensitive (§2.4) and a trailing dot only marks the name absolute. Address
literals and IDN forms are other domains unless configured as local. After every attempt
the outbound queue is empty: nothing was accepted for a remote host.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import CourrielServer
from tests.hostile.conftest import GOOD, Raw, inbox, queue_size

RELAY_DENIED = b"554 5.7.1 Relay access denied\r\n"
UNKNOWN = b"550 5.1.1 User unknown\r\n"
BAD_LOCAL = b"501 5.1.3 Bad local part syntax\r\n"


@pytest.fixture(scope="module")
def srv(shared: CourrielServer) -> CourrielServer:
    return shared


@pytest.fixture
def queued(srv: CourrielServer) -> Iterator[None]:
    """Nothing may be queued for a remote host by the test."""
    before = queue_size(srv)
    yield
    assert queue_size(srv) == before


#: (recipient as sent, the MX's reply without AUTH, why)
CASES: list[tuple[bytes, bytes, str]] = [
    (b"user%remote.example@example.test", UNKNOWN, "percent hack: % is part of a local name"),
    (b"user%remote.example%other.example@example.test", UNKNOWN, "percent hack, two hops"),
    (b'"user@remote.example"@example.test', UNKNOWN, "quoted @ is part of a local name"),
    (b'"user%remote.example"@example.test', UNKNOWN, "quoted percent hack"),
    (b'"user@remote.example"', b"501 5.1.3 Bad quoted local part\r\n", "quoted @ and no domain"),
    (b"user@remote.example@example.test", BAD_LOCAL, "two @: not an RFC 5321 Mailbox"),
    (b"user@example.test@remote.example", BAD_LOCAL, "two @, the other way"),
    (b"remote.example!user@example.test", UNKNOWN, "bang path: ! is part of a local name"),
    (b"remote.example!user", b"501 5.1.3 Bad address syntax: an address needs local@domain\r\n", "bare bang path"),
    (b"@example.test:user@remote.example", RELAY_DENIED, "source route: the final mailbox is remote"),
    (b"@example.test,@mail.example.test:user@remote.example", RELAY_DENIED, "source route with two hops"),
    (b"user@remote.example%example.test", b"501 5.1.2 Bad domain syntax\r\n", "percent in the domain"),
    (b"user@[127.0.0.1]", RELAY_DENIED, "IPv4 address literal (no local literal configured)"),
    (b"user@[IPv6:::1]", RELAY_DENIED, "IPv6 address literal"),
    (b"user@[10.0.0.1]", RELAY_DENIED, "address literal of another host"),
    (b"user@REMOTE.EXAMPLE", RELAY_DENIED, "upper-case remote domain"),
    (b"user@remote.example.", RELAY_DENIED, "remote domain with a trailing dot"),
    (b"user@Example.Test.", UNKNOWN, "local domain, mixed case and trailing dot: still local"),
    (b"user@mail.example.test", RELAY_DENIED, "our host name is not a mail domain"),
    (b"user@localhost", RELAY_DENIED, "localhost is not a local domain"),
    (b"user@xn--rmote-fsa.example", RELAY_DENIED, "IDN (punycode) remote domain"),
    (b"user@xn--exmple-cua.test", RELAY_DENIED, "punycode look-alike of the local domain"),
    ("user@rémote.example".encode(), b"553 5.6.7 Non-ASCII address without SMTPUTF8\r\n", "UTF-8 without SMTPUTF8"),
    (b"SRS0=AAAA=AB=remote.example=user@example.test", UNKNOWN, "forged SRS address"),
]


@pytest.mark.parametrize(("rcpt", "expected", "why"), CASES, ids=[c[2] for c in CASES])
def test_relay_tricks_refused_on_the_mx(srv: CourrielServer, queued: None, rcpt: bytes, expected: bytes, why: str) -> None:
    c = Raw(srv.port("smtp"))
    assert c.smtp_reply().startswith(b"220 ")
    assert c.cmd(b"EHLO attacker.test\r\n").startswith(b"250-")
    assert c.cmd(b"MAIL FROM:<spammer@remote.example>\r\n") == b"250 2.1.0 Sender OK\r\n"
    assert c.cmd(b"RCPT TO:<" + rcpt + b">\r\n") == expected, why
    # Without an accepted recipient there is no transaction to send.
    assert c.cmd(b"DATA\r\n") == b"554 5.5.1 No valid recipients\r\n"
    assert c.cmd(b"QUIT\r\n") == b"221 2.0.0 Bye\r\n"
    c.close()


def test_utf8_domains_with_smtputf8(srv: CourrielServer, queued: None) -> None:
    """RFC 6531: with SMTPUTF8 an IDN is a domain like any other: remote, so refused."""
    c = Raw(srv.port("smtp"))
    c.smtp_reply()
    c.cmd(b"EHLO attacker.test\r\n")
    assert c.cmd(b"MAIL FROM:<spammer@remote.example> SMTPUTF8\r\n") == b"250 2.1.0 Sender OK\r\n"
    for rcpt in ("user@rémote.example", "user@exämple.test", "user@ｅxample.test", "üser@REMOTE.example"):
        assert c.cmd(b"RCPT TO:<" + rcpt.encode() + b">\r\n") == RELAY_DENIED, rcpt
    c.close()


def test_accepted_tricks_stay_local(srv: CourrielServer, queued: None) -> None:
    """What is accepted goes to a local mailbox only: a catch-all takes a percent-hack name
    like any other; a local domain in another case with a trailing dot is that domain."""
    c = Raw(srv.port("smtp"))
    c.smtp_reply()
    c.cmd(b"EHLO attacker.test\r\n")
    assert c.cmd(b"MAIL FROM:<spammer@remote.example>\r\n") == b"250 2.1.0 Sender OK\r\n"
    for rcpt in (
        b"user%remote.example@catchall.test",
        b'"user@remote.example"@catchall.test',
        b"remote.example!user@CATCHALL.test",
        b"good@EXAMPLE.TEST.",
        b"@remote.example:good@example.test",  # a source route to a local mailbox: local
    ):
        assert c.cmd(b"RCPT TO:<" + rcpt + b">\r\n") == b"250 2.1.5 Recipient OK\r\n", rcpt
    assert c.cmd(b"RCPT TO:<user@remote.example>\r\n") == RELAY_DENIED
    assert c.cmd(b"DATA\r\n").startswith(b"354 ")
    body = b"Subject: relay-local-only\r\n\r\nx\r\n"
    assert c.cmd(body + b".\r\n").startswith(b"250 2.0.0 OK")
    c.close()
    # One copy in good's INBOX (all five recipients resolve to it).
    assert sum(m.endswith(body) for m in inbox(srv, GOOD)) == 1


def test_submission_without_auth(srv: CourrielServer, queued: None) -> None:
    """RFC 6409 §4.1: no transaction at all before AUTH, whatever the recipient."""
    c = Raw(srv.port("submission"))
    c.smtp_reply()
    c.cmd(b"EHLO attacker.test\r\n")
    for rcpt, _, _ in CASES[:6]:
        assert c.cmd(b"RCPT TO:<" + rcpt + b">\r\n") == b"503 5.5.1 Bad sequence of commands: RCPT not allowed now\r\n"
    assert c.cmd(b"MAIL FROM:<alice@example.test>\r\n") == b"530 5.7.0 Authentication required\r\n"
    assert c.cmd(b"MAIL FROM:<>\r\n") == b"530 5.7.0 Authentication required\r\n"
    assert c.cmd(b"RCPT TO:<user@remote.example>\r\n").startswith(b"503 5.5.1 ")
    c.close()


def test_relaying_with_auth(srv: CourrielServer) -> None:
    """Sanity: authenticated, remote recipients are queued; the tricks still resolve
    locally (AUTH does not turn a local part into a route)."""
    import base64

    before = queue_size(srv)
    c = Raw(srv.port("submission"))
    c.smtp_reply()
    c.cmd(b"EHLO good.test\r\n")
    assert c.cmd(b"AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0alice-pw") + b"\r\n").startswith(b"235 ")
    assert c.cmd(b"MAIL FROM:<alice@example.test>\r\n") == b"250 2.1.0 Sender OK\r\n"
    assert c.cmd(b"RCPT TO:<user%remote.example@example.test>\r\n") == UNKNOWN
    assert c.cmd(b"RCPT TO:<user@Remote.Example.>\r\n") == b"250 2.1.5 Recipient OK\r\n"
    assert c.cmd(b"DATA\r\n").startswith(b"354 ")
    msg = b"From: alice@example.test\r\nTo: user@remote.example\r\nSubject: relayed\r\n\r\nhi\r\n"
    assert c.cmd(msg + b".\r\n").startswith(b"250 2.0.0 OK")
    c.close()
    listing = srv.cli("queue", "list").stdout
    assert "user@remote.example" in listing
    assert queue_size(srv) == before + 1
