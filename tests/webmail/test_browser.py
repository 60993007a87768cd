"""The webmail in a real browser (Debian's Chromium, headless, driven by Playwright): log in,
read mail delivered over SMTP, reply with an attachment, move, search, live arrival, drafts,
keyboard shortcuts, the phone layout. Every page must load without a Content-Security-Policy
violation and without a request to another origin. Screenshots: tests/webmail/artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from playwright.sync_api import Browser, ConsoleMessage, FilePayload, Page, Request, expect

from tests.harness import CourrielServer
from tests.webmail.browser import log_in, shot
from tests.webmail.helpers import base_url, deliver, login, text_message

WAIT = 20_000  # ms: how long to wait for something to appear (never a timed assertion)
expect.set_options(timeout=WAIT)


@pytest.fixture
def page(chrome: Browser, srv: CourrielServer) -> Iterator[Page]:
    context = chrome.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT)
    pg = context.new_page()
    violations: list[str] = []
    foreign: list[str] = []
    origin = base_url(srv)

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text or (msg.type == "error" and "Refused" in msg.text):
            violations.append(msg.text)

    def on_request(req: Request) -> None:
        if not req.url.startswith(origin + "/"):
            foreign.append(req.url)

    pg.on("console", on_console)
    pg.on("request", on_request)
    log_in(pg, srv)
    yield pg
    context.close()
    assert not violations, violations
    assert not foreign, foreign


def open_folder(page: Page, name: str) -> None:
    page.locator("#folders a", has_text=name).first.click()
    page.wait_for_url("**/mail/box/*")


def test_login_and_read_a_message_delivered_over_smtp(page: Page, srv: CourrielServer) -> None:
    deliver(srv, "alice@example.test", text_message(
        "Lunch on Friday?", "Hello Alice,\n\nthe menu is at https://example.org/menu.\n\nCarol\n",
        sender="Carol <carol@remote.test>"))  # fmt: skip
    page.goto(base_url(srv) + "/mail/")
    row = page.locator("#messages .msg", has_text="Lunch on Friday?")
    expect(row).to_have_class(re.compile("unseen"))
    expect(page.locator("#folders .current .unread")).to_be_visible()
    shot(page, "list")
    row.locator("a.open").click()
    expect(page.locator("h1.subject")).to_have_text("Lunch on Friday?")
    expect(page.locator(".headers .from")).to_contain_text("Carol")
    body = page.locator("pre.body-text")
    expect(body).to_contain_text("the menu is at")
    link = body.locator("a")
    expect(link).to_have_attribute("href", "https://example.org/menu")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    shot(page, "read-text")
    page.keyboard.press("u")
    page.wait_for_url(re.compile(r"/mail/box/\d+$"))
    expect(page.locator("#messages .msg", has_text="Lunch on Friday?")).not_to_have_class(re.compile("unseen"))


def test_html_message_in_sandboxed_frame_with_inline_image(page: Page, srv: CourrielServer) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "News <news@remote.test>", "alice@example.test", "Newsletter"
    msg.set_content("text version")
    msg.add_alternative('<h2 style="color:#a00">Big news</h2><img src="cid:logo@x" alt="logo">'
                        '<img src="https://images.remote.test/pixel.gif">', subtype="html")  # fmt: skip
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082")  # fmt: skip
    html_part = msg.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    html_part.add_related(png, maintype="image", subtype="png", cid="<logo@x>")
    deliver(srv, "alice@example.test", msg.as_bytes().replace(b"\n", b"\r\n"))
    page.goto(base_url(srv) + "/mail/")
    loaded: list[int] = []
    page.on("response", lambda r: loaded.append(r.status) if "/part/" in r.url else None)
    page.locator("#messages .msg", has_text="Newsletter").locator("a.open").click()
    frame = page.frame_locator("#body-frame")
    expect(frame.locator("h2")).to_have_text("Big news")
    expect(frame.locator('img[alt="logo"]')).to_have_attribute("src", re.compile(r"^/mail/box/\d+/\d+/part/"))
    expect(page.locator(".remote-images")).to_contain_text("1 remote image blocked")
    expect(frame.locator('img[alt="logo"]')).to_be_visible()
    assert page.locator("#body-frame").get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
    shot(page, "read-html")
    assert 200 in loaded  # the inline image came from its part URL (capability, no cookie)


def test_reply_with_attachment_and_find_it_in_sent(page: Page, srv: CourrielServer) -> None:
    deliver(srv, "alice@example.test", text_message("Project plan", "Can you send the plan?",
                                                    sender="Bob <bob@example.test>", msgid="<plan@example.test>"),
            sender="bob@example.test")  # fmt: skip
    page.goto(base_url(srv) + "/mail/")
    page.locator("#messages .msg", has_text="Project plan").locator("a.open").click()
    expect(page.locator("h1.subject")).to_have_text("Project plan")
    page.keyboard.press("r")
    page.wait_for_url("**/mail/compose?mode=reply*")
    expect(page.locator("#to")).to_have_value("Bob <bob@example.test>")
    expect(page.locator("#subject")).to_have_value("Re: Project plan")
    expect(page.locator("#body")).to_contain_text("> Can you send the plan?")
    page.locator("#body").press("Control+Home")
    page.locator("#body").type("Here it is.")
    plan: FilePayload = {"name": "plan.txt", "mimeType": "text/plain", "buffer": b"1. write\n2. test\n3. ship\n"}
    page.set_input_files("#files", files=[plan])
    expect(page.locator("#attachment-list li[data-id] .name")).to_have_text("plan.txt")
    shot(page, "reply")
    page.click("#send-button")
    expect(page.locator(".notice")).to_have_text("Message sent")
    expect(page.locator("#messages .msg", has_text="Project plan").locator("[title=answered]")).to_be_visible()
    open_folder(page, "Sent")
    sent = page.locator("#messages .msg", has_text="Re: Project plan")
    expect(sent.locator("[title=attachment]")).to_be_visible()
    sent.locator("a.open").click()
    expect(page.locator(".attachments a", has_text="plan.txt")).to_be_visible()
    expect(page.locator("pre.body-text")).to_contain_text("Here it is.")
    expect(page.locator(".conversation li")).to_have_count(2)  # the thread: the question and the reply
    shot(page, "sent")
    bob = login(srv, "bob@example.test", "bob-pw")
    try:
        assert "Re: Project plan" in bob.get("/mail/", follow_redirects=True).text
    finally:
        bob.close()


def test_move_a_message(page: Page, srv: CourrielServer) -> None:
    deliver(srv, "alice@example.test", text_message("Move me somewhere", "to the archive"))
    page.goto(base_url(srv) + "/mail/")
    row = page.locator("#messages .msg", has_text="Move me somewhere")
    row.locator('input[type="checkbox"]').check()
    page.locator("#list-form select[name=target]").select_option(label="Archive")
    page.locator('#list-form button[value="move"]').click()
    expect(page.locator("#messages .msg", has_text="Move me somewhere")).to_have_count(0)
    open_folder(page, "Archive")
    expect(page.locator("#messages .msg", has_text="Move me somewhere")).to_have_count(1)


def test_search(page: Page, srv: CourrielServer) -> None:
    deliver(srv, "alice@example.test", text_message("Quarterly numbers", "Look out for the zebra crossing."))
    deliver(srv, "alice@example.test", text_message("Unrelated", "nothing here"))
    page.goto(base_url(srv) + "/mail/")
    page.keyboard.press("/")
    expect(page.locator("#search")).to_be_focused()
    page.keyboard.type("zebra crossing")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=zebra"))
    expect(page.locator("#messages .msg")).to_have_count(1)
    expect(page.locator("#messages .msg")).to_contain_text("Quarterly numbers")
    shot(page, "search")


def test_new_message_arrives_live(page: Page, srv: CourrielServer) -> None:
    page.goto(base_url(srv) + "/mail/")
    page.wait_for_function("() => document.body.classList.contains('live')")
    before = page.locator("#messages .msg").count()
    deliver(srv, "alice@example.test", text_message("Fresh arrival", "just now"))
    expect(page.locator("#messages .msg", has_text="Fresh arrival")).to_have_count(1)
    expect(page.locator("#messages .msg")).to_have_count(before + 1)
    expect(page.locator("#folders .current .unread")).to_be_visible()
    shot(page, "live")


def test_keyboard_shortcuts(page: Page, srv: CourrielServer) -> None:
    deliver(srv, "alice@example.test", text_message("Keyboard first", "k"))
    page.goto(base_url(srv) + "/mail/")
    page.keyboard.press("j")
    first = page.locator("#messages .msg").first
    expect(first).to_have_class(re.compile("selected"))
    expect(first).to_contain_text("Keyboard first")
    page.keyboard.press("s")
    expect(page.locator("#messages .msg").first).to_have_class(re.compile("flagged"))
    page.keyboard.press("o")
    expect(page.locator("h1.subject")).to_have_text("Keyboard first")
    expect(page.locator("#flag-button")).to_have_text("Unflag")
    page.keyboard.press("f")
    page.wait_for_url("**/mail/compose?mode=forward*")
    expect(page.locator("#subject")).to_have_value("Fwd: Keyboard first")
    page.go_back()
    page.keyboard.press("#")
    expect(page.locator(".notice")).to_have_text("Moved to Trash")
    open_folder(page, "Trash")
    expect(page.locator("#messages .msg", has_text="Keyboard first")).to_have_count(1)


def test_draft_saved_automatically_then_sent(page: Page, srv: CourrielServer) -> None:
    page.goto(base_url(srv) + "/mail/")
    page.keyboard.press("c")
    page.wait_for_url("**/mail/compose")
    page.fill("#to", "bob@example.test")
    page.fill("#subject", "Autosaved thoughts")
    page.locator("#body").type("A first line.")
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    uid = page.locator("#draft-uid").input_value()
    assert uid.isdigit()
    drafts = page.context.new_page()
    drafts.goto(base_url(srv) + "/mail/")
    open_folder(drafts, "Drafts")
    expect(drafts.locator("#messages .msg", has_text="Autosaved thoughts")).to_have_count(1)
    page.locator("#body").type(" And a second.")
    expect(page.locator("#draft-uid")).not_to_have_value(uid)  # saved again: a new copy replaced the old
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    page.click("#send-button")
    expect(page.locator(".notice")).to_have_text("Message sent")
    drafts.reload()
    expect(drafts.locator("#messages .msg", has_text="Autosaved thoughts")).to_have_count(0)
    drafts.close()


def test_phone_layout(chrome: Browser, srv: CourrielServer) -> None:
    context = chrome.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    try:
        log_in(pg, srv)
        expect(pg.locator(".folder-menu summary")).to_be_visible()
        assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(pg, "phone-list")
        pg.locator(".folder-menu summary").click()
        expect(pg.locator("#folders a", has_text="Sent")).to_be_visible()
        pg.locator("#messages .msg a.open").first.click()
        expect(pg.locator("h1.subject")).to_be_visible()
        assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(pg, "phone-read")
    finally:
        context.close()
