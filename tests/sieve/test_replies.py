"""Vacation decisions and the messages Sieve sends (pure functions)."""

from __future__ import annotations

import pytest

from courriel.sieve.interpreter import Vacation
from courriel.sieve.message import MessageView
from courriel.sieve.replies import (
    rejection_notice,
    vacation_days,
    vacation_handle,
    vacation_reply,
    vacation_skip_reason,
)

USER = "alice@example.test"
MSG = b"From: bob@example.org\r\nTo: alice@example.test\r\nSubject: Hi\r\nMessage-ID: <m1@example.org>\r\n\r\nbody\r\n"


def vac(**kw: object) -> Vacation:
    args: dict[str, object] = dict(reason="Away", days=7, subject=None, from_=None, addresses=(), mime=False, handle=None)
    args.update(kw)
    return Vacation(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sender", "extra", "to", "reason"),
    [
        ("bob@example.org", b"", USER, None),
        ("", b"", USER, "null or invalid sender"),
        ("MAILER-DAEMON@example.org", b"", USER, "sender is a list or system address"),
        ("owner-list@example.org", b"", USER, "sender is a list or system address"),
        ("list-request@example.org", b"", USER, "sender is a list or system address"),
        ("alice@example.test", b"", USER, "sender is the user"),
        ("bob@example.org", b"Auto-Submitted: auto-generated\r\n", USER, "message is auto-submitted"),
        ("bob@example.org", b"Auto-Submitted: no\r\n", USER, None),
        ("bob@example.org", b"List-Unsubscribe: <mailto:x@y>\r\n", USER, "message is from a list"),
        ("bob@example.org", b"Precedence: junk\r\n", USER, "message is bulk"),
        ("bob@example.org", b"", "someone@else.test", "user not named in To or Cc"),
    ],
)
def test_vacation_skip_reasons(sender: str, extra: bytes, to: str, reason: str | None) -> None:
    data = extra + b"From: bob@example.org\r\nTo: " + to.encode() + b"\r\nSubject: x\r\n\r\nx\r\n"
    assert vacation_skip_reason(MessageView(data), sender, USER, vac()) == reason


def test_addresses_count_as_the_users() -> None:
    data = b"To: Alias <alias@example.test>\r\n\r\nx"
    assert vacation_skip_reason(MessageView(data), "bob@example.org", USER, vac(addresses=("alias@example.test",))) is None


def test_days_and_handles() -> None:
    assert [vacation_days(vac(days=d)) for d in (0, 5, 9999)] == [1, 5, 365]
    assert vacation_handle(vac()) == vacation_handle(vac())
    assert vacation_handle(vac()) != vacation_handle(vac(reason="Other"))
    assert vacation_handle(vac(handle="h")) == vacation_handle(vac(handle="h", reason="Other"))


def test_reply_headers_and_from_restriction() -> None:
    reply = vacation_reply(MessageView(MSG), "bob@example.org", USER, vac(), "mx.example.test")
    assert b"\r\nTo: bob@example.org\r\n" in reply and b"\r\nSubject: Auto: Hi\r\n" in reply
    assert b"\r\nIn-Reply-To: <m1@example.org>\r\n" in reply and b"\r\nAuto-Submitted: auto-replied\r\n" in reply
    assert b"\r\nFrom: alice@example.test\r\n" in reply
    # RFC 5230 §4.4: :from must be the user's; someone else's address is not used.
    spoof = vacation_reply(MessageView(MSG), "bob@example.org", USER, vac(from_="ceo@bank.example"), "mx")
    assert b"ceo@bank.example" not in spoof
    own = vacation_reply(MessageView(MSG), "bob@example.org", USER, vac(from_="Alice <alice@example.test>"), "mx")
    assert b"From: Alice <alice@example.test>" in own


def test_mime_reason_is_the_body_entity() -> None:
    v = vac(mime=True, reason="Content-Type: text/html\r\n\r\n<p>Away</p>\r\n")
    reply = vacation_reply(MessageView(MSG), "bob@example.org", USER, v, "mx")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"Content-Type: text/html" in head and b"MIME-Version: 1.0" in head and body == b"<p>Away</p>\r\n"


def test_rejection_notice_is_a_dsn_with_the_header() -> None:
    notice = rejection_notice(MSG, "bob@example.org", USER, "Go away", "mx.example.test")
    assert b"multipart/report; report-type=delivery-status" in notice
    assert b"Final-Recipient: rfc822; alice@example.test\r\nAction: failed\r\nStatus: 5.7.1" in notice
    assert b"Go away" in notice and b"Message-ID: <m1@example.org>" in notice and b"\r\nbody\r\n" not in notice
