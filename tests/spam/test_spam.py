"""Spam filtering with a private rspamd: classification over SMTP (refused, Junk, INBOX),
the X-Spam header fields, and learning from moves into and out of Junk over IMAP."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
import time
import uuid
from collections.abc import Iterator

import pytest

from courriel.config import SpamSection
from courriel.delivery.spam import SpamFilter
from tests.harness import CourrielServer, free_port
from tests.spam.rspamd import JUNK_MARKER, Rspamd

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
USER = "alice@example.test"
#: How long learning may take to show in rspamd's statistics (a wait, not a timing assertion).
LEARN_DEADLINE = 60.0


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rspamd]:
    with Rspamd(tmp_path_factory.mktemp("rspamd")) as r:
        yield r


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, rspamd: Rspamd) -> Iterator[CourrielServer]:
    env = {
        "COURRIEL_SPAM_ENABLED": "true",
        "COURRIEL_SPAM_URL": rspamd.url,
        "COURRIEL_SPAM_CONTROLLER_URL": rspamd.controller_url,
        "COURRIEL_MAILAUTH_ENABLED": "false",
    }
    srv = CourrielServer(tmp_path_factory.mktemp("spam"), only=("smtp", "imap", "spam"), env=env, plaintext_auth=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def message(subject: str, body: str = "Hello, see you tomorrow at the meeting.") -> bytes:
    return (
        f"From: Bob <bob@example.org>\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def send(srv: CourrielServer, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp"), timeout=60) as smtp:
        smtp.sendmail("bob@example.org", [USER], data)


def fetch_all(srv: CourrielServer, box: str) -> list[bytes]:
    conn = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=30)
    try:
        conn.login(USER, "alice-pw")
        _, count = conn.select(box, readonly=True)
        if count[0] == b"0":
            return []
        _, data = conn.fetch("1:*", "(BODY.PEEK[])")
        return [item[1] for item in data if isinstance(item, tuple)]
    finally:
        conn.logout()


def test_gtube_is_refused_in_smtp(server: CourrielServer) -> None:
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(server, message("gtube", GTUBE))
    error = info.value.smtp_error
    assert info.value.smtp_code == 554 and isinstance(error, bytes) and error.startswith(b"5.7.1")


def test_junk_score_files_into_junk_with_headers(server: CourrielServer) -> None:
    send(server, message(f"offer {JUNK_MARKER}"))
    send(server, message("lunch"))
    (junk,) = [m for m in fetch_all(server, "Junk") if JUNK_MARKER.encode() in m]
    assert b"\r\nX-Spam: Yes\r\n" in junk and b"COURRIEL_JUNK_TEST" in junk
    (ham,) = [m for m in fetch_all(server, "INBOX") if b"Subject: lunch" in m]
    assert b"\r\nX-Spam: No\r\n" in ham and b"X-Spam-Score: " in ham


def _wait_learned(rspamd: Rspamd, count: int) -> int:
    deadline = time.monotonic() + LEARN_DEADLINE
    while (n := rspamd.learned()) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return n


def test_moves_into_and_out_of_junk_teach_rspamd(server: CourrielServer, rspamd: Rspamd) -> None:
    before = rspamd.learned()
    send(server, message("learn me", "Cheap watches, unbelievable prices, order today from our shop online."))
    conn = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        conn.login(USER, "alice-pw")
        conn.select("INBOX")
        _, data = conn.uid("SEARCH", "SUBJECT", '"learn me"')
        uid = data[0].split()[-1]
        assert conn.uid("MOVE", uid, "Junk")[0] == "OK"
        assert _wait_learned(rspamd, before + 1) == before + 1  # learned as spam
        conn.select("Junk")
        _, data = conn.uid("SEARCH", "SUBJECT", '"learn me"')
        assert conn.uid("MOVE", data[0].split()[-1], "INBOX")[0] == "OK"
        assert _wait_learned(rspamd, before + 2) == before + 2  # and back, as ham
        # A copy (no move) and a move into Trash teach nothing.
        conn.select("INBOX")
        _, data = conn.uid("SEARCH", "SUBJECT", '"learn me"')
        assert conn.uid("COPY", data[0].split()[-1], "Junk")[0] == "OK"
        assert conn.uid("MOVE", data[0].split()[-1], "Trash")[0] == "OK"
    finally:
        conn.logout()
    send(server, message("barrier"))  # the learner has seen the changes above by now
    assert rspamd.learned() == before + 2
    assert any("learned a message as spam" in line for line in server.stderr)
    assert any("learned a message as ham" in line for line in server.stderr)


def test_verdicts_from_scores_and_actions() -> None:
    f = SpamFilter(SpamSection(junk_score=6.0, reject_score=15.0))
    assert f.verdict({"score": 1.0, "action": "no action"}).junk is False
    assert f.verdict({"score": 6.5, "action": "no action"}).junk is True
    assert f.verdict({"score": 2.0, "action": "add header"}).junk is True
    v = f.verdict({"score": 20.0, "action": "reject", "required_score": 15, "symbols": {"B": {}, "A": {}}})
    assert v.reject and not v.junk and v.symbols == ("A", "B")
    assert v.header() == (
        b"X-Spam: Yes\r\nX-Spam-Score: 20.00\r\nX-Spam-Status: Yes, score=20.00 required=15.00 action=reject\r\n"
        b"X-Spam-Symbols: A, B\r\n"
    )
    never = SpamFilter(SpamSection(reject_score=0))
    assert not never.verdict({"score": 99.0, "action": "reject"}).reject


def test_rspamd_unreachable_lets_mail_through() -> None:
    port = free_port()
    f = SpamFilter(SpamSection(url=f"http://127.0.0.1:{port}", timeout=5))
    verdict = asyncio.run(f.check(b"Subject: x\r\n\r\nx\r\n", mail_from="a@b.test", rcpts=["c@d.test"], ip="127.0.0.1",
                                  helo="h", hostname="mx", queue_id="1"))  # fmt: skip
    assert verdict is None
    assert asyncio.run(f.learn(b"x", spam=True)) is False
