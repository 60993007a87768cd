"""Sieve at delivery, end to end: scripts installed over ManageSieve (sievelib), mail sent
with smtplib, results read over IMAP and from the outbound queue."""

from __future__ import annotations

import smtplib

import pytest

from tests.harness import CourrielServer
from tests.sieve.conftest import install, mailbox, message, queue, send, subjects


def test_fileinto_create_flags_and_variables(server: CourrielServer) -> None:
    install(server, "alice@example.test", r"""
require ["fileinto", "mailbox", "imap4flags", "variables"];
if header :matches "subject" "*[*]*" {
    fileinto :create :flags ["\\Flagged", "$list"] "lists/${2}";
    stop;
}
if header :contains "subject" "archive me" {
    addflag "\\Seen";
    fileinto "Archive";
}
""")  # fmt: skip
    send(server, message("news [project-x] weekly"), ["alice@example.test"])
    send(server, message("please archive me"), ["alice@example.test"])
    send(server, message("plain"), ["alice@example.test"])
    (flags, msg), = mailbox(server, "alice@example.test", "lists/project-x")
    assert b"\\Flagged" in flags and b"$list" in flags and b"news [project-x] weekly" in msg
    (flags, msg), = mailbox(server, "alice@example.test", "Archive")
    assert b"\\Seen" in flags and b"please archive me" in msg
    assert "plain" in subjects(server, "alice@example.test", "INBOX")
    assert "news [project-x] weekly" not in subjects(server, "alice@example.test", "INBOX")


def test_copy_keeps_the_implicit_keep(server: CourrielServer) -> None:
    install(server, "bob@example.test", 'require ["fileinto", "copy"]; fileinto :copy "Archive";')
    send(server, message("copied", to="bob@example.test"), ["bob@example.test"])
    assert "copied" in subjects(server, "bob@example.test", "INBOX")
    assert "copied" in subjects(server, "bob@example.test", "Archive")


def test_envelope_relational_body_date_index(server: CourrielServer) -> None:
    install(server, "carol@example.test", r"""
require ["fileinto", "envelope", "relational", "body", "date", "index", "comparator-i;ascii-numeric"];
if envelope :domain :is "from" "partner.example" { fileinto "Archive"; stop; }
if address :count "ge" ["to", "cc"] "3" { fileinto "Drafts"; stop; }
if body :text :contains "invoice" { fileinto "Sent"; stop; }
if date :zone "+0000" "date" "year" "1999" { fileinto "Trash"; stop; }
if header :index 1 :last :value "gt" :comparator "i;ascii-numeric" "x-score" "50" { discard; }
""")  # fmt: skip
    to = "carol@example.test"
    send(server, message("from partner", to=to), [to], sender="x@partner.example")
    send(server, message("crowd", to=to, extra="Cc: a@x.test, b@x.test\r\n"), [to])
    send(server, message("pay", to=to, body="the invoice is attached"), [to])
    old = message("old", to=to).replace(b"Date: Sun, 29 Nov 2026", b"Date: Fri, 31 Dec 1999")
    send(server, old, [to])
    send(server, message("high score", to=to, extra="X-Score: 10\r\nX-Score: 99\r\n"), [to])
    send(server, message("low score", to=to, extra="X-Score: 99\r\nX-Score: 10\r\n"), [to])
    assert subjects(server, to, "Archive") == ["from partner"]
    assert subjects(server, to, "Drafts") == ["crowd"]
    assert subjects(server, to, "Sent") == ["pay"]
    assert subjects(server, to, "Trash") == ["old"]
    assert subjects(server, to, "INBOX") == ["low score"]  # "high score" was discarded


