"""The conversation list (one row per RFC 8474 thread): grouping (a table), rows and counts
of mail delivered over SMTP, the remembered List | Conversations toggle, actions on a whole
thread checked over IMAP (imaplib), 2,000 messages in 400 threads paged server-side, and in
Chromium: j/k over thread rows, opening a thread, a live reply updating its row, the phone
layout. Its own `courriel serve` (smtp, http, imap) and users, so counts are exact."""

from __future__ import annotations

import imaplib
import re
import threading
from array import array
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from courriel.store.api import NewMessage, Store
from courriel.webmail.sessions import ThreadListing
from courriel.webmail.threads import ThreadIndex, group_threads, neighbours
from tests.conftest import BACKENDS, StoreRunner
from tests.harness import CourrielServer
from tests.webmail.browser import log_in, shot
from tests.webmail.helpers import append_many, base_url, csrf_of, deliver, login

WAIT = 20_000  # ms: how long to wait for something to appear (never a timed assertion)
USERS = {"carol@example.test": "carol-pw", "dave@example.test": "dave-pw", "erin@example.test": "erin-pw"}


@pytest.fixture(scope="module")
def tsrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    server = CourrielServer(tmp_path_factory.mktemp("threads"), users=USERS, only=("smtp", "http", "imap"),
                            plaintext_auth=True)  # fmt: skip
    server.start()
    yield server
    server.stop()


def message(subject: str, date: str, msgid: str, reply_to: list[str] | None = None,
            sender: str = "Someone <someone@remote.test>", to: str = "carol@example.test") -> bytes:  # fmt: skip
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = msgid
    if reply_to:
        msg["In-Reply-To"] = reply_to[-1]
        msg["References"] = " ".join(reply_to)
    msg.set_content(f"{subject}\n")
    return msg.as_bytes().replace(b"\n", b"\r\n")


def folder_id(c: httpx.Client, name: str = "Inbox") -> int:
    page = c.get("/mail/", follow_redirects=True)
    m = re.search(rf'href="/mail/box/(\d+)" data-mailbox="\d+"[^>]*>\s*<span class="name">{name}', page.text)
    assert m, page.text
    return int(m.group(1))


def thread_rows(html: str) -> list[str]:
    return re.findall(r'<li class="msg thread-row.*?</li>', html, re.S)


# --- grouping: a pure function, a table ----------------------------------------------------
GROUPS = [
    # (uid, thread, date) rows in any order -> threads newest first, their UIDs ascending,
    # the latest message of each
    ([], [], [], []),
    ([(1, "Ta", 100)], ["Ta"], [[1]], [1]),
    ([(3, "Ta", 300), (1, "Ta", 100), (2, "Tb", 200)], ["Ta", "Tb"], [[1, 3], [2]], [3, 2]),
    # a thread's place is its latest message: an old thread with a new reply comes first
    ([(1, "Ta", 100), (2, "Tb", 200), (3, "Tc", 300), (4, "Ta", 400)], ["Ta", "Tc", "Tb"], [[1, 4], [3], [2]],
     [4, 3, 2]),
    # equal dates: the later UID first (as the flat list)
    ([(1, "Ta", 100), (2, "Tb", 100)], ["Tb", "Ta"], [[2], [1]], [2, 1]),
    # the latest by date, not by UID (a reply dated before its parent arrives later)
    ([(5, "Ta", 50), (2, "Tb", 200)], ["Tb", "Ta"], [[2], [5]], [2, 5]),
    ([(1, "TC1", 100), (2, "TC2", 100), (3, "TC1", 90)], ["TC2", "TC1"], [[2], [1, 3]], [2, 1]),
]  # fmt: skip


@pytest.mark.parametrize(("rows", "order", "uids", "latest"), GROUPS)
def test_group_threads(rows: list[tuple[int, str, int]], order: list[str], uids: list[list[int]],
                       latest: list[int]) -> None:  # fmt: skip
    got_order, got_uids, got_latest = group_threads(rows)
    assert got_order == order
    assert got_uids == [array("I", u) for u in uids]
    assert got_latest == array("I", latest)
    listing = ThreadListing((), got_order, got_uids, got_latest)
    for i, group in enumerate(uids):  # the message page's previous / next conversation
        for uid in group:
            assert neighbours(listing, uid) == (latest[i - 1] if i else None,
                                                latest[i + 1] if i + 1 < len(latest) else None)  # fmt: skip
    assert neighbours(listing, 99) == (None, None)


