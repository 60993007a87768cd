"""What other protocols do shows in an IMAP session (RFC 9051 §7): an SMTP delivery appears
as EXISTS (at NOOP and in IDLE), a POP3 deletion as EXPUNGE."""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import CourrielServer

MESSAGE = b"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: %s\r\n\r\nhello\r\n"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[CourrielServer]:
    with CourrielServer(tmp_path, plaintext_auth=True, only=("smtp", "imap", "pop3")) as s:
        yield s


def deliver(srv: CourrielServer, subject: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=30) as smtp:
        smtp.sendmail("bob@example.test", ["alice@example.test"], MESSAGE % subject)


def untagged(conn: imaplib.IMAP4, kind: str) -> list[bytes]:
    return [r for r in conn.untagged_responses.pop(kind, []) if r is not None]


def test_smtp_delivery_and_pop3_deletion_reach_an_imap_session(srv: CourrielServer) -> None:
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=30)
    imap.login("alice@example.test", "alice-pw")
    typ, data = imap.select("INBOX")
    assert typ == "OK" and data == [b"0"]
    deliver(srv, b"one")
    deliver(srv, b"two")
    imap.noop()
    assert untagged(imap, "EXISTS")[-1] == b"2"
    # POP3 deletes the first message; the IMAP session learns it as an EXPUNGE at NOOP.
    pop = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=30)
    pop.user("alice@example.test")
    pop.pass_("alice-pw")
    assert pop.stat()[0] == 2
    pop.dele(1)
    pop.quit()
    imap.noop()
    assert untagged(imap, "EXPUNGE") == [b"1"]
    typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"Subject: two" in data[0][1]  # type: ignore[index]
    imap.logout()


def test_smtp_delivery_shows_in_idle(srv: CourrielServer) -> None:
    with socket.create_connection(("127.0.0.1", srv.port("imap")), timeout=30) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"* OK")
        s.sendall(b"a LOGIN alice@example.test alice-pw\r\n")
        while not f.readline().startswith(b"a OK"):
            pass
        s.sendall(b"b SELECT INBOX\r\n")
        while not f.readline().startswith(b"b OK"):
            pass
        s.sendall(b"c IDLE\r\n")
        assert f.readline().startswith(b"+ ")
        deliver(srv, b"while idling")
        assert f.readline() == b"* 1 EXISTS\r\n"
        s.sendall(b"DONE\r\n")
        line = f.readline()
        while not line.startswith(b"c "):
            line = f.readline()
        assert line.startswith(b"c OK")