def test_redirect_goes_through_the_queue(server: CourrielServer) -> None:
    install(server, "dave@example.test", 'if header :contains "subject" "fwd" { redirect "dave@elsewhere.example"; }')
    data = message("fwd this", to="dave@example.test")
    send(server, data, ["dave@example.test"], sender="origin@example.org")
    assert "fwd this" not in subjects(server, "dave@example.test", "INBOX")
    (item, body), = [(q, b) for q, b in queue(server) if q.recipients[0].address == "dave@elsewhere.example"]
    assert item.mail_from == "origin@example.org"  # RFC 5228 §4.2: the envelope sender is kept
    assert body.endswith(data) and not body.startswith(b"Return-Path:")
    # A redirect to the script's own address would loop: the message is kept instead.
    install(server, "dave@example.test", 'redirect "dave@example.test";')
    send(server, message("to myself", to="dave@example.test"), ["dave@example.test"])
    assert "to myself" in subjects(server, "dave@example.test", "INBOX")
    assert not [q for q, _ in queue(server) if q.recipients[0].address == "dave@example.test"]


def test_reject_notice_and_ereject_in_smtp(server: CourrielServer) -> None:
    install(server, "erin@example.test", r"""
require ["reject", "ereject"];
if header :contains "subject" "soft" { reject "I do not want this."; }
if header :contains "subject" "hard" { ereject "Not accepted here."; }
""")  # fmt: skip
    to = "erin@example.test"
    send(server, message("soft one", to=to), [to], sender="rejected@example.org")
    (item, body), = [(q, b) for q, b in queue(server) if q.recipients[0].address == "rejected@example.org"]
    assert item.mail_from == ""  # a notice has the null sender
    assert b"multipart/report" in body and b"I do not want this." in body and b"Subject: soft one" in body
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(server, message("hard one", to=to), [to])
    assert info.value.smtp_code == 550 and b"5.7.1 Not accepted here." in info.value.smtp_error
    assert subjects(server, to, "INBOX") == []


def test_vacation_once_per_sender_never_to_lists_or_bounces(server: CourrielServer) -> None:
    install(server, "frank@example.test", r"""
require "vacation";
vacation :days 7 :subject "Away" :addresses ["f@example.test"] "I am away until Monday.";
""")  # fmt: skip
    to = "frank@example.test"
    first = message("one", to=to)
    send(server, first, [to], sender="pal@example.org")
    send(server, message("two", to=to), [to], sender="pal@example.org")
    send(server, message("three", to="f@example.test"), [to], sender="other@example.org")
    send(server, message("list", to=to, extra="List-Id: <l.example.org>\r\n"), [to], sender="list@example.org")
    send(server, message("bulk", to=to, extra="Precedence: bulk\r\n"), [to], sender="bulk@example.org")
    send(server, message("auto", to=to, extra="Auto-Submitted: auto-replied\r\n"), [to], sender="bot@example.org")
    send(server, message("bounce", to=to), [to], sender="")
    send(server, message("not for me", to="someone@example.org"), [to], sender="bcc@example.org")
    replies = [(q, b) for q, b in queue(server) if b"I am away until Monday." in b]
    assert sorted(q.recipients[0].address for q, _ in replies) == ["other@example.org", "pal@example.org"]
    for item, body in replies:
        assert item.mail_from == ""  # RFC 5230 §5.1
        assert b"Auto-Submitted: auto-replied" in body and b"Subject: Away" in body
    pal = next(b for q, b in replies if q.recipients[0].address == "pal@example.org")
    first_id = first.split(b"Message-ID: ")[1].split(b"\r\n")[0]
    assert b"In-Reply-To: " + first_id in pal
    # Vacation never cancels the implicit keep.
    assert len(subjects(server, to, "INBOX")) == 8


def test_script_errors_never_lose_mail(server: CourrielServer) -> None:
    to = "alice@example.test"
    install(server, to, 'require ["fileinto", "reject"]; fileinto "Archive"; reject "both";', name="broken")
    send(server, message("runtime error"), [to])
    assert "runtime error" in subjects(server, to, "INBOX")
    assert "runtime error" not in subjects(server, to, "Archive")
    install(server, to, 'require "fileinto"; fileinto "No/Such/Box";', name="missing")
    send(server, message("missing box"), [to])
    assert "missing box" in subjects(server, to, "INBOX")
    assert any("script failed, message kept in INBOX" in line for line in server.stderr)
    assert any("no such mailbox, filed into INBOX" in line for line in server.stderr)