@pytest.mark.parametrize(("rows", "order", "uids", "latest"), GROUPS)
def test_thread_index_grows_by_arrivals(rows: list[tuple[int, str, int]], order: list[str], uids: list[list[int]],
                                        latest: list[int]) -> None:  # fmt: skip
    """Arrivals added to an index give what grouping everything at once gives; a listing
    already handed out does not change."""
    for cut in range(len(rows) + 1):
        index = ThreadIndex()
        index.add(rows[:cut])
        before = index.listing(("before",))
        snapshot = (list(before.order), [list(g) for g in before.uids], list(before.latest))
        index.add(rows[cut:])
        after = index.listing(("after",))
        assert (after.order, after.uids, after.latest) == (order, [array("I", u) for u in uids], array("I", latest))
        assert (before.order, [list(g) for g in before.uids], list(before.latest)) == snapshot
        assert index.count == len(rows)


# --- the store query, on every backend ---------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_store_thread_rows(backend: str, tmp_path: Path) -> None:
    # In a thread of its own: the browser tests' Playwright keeps an event loop on this one.
    errors: list[BaseException] = []

    def target() -> None:
        try:
            runner = StoreRunner(tmp_path, backend)
            try:
                check_thread_rows(runner)
            finally:
                runner.close()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def check_thread_rows(runner: StoreRunner) -> None:
    store = runner.store
    runner.run(store.add_domain("example.test"))
    user = runner.run(store.add_user("tina@example.test", "pw"))
    box = runner.run(store.get_mailbox(user.id, "INBOX"))
    assert box is not None
    items = [message(subject, date, msgid, refs, sender) for subject, date, msgid, refs, sender in THREAD]
    items.append(b"From: x@remote.test\r\nSubject: no ids at all\r\n\r\nbody\r\n")
    appended = runner.run(store.append_many(box.id, [NewMessage(d) for d in items]))
    got = sorted(runner.run(store.thread_rows(box.id)))
    # The backend's answer is the generic one (read from the records).
    assert got == sorted(runner.run(Store.thread_rows(store, box.id)))
    root, single1, single2 = got[0][1], got[1][1], got[3][1]
    assert len({root, single1, single2}) == 3 and all(re.fullmatch(r"T[0-9a-f]{20}", t) for t in (root, single1))
    assert [(u, t) for u, t, _ in got] == [(1, root), (2, single1), (3, root), (4, single2), (5, root),
                                            (6, f"TC{appended[-1].content_id}")]  # fmt: skip
    assert got[0][2] == 1772445600  # Mon, 02 Mar 2026 10:00:00 +0000, the Date field


# --- over HTTP --------------------------------------------------------------------------------
THREAD = [
    ("Trip to Lyon", "Mon, 02 Mar 2026 10:00:00 +0000", "<root@remote.test>", None, "Anna <anna@remote.test>"),
    ("Single one", "Mon, 02 Mar 2026 10:05:00 +0000", "<single1@remote.test>", None, "Sam <sam@remote.test>"),
    ("Re: Trip to Lyon", "Mon, 02 Mar 2026 10:10:00 +0000", "<r1@remote.test>", ["<root@remote.test>"],
     "Ben <ben@remote.test>"),
    ("Single two", "Mon, 02 Mar 2026 10:20:00 +0000", "<single2@remote.test>", None, "Tom <tom@remote.test>"),
    ("Re: Trip to Lyon", "Mon, 02 Mar 2026 10:30:00 +0000", "<r2@remote.test>",
     ["<root@remote.test>", "<r1@remote.test>"], "Anna <anna@remote.test>"),
]  # fmt: skip


def deliver_thread(srv: CourrielServer, rcpt: str) -> None:
    for subject, date, msgid, refs, sender in THREAD:
        deliver(srv, rcpt, message(subject, date, msgid, refs, sender, rcpt))


def imap_flags(srv: CourrielServer, user: str, password: str) -> dict[str, str]:
    """Subject -> FLAGS of every Inbox message, over IMAP."""
    with imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=30) as imap:
        imap.login(user, password)
        imap.select("INBOX", readonly=True)
        typ, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert typ == "OK"
        out = {}
        for item in data:
            if isinstance(item, tuple):
                m = re.search(rb"<([^>]+)>", item[1])
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                assert m and flags
                out[m.group(1).decode()] = flags.group(1).decode()
        return out


