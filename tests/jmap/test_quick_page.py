"""The first page of a mailbox before the account index is built (a fresh process): the store's
walk from the newest rows (Store.received_page) and the Email/query answer made from it must
equal the whole listing's, on both store backends, including Emails whose receivedAt comes
from an older copy elsewhere and Emails copied twice into the same mailbox."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from courriel.config import Config
from courriel.jmap import index
from courriel.jmap.core import Call
from courriel.jmap.index import Account, mailbox_id
from courriel.jmap.query import quick_page
from courriel.store.api import INBOX, Store
from courriel.store.sqlite import accountsync
from tests.conftest import BACKENDS, StoreRunner, message
from tests.jmap.test_quick import answer, built, forget


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def backdate(r: StoreRunner, box: int, uid: int, seconds: int) -> None:
    """Make one copy older than its siblings (the store API keeps a content's date on copy)."""
    sql = "UPDATE messages SET internal_date = internal_date - {p} WHERE mailbox_id = {p} AND uid = {p}"
    if r.backend == "postgres":
        import psycopg

        assert r.dsn is not None
        with psycopg.connect(r.dsn, autocommit=True) as conn:
            conn.execute(sql.format(p="%s").encode(), (seconds, box, uid))
        return
    db = sqlite3.connect(r.root / "courriel.db")
    try:
        db.execute(sql.format(p="?"), (seconds, box, uid))
        db.commit()
    finally:
        db.close()


def fill(r: StoreRunner) -> tuple[Store, int, dict[str, int], list[int]]:
    s = r.store
    r.run(s.add_domain("example.test"))
    user = r.run(s.add_user("alice@example.test", "pw"))
    other = r.run(s.add_user("bob@example.test", "pw"))
    boxes = {name: r.run(s.get_mailbox(user.id, name)) for name in (INBOX, "Archive", "Trash", "Drafts")}
    bob_inbox = r.run(s.get_mailbox(other.id, INBOX))
    assert bob_inbox and all(boxes.values())
    inbox, archive = boxes[INBOX], boxes["Archive"]
    assert inbox and archive
    day = datetime(2026, 1, 1, tzinfo=UTC)
    added = [
        r.run(s.append(inbox.id, message(f"m{n}"), internal_date=day + timedelta(hours=n // 3)))
        for n in range(14)  # ties on each date (n // 3): the content-id tie-break matters
    ]
    uids = [a.uid for a in added]
    copied = dict(r.run(s.copy(inbox.id, uids[9:12], archive.id)))
    backdate(r, archive.id, copied[uids[9]], 86400)  # its Email's receivedAt: the day before
    backdate(r, archive.id, copied[uids[11]], 3600 * 3)  # ties with m2 (content id decides)
    twice = dict(r.run(s.copy(inbox.id, uids[12:14], inbox.id)))  # the same Email twice in INBOX
    backdate(r, inbox.id, twice[uids[13]], 7200)
    r.run(s.move(inbox.id, uids[4:5], archive.id))
    r.run(s.append(archive.id, message("old"), internal_date=day - timedelta(days=2)))
    r.run(s.append(bob_inbox.id, message("bob's"), internal_date=day))
    ids = {name: b.id for name, b in boxes.items() if b}
    ids["bob"] = bob_inbox.id
    ids["none"] = 999_999
    return s, user.id, ids, [a.content_id for a in added]


def test_received_page_is_the_head_of_the_whole_listing(
    runner: StoreRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = runner
    s, user, boxes, contents = fill(r)
    for batch in (1, 3, 256):  # one row at a time, and the whole mailbox in one batch
        monkeypatch.setattr(accountsync, "PAGE_BATCH", batch)
        for name, box in boxes.items():
            whole = r.run(Store.received_page(s, user, box, 100, True))
            assert len(whole[0]) == whole[1]
            if name in ("bob", "none", "Drafts"):
                assert whole == ([], 0), name
            for count in range(0, 18):
                got = r.run(s.received_page(user, box, count, count % 2 == 0))
                want = r.run(Store.received_page(s, user, box, count, count % 2 == 0))
                assert got == want, (name, count, batch)
                assert got[0] == whole[0][:count]
    inbox = r.run(s.received_page(user, boxes[INBOX], 100, True))
    assert inbox[1] == 13  # 14 appended, one moved out, one Email twice
    order = [c for c, _ in inbox[0]]
    assert order[-1] == contents[9]  # dated by its older copy in Archive
    assert order.index(contents[13]) == order.index(contents[8]) - 1  # by its older copy in INBOX, ties with m8
    assert order.index(contents[11]) < order.index(contents[2])  # same date as m2: higher id first


def test_first_page_answers_as_the_index(runner: StoreRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "BUILD_DELAY", 0.0)
    monkeypatch.setattr(accountsync, "PAGE_BATCH", 2)
    r = runner
    s, user, boxes, _ = fill(r)
    ctx: Any = SimpleNamespace(store=s, cfg=Config())
    call = Call(Account(ctx, user, "alice@example.test"), frozenset(), {})
    cap = Config().jmap.max_objects_in_get
    down = [{"property": "receivedAt", "isAscending": False}]
    inbox = {"inMailbox": mailbox_id(boxes[INBOX])}
    fast: list[dict[str, Any]] = [
        {"filter": inbox, "calculateTotal": True, "limit": 5},
        {"filter": inbox, "sort": down, "position": 3, "limit": 4, "calculateTotal": True},
        {"filter": inbox, "sort": down, "position": 12, "limit": 4},  # the last one
        {"filter": inbox, "position": 40, "calculateTotal": True},  # past the end
        {"filter": inbox, "limit": 0, "calculateTotal": True},
        {"filter": inbox, "limit": cap + 1},  # capped: "limit" in the answer
        {"filter": inbox, "sort": [{"property": "receivedAt", "isAscending": False, "collation": "i;octet"}]},
        {"filter": {"inMailbox": mailbox_id(boxes["Archive"])}, "sort": down, "calculateTotal": True},
        {"filter": {"inMailbox": mailbox_id(boxes["Drafts"])}, "calculateTotal": True},  # empty
        {"filter": {"inMailbox": mailbox_id(boxes["bob"])}, "calculateTotal": True},  # not hers
        {"filter": {"inMailbox": "B999999"}, "calculateTotal": True},
    ]
    slow: list[dict[str, Any]] = [
        {"filter": inbox, "anchor": "x"},  # anchors: the whole listing
        {"filter": inbox, "position": -3, "calculateTotal": True},  # from the end
        {"filter": inbox, "sort": [{"property": "receivedAt"}], "limit": 3},  # ascending
        {"calculateTotal": True, "limit": 3},  # the whole account
        {"filter": inbox, "position": 1990, "limit": 20},  # deeper than QUICK_PAGE_END
        {"filter": inbox, "limit": True},  # rejected by the full path
        {"filter": inbox, "limit": -1},
        {"filter": inbox, "position": "1"},
        {"filter": inbox, "collapseThreads": True},
    ]
    for args in fast + slow:
        forget(r)
        assert (r.run(quick_page(call, args)) is not None) == (args in fast), args
        forget(r)
        cold = r.run(answer(call, args))
        built(r)
        assert cold == r.run(answer(call, args)), args
        assert r.run(quick_page(call, args)) is None  # the index answers from now on
    forget(r)
    first = r.run(answer(call, {"filter": inbox, "limit": 2}))
    built(r)
    anchored = r.run(answer(call, {"filter": inbox, "anchor": first["ids"][1], "limit": 1}))
    assert anchored["position"] == 1 and anchored["ids"] == first["ids"][1:]
    forget(r)
