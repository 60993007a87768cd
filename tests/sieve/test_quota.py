"""Quotas: the CLI sets them; SMTP answers 452 4.2.2 (full now) or 552 5.2.2 (can never fit);
IMAP APPEND and COPY answer NO [OVERQUOTA]."""

from __future__ import annotations

import imaplib
import smtplib

import pytest

from tests.harness import CourrielServer
from tests.sieve.conftest import imap, message, send, subjects

USER = "quota@example.test"


def test_quota_cli_smtp_and_imap(server: CourrielServer) -> None:
    out = server.cli("user", "quota", USER, "--bytes", "4000", "--messages", "2").stdout
    assert "bytes 0/4000" in out and "messages 0/2" in out
    send(server, message("q1", to=USER), [USER])
    send(server, message("q2", to=USER), [USER])
    assert "messages 2/2" in server.cli("user", "quota", USER).stdout
    # Full for now: the message count quota is reached (temporary, RFC 3463 4.2.2).
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        send(server, message("q3", to=USER), [USER])
    code, text = info.value.recipients[USER]
    assert code == 452 and text.startswith(b"4.2.2")
    # Larger than the whole quota: it never fits (permanent 5.2.2), seen from SIZE at RCPT.
    server.cli("user", "quota", USER, "--messages", "0")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        send(server, message("huge", to=USER, body="x" * 5000), [USER])
    code, text = info.value.recipients[USER]
    assert code == 552 and text.startswith(b"5.2.2")
    assert subjects(server, USER, "INBOX") == ["q1", "q2"]

    conn = imap(server, USER)
    try:
        typ, data = conn.append("INBOX", None, None, message("appended", to=USER, body="y" * 3900))
        assert typ == "NO" and b"[OVERQUOTA]" in data[0]
        server.cli("user", "quota", USER, "--messages", "2")
        conn.select("INBOX")
        typ, data = conn.copy("1:2", "Archive")
        assert typ == "NO" and b"[OVERQUOTA]" in data[0]
    except imaplib.IMAP4.error as exc:  # imaplib raises on NO for some commands
        assert "OVERQUOTA" in str(exc)
        raise
    finally:
        conn.logout()


def test_quota_cli_refuses_unknown_user_and_negative(server: CourrielServer) -> None:
    with pytest.raises(RuntimeError, match="no user"):
        server.cli("user", "quota", "nobody@example.test", "--bytes", "1")
    with pytest.raises(RuntimeError, match="0 \\(unlimited\\) or positive"):
        server.cli("user", "quota", USER, "--bytes", "-1")


def test_quota_at_data_without_size(server: CourrielServer) -> None:
    """Without SIZE at MAIL, the quota is found at DATA: 552 5.2.2 when the message can never
    fit, 452 4.2.2 when it would fit an emptier mailbox."""
    user = "gina@example.test"
    server.cli("user", "quota", user, "--bytes", "3000", "--messages", "0")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail("bob@example.org")[0] == 250  # no SIZE parameter
        assert smtp.rcpt(user)[0] == 250
        code, text = smtp.data(message("too big", to=user, body="z" * 4000))
        assert code == 552 and text.startswith(b"5.2.2")
        send(server, message("fits", to=user, body="a" * 1500), [user])
        smtp.rset()
        assert smtp.mail("bob@example.org")[0] == 250
        assert smtp.rcpt(user)[0] == 250  # 1.7 KB used: a message of unknown size may still fit
        code, text = smtp.data(message("fits later", to=user, body="b" * 1500))
        assert code == 452 and text.startswith(b"4.2.2")
    server.cli("user", "quota", user, "--bytes", "0")
