"""Webmail retrievals in the journey: a message opened, its attachment and the whole message
downloaded in the webmail become "retrieved" message events (protocol "webmail", the
client's address), each once per session, written in batches off the request path;
`courriel journey` shows them as ⑤ steps."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request

from courriel.store.api import MessageEvent
from courriel.webmail.retrievals import WebRetrievals
from courriel.webmail.sessions import Session
from tests.harness import CourrielServer
from tests.outbound.conftest import wait_for
from tests.webmail.helpers import deliver, login
from tests.webmail.test_persistent_sessions import with_attachment

ALICE = "alice@example.test"


def test_opened_and_downloaded_messages_are_in_the_journey(srv: CourrielServer) -> None:
    deliver(srv, ALICE, with_attachment("webmail journey", ALICE))
    with closing(login(srv)) as client:
        box = client.get("/mail/").headers["location"]
        listing = client.get(box).text
        m = re.search(r'class="open" href="(/mail/box/\d+/\d+)"(?:(?!href=).)*?webmail journey', listing, re.S)
        assert m, listing
        page = client.get(m.group(1))
        assert page.status_code == 200 and "webmail journey" in page.text
        assert client.get(m.group(1)).status_code == 200  # opened again: not a second event
        part = re.search(r'href="([^"]+/part/(\d+)\?k=[^"]+&amp;download=1)"', page.text)
        assert part, page.text
        r = client.get(part.group(1).replace("&amp;", "&"))
        assert r.status_code == 200 and r.content.startswith(b"PK\x03\x04")
        raw = client.get(m.group(1) + "/raw")
        assert raw.status_code == 200 and raw.headers["content-type"] == "message/rfc822"
        assert b"Subject: webmail journey" in raw.content and "attachment" in raw.headers["content-disposition"]

    def journey() -> dict[str, Any] | None:
        found = json.loads(srv.cli("journey", ALICE, "<webmail-journey@remote.test>", "--json").stdout)
        webmail = [s for s in found["steps"] if s.get("protocol") == "webmail"]
        return found if len(webmail) >= 3 else None

    found = wait_for(journey, what="the webmail retrievals in the journey")
    webmail = [s for s in found["steps"] if s.get("protocol") == "webmail"]
    assert [(s["step"], s["part"]) for s in webmail] == [(5, ""), (5, part.group(2)), (5, "raw")], webmail
    assert all(s["client"].startswith("127.0.0.1:") and not s["peek"] for s in webmail)
    text = srv.cli("journey", ALICE, "webmail-journey@remote.test").stdout
    assert "retrieval by webmail" in text and "webmail client 127.0.0.1:" in text
    assert f"downloaded part {part.group(2)}" in text and "downloaded the message" in text


class Recording:
    def __init__(self) -> None:
        self.batches: list[list[MessageEvent]] = []

    async def add_message_events(self, events: list[MessageEvent]) -> None:
        self.batches.append(list(events))


def request(port: int) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("192.0.2.7", port)})


def session(sid: int) -> Session:
    return Session(sid, b"h", 7, "a@example.test", "csrf", 0.0, 0.0, 9e9)


def retrievals(store: Recording, enabled: bool = True) -> WebRetrievals:
    ctx: Any = SimpleNamespace(store=store, cfg=SimpleNamespace(trace=SimpleNamespace(message_events=enabled)))
    return WebRetrievals(ctx)


def run(coro: Coroutine[Any, Any, None]) -> None:
    """asyncio.run on a thread of its own (Playwright's sync API holds this one's loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def test_each_retrieval_once_per_session_in_one_batch() -> None:
    store = Recording()
    r = retrievals(store)
    one, two = session(1), session(2)
    for _ in range(3):
        r.note(one, request(5000), 11)
    r.note(one, request(5000), 11, "2")
    r.note(one, request(5000), 11, "raw")
    r.note(two, request(6000), 11)  # another session: recorded again
    r.note(one, request(5000), 0)  # no content id: nothing
    assert r.pending == 4 and store.batches == []  # nothing written on the request's path
    run(r.flush())
    assert len(store.batches) == 1
    got = [(e.user_id, e.content_id, e.kind, e.protocol, e.client, e.details) for e in store.batches[0]]
    assert got == [
        (7, 11, "retrieved", "webmail", "192.0.2.7:5000", {"peek": False}),
        (7, 11, "retrieved", "webmail", "192.0.2.7:5000", {"peek": False, "part": "2"}),
        (7, 11, "retrieved", "webmail", "192.0.2.7:5000", {"peek": False, "part": "raw"}),
        (7, 11, "retrieved", "webmail", "192.0.2.7:6000", {"peek": False}),
    ]
    run(r.flush())
    assert len(store.batches) == 1  # nothing pending: no write

    off = retrievals(store, enabled=False)  # [trace] message_events = false
    off.note(session(3), request(1), 11)
    assert off.pending == 0