def test_conversations_rows_counts_and_thread_actions(tsrv: CourrielServer) -> None:
    deliver_thread(tsrv, "carol@example.test")
    c = login(tsrv, "carol@example.test", "carol-pw")
    inbox = folder_id(c)
    flat = c.get(f"/mail/box/{inbox}")
    assert "5 messages" in flat.text and not thread_rows(flat.text)  # the list is the default
    r = c.get(f"/mail/box/{inbox}?view=conversations")
    assert "3 conversations" in r.text
    rows = thread_rows(r.text)
    assert len(rows) == 3
    # Newest conversation first: the thread (its last reply at 10:30), then the singles.
    assert "Re: Trip to Lyon" in rows[0] and "Single two" in rows[1] and "Single one" in rows[2]
    assert 'class="count-all" title="3 messages">3<' in rows[0] and "3 unread" in rows[0]
    assert "Anna, Ben" in rows[0]
    assert 'title="1 message">1<' in rows[1] and "1 unread" in rows[1]
    assert "2026-03-02T10:30:00+00:00" in rows[0]
    # Opening the row shows the conversation page of its latest message.
    uid = re.search(r'data-uid="(\d+)"', rows[0])
    assert uid
    thread = re.search(r'data-thread="([^"]+)"', rows[0])
    assert thread
    opened = c.get(f"/mail/box/{inbox}/{uid.group(1)}")
    assert opened.status_code == 200 and "Trip to Lyon" in opened.text
    # The choice is remembered in the session, and searching shows messages.
    again = c.get(f"/mail/box/{inbox}")
    assert len(thread_rows(again.text)) == 3 and 'aria-current="true">Conversations' in again.text
    searched = c.get(f"/mail/box/{inbox}?q=Lyon&in=subject")
    assert "3 messages" in searched.text and not thread_rows(searched.text)
    # Mark the thread read: all its messages, and only them (checked over IMAP).
    csrf = csrf_of(r.text)
    done = c.post("/mail/action", data={"csrf": csrf, "mailbox": str(inbox), "thread": thread.group(1), "op": "read"},
                  headers={"X-Requested-With": "fetch"})  # fmt: skip
    assert done.status_code == 200, done.text
    flags = imap_flags(tsrv, "carol@example.test", "carol-pw")
    assert all("\\Seen" in flags[m] for m in ("root@remote.test", "r1@remote.test", "r2@remote.test")), flags
    assert not any("\\Seen" in flags[m] for m in ("single1@remote.test", "single2@remote.test")), flags
    # Flag it: the row shows the flag and no unread count any more.
    c.post("/mail/action", data={"csrf": csrf, "mailbox": str(inbox), "thread": thread.group(1), "op": "flag"})
    rows = thread_rows(c.get(f"/mail/box/{inbox}").text)
    assert "flagged" in rows[0].split(">", 1)[0] and "unread" not in rows[0]
    assert "\\Flagged" in imap_flags(tsrv, "carol@example.test", "carol-pw")["r1@remote.test"]
    # Bad thread ids are refused, nothing changed.
    for bad in ("nope", "T" + "0" * 40, "TC-1"):
        refused = c.post("/mail/action", data={"csrf": csrf, "mailbox": str(inbox), "thread": bad, "op": "delete"})
        assert refused.status_code == 400
    # Move the thread to Archive: its three messages leave the Inbox together.
    archive = folder_id(c, "Archive")
    moved = c.post("/mail/action", data={"csrf": csrf, "mailbox": str(inbox), "thread": thread.group(1), "op": "move",
                                         "target": str(archive)})  # fmt: skip
    assert moved.status_code == 303
    after = c.get(f"/mail/box/{inbox}")
    assert "2 conversations" in after.text and "Trip to Lyon" not in after.text
    assert "1 conversation" in c.get(f"/mail/box/{archive}").text
    assert set(imap_flags(tsrv, "carol@example.test", "carol-pw")) == {"single1@remote.test", "single2@remote.test"}
    c.close()


