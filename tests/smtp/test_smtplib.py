"""Python's smtplib against the three listeners; every message read back byte-exact."""

from __future__ import annotations

import smtplib

import pytest

from tests.harness import CourrielServer
from tests.smtp.conftest import client_tls, delivered, queued, unique


def test_mx_plain(server: CourrielServer) -> None:
    msg = unique("mx plain") + b".leading dot\r\n..two dots\r\n"
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as c:
        assert c.sendmail("sender@remote.test", ["alice@example.test"], msg) == {}
    trace, _ = delivered(server, "alice@example.test", msg)
    assert trace[0] == b"Return-Path: <sender@remote.test>\r\n"
    received = trace[1].decode()
    assert received.startswith("Received: from ")
    assert "by mail.example.test (courriel) with ESMTP id " in received
    assert "for <alice@example.test>; " in received
    assert "using" not in received and "authenticated" not in received


def test_mx_starttls(server: CourrielServer) -> None:
    msg = unique("mx tls")
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as c:
        c.starttls(context=client_tls())
        assert c.sendmail("sender@remote.test", ["bob@example.test"], msg) == {}
    received = delivered(server, "bob@example.test", msg)[0][1].decode()
    assert " with ESMTPS id " in received
    assert "(using TLSv1.3 with cipher TLS_" in received


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_submission_starttls_auth(server: CourrielServer, mechanism: str) -> None:
    msg = unique(f"submission {mechanism}")
    with smtplib.SMTP("127.0.0.1", server.port("submission")) as c:
        c.starttls(context=client_tls())
        c.ehlo()
        c.user, c.password = "alice@example.test", "alice-pw"
        code, _ = c.auth(mechanism, getattr(c, f"auth_{mechanism.lower()}"))
        assert code == 235
        assert c.sendmail("alice@example.test", ["bob@example.test"], msg) == {}
    received = delivered(server, "bob@example.test", msg)[0][1].decode()
    assert " with ESMTPSA id " in received
    assert "(authenticated as alice@example.test)" in received


def test_submissions_implicit_tls(server: CourrielServer) -> None:
    msg = unique("submissions", "bob@example.test")
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), context=client_tls()) as c:
        c.login("bob@example.test", "bob-pw")
        assert c.sendmail("bob@example.test", ["alice@example.test", "carol@example.test"], msg) == {}
    for user in ("alice", "carol"):
        received = delivered(server, f"{user}@example.test", msg)[0][1].decode()
        assert "(using TLSv1.3" in received and "(authenticated as bob@example.test)" in received
        assert " for <" not in received  # several recipients: not named


def test_wrong_password(server: CourrielServer) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), context=client_tls()) as c:
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            c.login("bob@example.test", "wrong")
        assert info.value.smtp_code == 535
        c.login("bob@example.test", "bob-pw")  # a success clears the address's record


def test_smtputf8(server: CourrielServer) -> None:
    server.cli("alias", "add", "jörg@example.test", "carol@example.test")
    msg = "From: Jörg <jörg@example.test>\r\nTo: carol@example.test\r\nSubject: grüße\r\n\r\nÜber alles\r\n".encode()
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as c:
        c.ehlo()
        assert c.has_extn("smtputf8")
        assert c.sendmail("jörg@bücher.test", ["jörg@example.test"], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"]) == {}
    trace, _ = delivered(server, "carol@example.test", msg)
    assert trace[0] == "Return-Path: <jörg@bücher.test>\r\n".encode()
    assert " with UTF8SMTP id " in trace[1].decode()


def test_remote_recipients_are_queued(server: CourrielServer) -> None:
    msg = unique("queued", "carol@example.test")
    with smtplib.SMTP("127.0.0.1", server.port("submission")) as c:
        c.starttls(context=client_tls())
        c.login("carol@example.test", "carol-pw")
        refused = c.sendmail(
            "carol@example.test",
            ["far@remote.test", "alice@example.test", "sales@example.test"],
            msg,
            mail_options=["RET=HDRS", "ENVID=env+2B1"],
            rcpt_options=["NOTIFY=SUCCESS,FAILURE"],
        )
        assert refused == {}
    delivered(server, "alice@example.test", msg)
    delivered(server, "carol@example.test", msg)  # sales@ expands to carol and partner@remote.test
    block = queue_entry(server.cli("queue", "list").stdout, "envid=env+1")
    assert "from <carol@example.test>" in block[0] and "ret=HDRS" in block[0] and "auth=carol@example.test" in block[0]
    assert block[1:] == [
        "\t<far@remote.test>\tqueued\tattempts 0\tnotify=SUCCESS,FAILURE",
        # an alias's external target keeps the original recipient (RFC 3461 §4.2)
        "\t<partner@remote.test>\tqueued\tattempts 0\tnotify=SUCCESS,FAILURE orcpt=rfc822;sales@example.test",
    ]
    qid = int(block[0].split("\t", 1)[0])
    server.cli("queue", "delete", str(qid))
    assert f"{qid}\t" not in server.cli("queue", "list").stdout


def test_orcpt_kept(server: CourrielServer) -> None:
    with smtplib.SMTP_SSL("127.0.0.1", server.port("submissions"), context=client_tls()) as c:
        c.login("bob@example.test", "bob-pw")
        c.ehlo()
        assert c.mail("bob@example.test", ["ENVID=orcpt-test"])[0] == 250
        assert c.rcpt("x@remote.test", ["ORCPT=rfc822;first+2Bx@remote.test", "NOTIFY=NEVER"])[0] == 250
        msg = unique("orcpt", "bob@example.test")
        assert c.data(msg)[0] == 250
    (entry, data), = [(m, d) for m, d in queued(server) if m.envid == "orcpt-test"]
    assert entry.mail_from == "bob@example.test" and entry.size == len(data)
    assert data.startswith(b"Received: from ") and data.endswith(b"\r\n" + msg)  # no Return-Path yet
    assert b"Return-Path" not in data
    block = queue_entry(server.cli("queue", "list").stdout, "envid=orcpt-test")
    assert block[1:] == ["\t<x@remote.test>\tqueued\tattempts 0\tnotify=NEVER orcpt=rfc822;first+x@remote.test"]


def queue_entry(listing: str, marker: str) -> list[str]:
    lines = listing.splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line)
    end = start + 1
    while end < len(lines) and lines[end].startswith("\t"):
        end += 1
    return lines[start:end]


def test_alias_to_remote_is_queued_without_auth(server: CourrielServer) -> None:
    """A local alias may forward outside: the recipient was local, so this is no relay."""
    msg = unique("forwarded")
    with smtplib.SMTP("127.0.0.1", server.port("smtp")) as c:
        assert c.sendmail("someone@remote.test", ["sales@example.test"], msg) == {}
    delivered(server, "carol@example.test", msg)
    assert "<partner@remote.test>\tqueued" in server.cli("queue", "list").stdout
