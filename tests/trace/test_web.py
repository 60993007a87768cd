"""The journey page on the http listener, in Debian's Chromium (Playwright): logged in to the
webmail, a message submitted by SMTP and fetched by IMAP shows its steps as a timeline, links
to the redacted transcripts, loads without a CSP violation; other users' messages and
anonymous requests get nothing. Screenshots: tests/trace/artifacts/."""

from __future__ import annotations

import asyncio
import imaplib
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, expect

from tests.harness import CourrielServer, open_data_store
from tests.outbound.conftest import wait_for
from tests.webmail.browser import browser, log_in
from tests.webmail.helpers import base_url, login

ARTIFACTS = Path(__file__).parent / "artifacts"
USERS = {"alice@example.test": "alice-pw", "bob@example.test": "bob-pw"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    env = {"COURRIEL_TRACE_USERS": "alice@example.test"}
    with CourrielServer(tmp_path_factory.mktemp("journey-web"), users=dict(USERS), plaintext_auth=True, env=env) as s:
        yield s


async def _locate(data: Path, address: str, subject: str) -> tuple[int, int] | None:
    store = await open_data_store(data)
    try:
        user = await store.get_user(address)
        assert user is not None
        for m in await store.account_messages(user.id):
            records = await store.get_records(m.mailbox_id, [m.uid])
            if records and records[0].subject == subject:
                return m.mailbox_id, m.uid
        return None
    finally:
        await store.close()


@pytest.fixture(scope="module")
def message(srv: CourrielServer) -> tuple[int, int]:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.test", "alice@example.test", "Note to self"
    msg["Message-ID"] = "<note-1@example.test>"
    msg.set_content("a body that no transcript shows\n")
    with smtplib.SMTP("127.0.0.1", srv.port("submission")) as smtp:
        smtp.login("alice@example.test", "alice-pw")
        smtp.send_message(msg)
    where: tuple[int, int] = wait_for(lambda: asyncio.run(_locate(srv.data, "alice@example.test", "Note to self")),
                                      what="delivery")  # fmt: skip
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    imap.login("alice@example.test", "alice-pw")
    imap.select("INBOX")
    imap.fetch("1:*", "(BODY.PEEK[])")
    imap.logout()
    return where


def test_page_in_chromium(srv: CourrielServer, message: tuple[int, int]) -> None:
    mailbox_id, uid = message
    url = f"{base_url(srv)}/journey/{mailbox_id}/{uid}"
    client = login(srv)
    try:
        wait_for(lambda: any(s["step"] == 5 for s in client.get(url + "/json").json()["steps"]), what="the retrieval")
    finally:
        client.close()
    with browser() as chrome:
        context = chrome.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        violations: list[str] = []

        def on_console(msg: ConsoleMessage) -> None:
            if "Content Security Policy" in msg.text or (msg.type == "error" and "Refused" in msg.text):
                violations.append(msg.text)

        page.on("console", on_console)
        log_in(page, srv)
        page.goto(url)
        expect(page.locator("h1")).to_contain_text("Note to self")
        cards = page.locator(".step h2")
        expect(cards).to_have_text(["submission to the sender's MTA", "local delivery", "retrieval by IMAP"])
        expect(page.locator(".step-1")).to_contain_text("authenticated as alice@example.test")
        expect(page.locator(".step-3")).to_contain_text("INBOX")
        # Styled by our stylesheet (no inline style under the CSP): the cards have a border.
        assert page.locator(".card").first.evaluate("e => getComputedStyle(e).borderLeftWidth") == "5px"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "journey.png"), full_page=True)
        page.locator(".step-5 a", has_text="transcript").click()
        expect(page.locator("h1")).to_contain_text("transcript")
        expect(page.locator(".transcript")).to_contain_text("<redacted")
        expect(page.locator(".transcript")).to_contain_text("Subject: Note to self")
        assert "no transcript shows" not in page.content() and "alice-pw" not in page.content()
        page.screenshot(path=str(ARTIFACTS / "journey-transcript.png"), full_page=True)
        context.close()
    assert not violations, violations


def test_access_control(srv: CourrielServer, message: tuple[int, int]) -> None:
    mailbox_id, uid = message
    path = f"/journey/{mailbox_id}/{uid}"
    anonymous = httpx.get(base_url(srv) + path, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    bob, alice = login(srv, "bob@example.test", "bob-pw"), login(srv)
    try:
        for suffix in ("", "/json", "/transcript/0"):
            assert bob.get(path + suffix).status_code == 404
        r = alice.get(path)
        assert r.status_code == 200 and "script-src" not in r.headers["content-security-policy"]
        assert "<script" not in r.text
        assert alice.get(path + "/transcript/99").status_code == 404
    finally:
        bob.close()
        alice.close()
    basic = httpx.get(base_url(srv) + path + "/json", auth=("alice@example.test", "alice-pw"))
    assert basic.status_code == 200 and basic.json()["message_id"] == "note-1@example.test"
