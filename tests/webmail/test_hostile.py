"""A hostile-HTML corpus (tests/webmail/hostile/*.html) delivered over SMTP and opened in the
browser: no script runs and nothing loads from anywhere but the webmail itself.

Each payload tries to change the top page's title, to open a dialog, and to reach a canary
HTTP server on loopback (``CANARY`` in the files) or hosts outside. The canary must receive
nothing, Playwright must see no request to another origin, the title must not change, and
the frame's document must hold no script, event handler, form, frame, object, meta, base or
link element, nor a javascript: or data: link.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, expect

from tests.harness import CourrielServer
from tests.webmail.browser import log_in, shot
from tests.webmail.helpers import base_url, deliver

CORPUS = sorted((Path(__file__).parent / "hostile").glob("*.html"))
expect.set_options(timeout=20_000)


class Canary:
    """A loopback HTTP server that records every request it gets."""

    def __init__(self) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def _hit(self) -> None:
                hits.append(f"{self.command} {self.path}")
                self.send_response(204)
                self.end_headers()

            do_GET = do_POST = do_HEAD = do_OPTIONS = _hit

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


@pytest.fixture(scope="module")
def corpus(srv: CourrielServer, canary: Canary) -> None:
    """Each file of the corpus delivered over SMTP as a text/html message to alice."""
    for path in CORPUS:
        msg = EmailMessage()
        msg["From"], msg["To"] = "Mallory <mallory@remote.test>", "alice@example.test"
        msg["Subject"] = f"hostile {path.stem}"
        msg.set_content(path.read_text().replace("CANARY", canary.url), subtype="html")
        deliver(srv, "alice@example.test", msg.as_bytes().replace(b"\n", b"\r\n"))


class Watch:
    """A logged-in browser context and what its pages asked for."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        context.on("request", lambda req: self.requests.append(req.url))
        context.on("dialog", self._dialog)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture(scope="module")
def watch(chrome: Browser, srv: CourrielServer, corpus: None) -> Iterator[Watch]:
    context = chrome.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(20_000)
    w = Watch(context)
    page = context.new_page()
    log_in(page, srv)
    page.close()
    yield w
    context.close()


#: Elements that must not survive sanitising (their text may, escaped).
FORBIDDEN_TAGS = frozenset({
    "script", "form", "iframe", "frame", "frameset", "object", "embed", "meta", "base", "link", "svg", "math",
    "style", "input", "button", "textarea", "select", "applet", "audio", "video", "portal", "template", "source",
    "picture", "area", "map", "isindex", "keygen", "noscript", "xmp", "listing", "use", "image",
})  # fmt: skip
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "poster", "data", "codebase", "background",
                            "dynsrc", "lowsrc", "srcset", "srcdoc", "xlink:href", "cite"})  # fmt: skip


class Inspector(HTMLParser):
    """What the frame's document really contains, element by element."""

    def __init__(self, origin: str) -> None:
        super().__init__(convert_charrefs=True)
        self.origin = origin
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip()
            if name.startswith("on"):
                self.problems.append(f"{tag} {name}")
            elif name == "style" and re.search(r"url\s*\(|expression|image-set|@import|behavior", value, re.I):
                self.problems.append(f"{tag} style={value}")
            elif name in URL_ATTRIBUTES:
                ok = (
                    (tag == "a" and name == "href" and value.startswith(("http://", "https://", "mailto:")))
                    or (tag == "img" and name == "src" and (value.startswith("/") and not value.startswith("//")))
                )
                if not ok:
                    self.problems.append(f"{tag} {name}={value}")


def test_the_canary_would_see_a_leak(chrome: Browser, canary: Canary) -> None:
    """The control: the same payload outside the webmail does reach the canary, so the
    tests below can fail."""
    context = chrome.new_context()
    page = context.new_page()
    try:
        script = (Path(__file__).parent / "hostile" / "script.html").read_text().replace("CANARY", canary.url)
        page.set_content(script)
        page.wait_for_function("() => document.title === 'pwned'")
        deadline = 200
        while not canary.hits and deadline:
            page.wait_for_timeout(50)
            deadline -= 1
        assert any("/script" in hit for hit in canary.hits), canary.hits
        page.wait_for_load_state("networkidle")  # the control's other requests, before the clear
    finally:
        context.close()
        canary.hits.clear()


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_hostile_html_is_inert(path: Path, watch: Watch, srv: CourrielServer, canary: Canary) -> None:
    origin = base_url(srv)
    watch.requests.clear()
    page = watch.context.new_page()
    try:
        page.goto(f"{origin}/mail/search?q=hostile+{path.stem}&in=subject")
        row = page.locator("#messages .msg", has_text=f"hostile {path.stem}")
        expect(row).to_have_count(1)
        row.locator("a.open").click()
        expect(page.locator("h1.subject")).to_have_text(f"hostile {path.stem}")
        frame_el = page.locator("#body-frame")
        expect(frame_el).to_be_visible()
        page.wait_for_load_state("load")
        title = page.title()
        frame_el.hover()  # give hover, focus and click handlers their chance
        page.frame_locator("#body-frame").locator("body").click(position={"x": 5, "y": 5})
        shot(page, f"hostile-{path.stem}")
        frame_url = origin + str(frame_el.get_attribute("src"))
        direct = watch.context.new_page()  # the body's own URL as a top-level page: its CSP holds
        direct.goto(frame_url)
        direct.wait_for_load_state("load")
        assert "pwned" not in direct.title()
        direct.close()
        assert page.title() == title and "pwned" not in title
    finally:
        page.close()
    inspector = Inspector(origin)
    doc = httpx.get(frame_url).text
    inspector.feed(doc.split("<body>", 1)[1])  # the head is ours: charset and the frame's style
    assert inspector.problems == []
    assert canary.hits == [], canary.hits
    foreign = [u for u in watch.requests if not u.startswith(origin + "/")]
    assert foreign == [], foreign
    assert watch.dialogs == [], watch.dialogs


def test_remote_images_load_only_when_allowed(watch: Watch, srv: CourrielServer, canary: Canary) -> None:
    """"Show remote images" lets https images through (here: none reachable) but the
    frame's CSP still refuses plain http ones, like the canary."""
    watch.requests.clear()
    page = watch.context.new_page()
    requests = watch.requests
    try:
        page.goto(f"{base_url(srv)}/mail/search?q=hostile+remote-images&in=subject")
        page.locator("#messages .msg a.open").first.click()
        expect(page.locator(".remote-images")).to_contain_text("remote images blocked")
        page.click("#show-images")
        page.wait_for_url("**images=1")
        expect(page.locator("#body-frame")).to_have_attribute("src", re.compile("images=1"))
        page.wait_for_load_state("load")
    finally:
        page.close()
    assert canary.hits == [], canary.hits
    assert any(u.startswith("https://evil.example/") for u in requests)  # allowed, tried (no such host)
    assert not any(u.startswith(("http://evil.example", canary.url)) for u in requests)
