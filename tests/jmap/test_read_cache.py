"""The caches on the path of reading one message: message bytes by (user, blob) for
Email/get (:mod:`courriel.jmap.contentcache`), batched retrieval events, and the webmail's
sanitised HTML by (user, blob, part) (:class:`courriel.webmail.reader.SanitizedCache`).
A cached entry must never outlive its message nor reach another user."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from courriel.jmap import index
from courriel.jmap.contentcache import ContentCache
from courriel.mime.parse import parse_message
from courriel.mime.structure import body_to_json
from courriel.store.api import MessageEvent
from courriel.webmail.reader import Loaded, SanitizedCache
from tests.harness import CourrielServer
from tests.jmap.conftest import BOB, Api, message
from tests.jmap.test_api import import_message

BODY = {"properties": ["bodyValues", "textBody"], "fetchTextBodyValues": True}


def _body_json(data: bytes) -> str:
    return body_to_json(parse_message(data).body)


def test_content_cache_keeps_users_apart_and_stays_bounded() -> None:
    data = message("one", "x" * 100)
    cache = ContentCache(max_bytes=3 * len(data), max_item=2 * len(data))
    cache.put(1, "b/1", data, _body_json(data))
    assert cache.get(1, "b/1") is not None and cache.get(1, "b/1").data == data  # type: ignore[union-attr]
    assert cache.get(2, "b/1") is None  # another user: never another account's entry
    for n in range(2, 6):
        cache.put(1, f"b/{n}", data, _body_json(data))
    assert len(cache) == 3 and cache.size == 3 * len(data)
    assert cache.get(1, "b/1") is None and cache.get(1, "b/5") is not None  # least recently used out
    big = message("big", "y" * (3 * len(data)))
    got = cache.put(1, "b/big", big, _body_json(big))
    assert got.data == big and cache.get(1, "b/big") is None  # too large to keep, still answered
    cache.drop_user(1)
    assert len(cache) == 0 and cache.size == 0


def _text(api: Api, eid: object) -> str | None:
    got = api.call("Email/get", {"ids": [eid], **BODY})
    if not got["list"]:
        assert got["notFound"] == [eid]
        return None
    (email,) = got["list"]
    return str(email["bodyValues"][email["textBody"][0]["partId"]]["value"])


def test_email_get_cache_follows_destroy_and_new_messages(api: Api) -> None:
    inbox = api.mailbox("inbox")
    first = import_message(api, message("cache first", "the first body"), inbox)
    assert _text(api, first["id"]) == "the first body\n"
    assert _text(api, first["id"]) == "the first body\n"  # read again: from the server's cache
    destroyed = api.call("Email/set", {"destroy": [first["id"]]})
    assert destroyed["destroyed"] == [first["id"]]
    assert _text(api, first["id"]) is None  # expunged: notFound, whatever was cached
    second = import_message(api, message("cache second", "another body entirely"), inbox)
    assert _text(api, second["id"]) == "another body entirely\n"  # even if the content id came back


def test_email_get_cache_never_crosses_users(server: CourrielServer, api: Api) -> None:
    mine = import_message(api, message("alice only", "alice's secret"), api.mailbox("inbox"))
    assert _text(api, mine["id"]) == "alice's secret\n"  # now in alice's cache
    bob = Api(server, auth=BOB)
    try:
        got = bob.call("Email/get", {"ids": [mine["id"]], **BODY})
        assert got["list"] == [] and got["notFound"] == [mine["id"]]
        same = import_message(bob, message("alice only", "alice's secret"), bob.mailbox("inbox"))
        assert _text(bob, same["id"]) == "alice's secret\n"  # identical bytes: his own copy
        other = import_message(bob, message("bob's", "bob's own words"), bob.mailbox("inbox"))
        assert _text(bob, other["id"]) == "bob's own words\n"
        assert _text(api, mine["id"]) == "alice's secret\n"
    finally:
        bob.close()


class _Store:
    def __init__(self) -> None:
        self.writes: list[list[MessageEvent]] = []

    async def add_message_events(self, events: list[MessageEvent]) -> None:
        self.writes.append(list(events))


def test_retrievals_of_many_requests_share_one_write() -> None:
    store = _Store()
    ctx = SimpleNamespace(store=store, cfg=SimpleNamespace(trace=SimpleNamespace(message_events=True)))

    async def run() -> None:
        from courriel.trace import events

        for user, content in ((1, 10), (1, 11), (2, 20)):
            acct = index.Account(cast(Any, ctx), user, f"u{user}@example.test", "127.0.0.1")
            acct.retrieved.add(content)
            acct.flush_retrievals()
        assert store.writes == []  # not on the requests' path
        await events.drain()

    asyncio.run(run())
    assert len(store.writes) == 1
    assert sorted((e.user_id, e.content_id) for e in store.writes[0]) == [(1, 10), (1, 11), (2, 20)]
    assert index._RETRIEVALS == {}


def _loaded(blob: str, html: str) -> Loaded:
    data = (
        "From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\n"
        'Content-Type: multipart/related; boundary="b"\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n'
        f"{html}\r\n--b\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\n\r\nPNG\r\n--b--\n"
    ).encode()
    return cast(Loaded, SimpleNamespace(record=SimpleNamespace(blob=blob), data=data, body=parse_message(data).body))


def test_sanitized_cache_fills_capabilities_per_request_and_keeps_users_apart() -> None:
    cache = SanitizedCache()
    msg = _loaded("b/1", '<p>hi <img src="cid:logo@x"><img src="https://t.example/p.gif"></p>')
    part = msg.body.children[0]
    html, blocked = cache.sanitized(1, msg, part, "1", False)
    assert blocked == 1 and cache.marker in html and "cid:" not in html
    assert cache.sanitized(1, msg, part, "1", False) is cache.sanitized(1, msg, part, "1", False)
    assert len(cache) == 1
    filled = cache.fill(html, lambda section: f"/part/{section}?k=A&b")
    assert 'src="/part/2?k=A&amp;b"' in filled and cache.marker not in filled
    other = _loaded("b/1", "<p>bob's different message</p>")
    html2, _ = cache.sanitized(2, other, other.body.children[0], "1", False)
    assert "bob" in html2 and "hi" not in html2  # another user: its own entry
    remote, blocked = cache.sanitized(1, msg, part, "1", True)
    assert blocked == 0 and "https://t.example/p.gif" in remote and len(cache) == 3


def test_sanitized_cache_markers_cannot_be_forged_by_a_message() -> None:
    cache = SanitizedCache()
    forged = _loaded("b/2", f"<p>{cache.marker[:2]}deadbeef1cm 2 {'cm' + '0' * 24}2{'cm' + '0' * 24}</p>")
    html, _ = cache.sanitized(1, forged, forged.body.children[0], "1", False)
    assert cache.fill(html, lambda s: "/SECRET") == html
    assert SanitizedCache().marker != cache.marker


def test_sanitized_cache_is_bounded() -> None:
    cache = SanitizedCache(max_chars=100)
    for n in range(5):
        msg = _loaded(f"b/{n}", "<p>" + "z" * 60 + "</p>")
        cache.sanitized(1, msg, msg.body.children[0], "1", False)
    assert len(cache) == 1 and cache.size <= 100


def test_session_state_is_kept_per_user_and_follows_a_config_reload() -> None:
    from starlette.requests import Request

    from courriel.config import Config
    from courriel.jmap.auth import Principal
    from courriel.jmap.http import Jmap, session_state

    ctx: Any = SimpleNamespace(cfg=Config())
    j = Jmap(ctx)
    req = Request({"type": "http", "scheme": "http", "server": ("127.0.0.1", 80), "path": "/", "headers": []})
    alice, bob = Principal(1, "alice@example.test"), Principal(2, "bob@example.test")
    first = j.session(alice, req)
    assert first["state"] == session_state(first) == j.session_state_of(alice, req)
    assert j.session_state_of(bob, req) == session_state(j.session(bob, req)) != first["state"]
    ctx.cfg = Config()
    ctx.cfg.jmap.max_calls_in_request += 1  # a reload with another limit: another state
    changed = j.session_state_of(alice, req)
    assert changed != first["state"] and changed == session_state(j.session(alice, req))
