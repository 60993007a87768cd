"""The first requests on an account before its index is built (a fresh process): a plain
Email/query answered from the store and Email/get of its page must give exactly what the
index gives once built, on both store backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from courriel.config import Config
from courriel.jmap import index
from courriel.jmap.core import Call, MethodError
from courriel.jmap.email import email_get
from courriel.jmap.index import Account, mailbox_id
from courriel.jmap.query import email_query, quick_query, run_query
from courriel.store.api import INBOX, Flag, FlagMode, Store
from tests.conftest import BACKENDS, StoreRunner, message


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def forget(r: StoreRunner) -> None:
    """As after a restart: no index, no build under way."""
    for task in list(index._BUILDS.values()):
        r.run(asyncio.wait([task]))
    index._INDEXES.clear()
    index._KNOWN_THREADS.clear()


def built(r: StoreRunner) -> None:
    """Wait for the background build the cold path started (it may be done already)."""
    assert index._BUILDS or index._INDEXES, "the cold path starts a build"
    for task in list(index._BUILDS.values()):
        r.run(asyncio.wait([task]))
    assert index._INDEXES


async def answer(call: Call, args: dict[str, Any]) -> Any:
    try:
        return await email_query(call, args)
    except MethodError as e:
        return e.kind


def test_first_query_and_get_match_the_index(runner: StoreRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "BUILD_DELAY", 0.0)
    r, s = runner, runner.store
    r.run(s.add_domain("example.test"))
    user = r.run(s.add_user("alice@example.test", "pw"))
    inbox = r.run(s.get_mailbox(user.id, INBOX))
    archive = r.run(s.get_mailbox(user.id, "Archive"))
    assert inbox and archive
    day = datetime(2026, 1, 1, tzinfo=UTC)
    uids = []
    for n in range(12):  # dates with ties (n // 3), so the content-id tie-break matters
        when = day + timedelta(hours=n // 3)
        uids.append(r.run(s.append(inbox.id, message(f"m{n}"), internal_date=when)).uid)
    r.run(s.copy(inbox.id, uids[2:6], archive.id))  # Emails in two mailboxes
    r.run(s.move(inbox.id, uids[8:10], archive.id))
    r.run(s.append(archive.id, message("old"), internal_date=day - timedelta(days=1)))
    r.run(s.store_flags(inbox.id, uids[:3], FlagMode.ADD, Flag.SEEN, frozenset({"$label"})))
    trash = r.run(s.get_mailbox(user.id, "Trash"))  # only its own Emails
    assert trash
    for n in range(3):
        r.run(s.append(trash.id, message(f"t{n}"), internal_date=day + timedelta(hours=n // 2)))

    ctx: Any = SimpleNamespace(store=s, cfg=Config())
    acct = Account(ctx, user.id, "alice@example.test")
    call = Call(acct, frozenset(), {})
    down = [{"property": "receivedAt", "isAscending": False}]
    up = [{"property": "receivedAt", "isAscending": True}]
    plain: list[dict[str, Any]] = [
        {},
        {"sort": down},
        {"filter": {"inMailbox": mailbox_id(inbox.id)}, "sort": down},
        {"filter": {"inMailbox": mailbox_id(archive.id)}, "sort": up},
        {"filter": {"inMailbox": mailbox_id(archive.id)}, "sort": [{"property": "receivedAt"}]},
        {"filter": {"inMailbox": mailbox_id(trash.id)}},
        {"filter": {"inMailbox": mailbox_id(trash.id)}, "sort": up},
        {"filter": {"inMailbox": "B999999"}},
    ]
    for args in plain:
        forget(r)
        quick = r.run(quick_query(call, args))
        assert quick is not None, args
        built(r)
        assert r.run(quick_query(call, args)) is None  # the index answers from now on
        _, whole = r.run(run_query(call, args))
        assert list(quick) == whole, args
        if args.get("filter") == {"inMailbox": mailbox_id(inbox.id)}:
            whole_inbox = whole
    assert whole == []  # the unknown mailbox
    forget(r)
    for args in (
        {"filter": {"hasKeyword": "$seen"}},
        {"filter": {"inMailbox": mailbox_id(inbox.id), "after": "2026-01-01T00:00:00Z"}},
        {"sort": [{"property": "size"}]},
        {"sort": [*down, {"property": "size"}]},
        {"collapseThreads": True},
        {"filter": {"inMailbox": 7}},
    ):
        assert r.run(quick_query(call, args)) is None, args  # these need the index

    # Email/query's paging (position, anchor) over the ids the store gave.
    listing = {"filter": {"inMailbox": mailbox_id(inbox.id)}, "calculateTotal": True}
    for paging in ({"position": 2, "limit": 3}, {"position": -4}, {"anchor": whole_inbox[5], "anchorOffset": -2,
                   "limit": 2}, {"anchor": "M999999"}, {"anchor": "x"}):  # fmt: skip
        forget(r)
        cold = r.run(answer(call, {**listing, **paging}))
        built(r)
        assert cold == r.run(answer(call, {**listing, **paging})), paging

    # The generic version (other backends) gives what the backend's own does.
    for box in (None, inbox.id, archive.id, trash.id):
        assert r.run(Store.account_received(s, user.id, box)) == r.run(s.account_received(user.id, box))

    # Email/get of a page before and after the index is built.
    forget(r)
    ids = list(r.run(quick_query(call, {})) or [])
    forget(r)
    get = {"ids": [*ids, "M999999", "nope"], "properties": ["mailboxIds", "keywords", "receivedAt", "threadId",
                                                                "size", "subject", "from", "preview"]}  # fmt: skip
    cold = r.run(email_get(call, get))
    built(r)
    warm = r.run(email_get(call, get))
    assert cold == warm
    assert len(cold["list"]) == 16 and cold["notFound"] == ["M999999", "nope"]
    seen = [e for e in cold["list"] if e["keywords"].get("$seen")]
    assert len(seen) == 3 and all(e["keywords"] == {"$seen": True, "$label": True} for e in seen)
    forget(r)