def test_conversations_page_server_side(tsrv: CourrielServer) -> None:
    c = login(tsrv, "dave@example.test", "dave-pw")
    items = []
    for t in range(400):
        root = f"<t{t}@remote.test>"
        for n in range(5):
            day, minute = 1 + (t * 5 + n) // 1440, (t * 5 + n) % 1440
            date = f"{day:02d} Jan 2026 {minute // 60:02d}:{minute % 60:02d}:00 +0000"
            msgid = root if n == 0 else f"<t{t}.{n}@remote.test>"
            items.append(message(f"topic {t:03d}", date, msgid, [root] if n else None, to="dave@example.test"))
    append_many(tsrv, "dave@example.test", "Archive", items)
    archive = folder_id(c, "Archive")
    first = c.get(f"/mail/box/{archive}?view=conversations")
    assert "400 conversations" in first.text and "page 1 of 8" in first.text
    rows = thread_rows(first.text)
    assert len(rows) == 50 and all('title="5 messages">5<' in r for r in rows)
    assert "topic 399" in rows[0] and "topic 350" in rows[-1]
    assert len(first.content) < 120_000  # one page, whatever the folder's size
    last = c.get(f"/mail/box/{archive}?page=8")
    rows = thread_rows(last.text)
    assert "page 8 of 8" in last.text and len(rows) == 50 and "topic 000" in rows[-1]
    assert "page 8 of 8" in c.get(f"/mail/box/{archive}?page=999").text
    c.close()


# --- in the browser ---------------------------------------------------------------------------
@pytest.fixture
def page(chrome: Browser, tsrv: CourrielServer) -> Iterator[Page]:
    context = chrome.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT)
    pg = context.new_page()
    violations: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text or (msg.type == "error" and "Refused" in msg.text):
            violations.append(msg.text)

    pg.on("console", on_console)
    log_in(pg, tsrv, "erin@example.test", "erin-pw")
    yield pg
    context.close()
    assert not violations, violations


def test_conversations_in_the_browser(page: Page, tsrv: CourrielServer) -> None:
    expect.set_options(timeout=WAIT)
    deliver_thread(tsrv, "erin@example.test")
    page.goto(base_url(tsrv) + "/mail/")
    page.locator("#view-conversations").click()
    rows = page.locator("#messages .thread-row")
    expect(rows).to_have_count(3)
    expect(rows.first.locator(".count-all")).to_have_text("3")
    expect(page.locator("body.live")).to_have_count(1)  # the event stream is open
    # j/k over thread rows; s flags the whole thread.
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(rows.nth(1)).to_have_class(re.compile("selected"))
    page.keyboard.press("k")
    expect(rows.first).to_have_class(re.compile("selected"))
    page.keyboard.press("s")
    expect(rows.first).to_have_class(re.compile("flagged"))
    # A reply arriving live updates its row (count, unread, subject); the selection stays.
    deliver(tsrv, "erin@example.test", message("Re: Trip to Lyon (again)", "Mon, 02 Mar 2026 11:00:00 +0000",
                                              "<r3@remote.test>", ["<root@remote.test>", "<r2@remote.test>"],
                                              "Cleo <cleo@remote.test>", "erin@example.test"))  # fmt: skip
    expect(rows.first.locator(".count-all")).to_have_text("4")
    expect(rows.first).to_contain_text("4 unread")
    expect(rows.first).to_contain_text("Re: Trip to Lyon (again)")
    expect(rows.first).to_have_class(re.compile("selected"))
    shot(page, "conversations")
    # Open it: the conversation page, with the thread's messages.
    page.keyboard.press("o")
    expect(page.locator("h1.subject")).to_have_text("Re: Trip to Lyon (again)")
    expect(page.locator(".conversation")).to_contain_text("Trip to Lyon")
    page.keyboard.press("j")  # the next conversation
    expect(page.locator("h1.subject")).to_have_text("Single two")
    page.keyboard.press("u")
    expect(page.locator("#messages .thread-row")).to_have_count(3)  # still conversations


def test_conversations_phone_layout(chrome: Browser, tsrv: CourrielServer) -> None:
    context = chrome.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = context.new_page()
    try:
        log_in(pg, tsrv, "erin@example.test", "erin-pw")
        pg.goto(base_url(tsrv) + "/mail/")
        pg.wait_for_url("**/mail/box/*")
        pg.goto(pg.url.split("?")[0] + "?view=conversations")
        expect(pg.locator("#messages .thread-row").first).to_be_visible()
        expect(pg.locator("#messages .thread-row .counts").first).to_be_visible()
        assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        shot(pg, "phone-conversations")
    finally:
        context.close()
