"""The full-text index is filled after the message is acknowledged (SQLite backend): search
sees every message at every moment, and a lost index batch is redone at open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from courriel.store.api import INBOX, BodyContains, HeaderContains
from courriel.store.sqlite.store import SQLiteStore
from tests.conftest import StoreRunner, message


def _indexed(root: Path) -> list[tuple[int, int]]:
    conn = sqlite3.connect(root / "courriel.db")
    try:
        rows = conn.execute(
            "SELECT c.id, EXISTS (SELECT 1 FROM contents_fts f WHERE f.rowid = c.id) FROM contents c"
            " WHERE c.indexed = 1 ORDER BY c.id"
        ).fetchall()
        return [(int(a), int(b)) for a, b in rows]
    finally:
        conn.close()


def _unindexed(root: Path) -> int:
    conn = sqlite3.connect(root / "courriel.db")
    try:
        return int(conn.execute("SELECT COUNT(*) FROM contents WHERE indexed = 0").fetchone()[0])
    finally:
        conn.close()


def test_search_sees_messages_not_indexed_yet(tmp_path: Path) -> None:
    r = StoreRunner(tmp_path)
    try:
        s = r.store
        assert isinstance(s, SQLiteStore)
        r.run(s.add_domain("example.test"))
        user = r.run(s.add_user("alice@example.test", "pw"))
        inbox = r.run(s.get_mailbox(user.id, INBOX))
        assert inbox is not None
        first = r.run(s.append(inbox.id, message("one", "the zebra crossing\r\n")))
        assert s._fulltext.items  # acknowledged before its index batch ran
        # a search through the index indexes what is pending first
        assert r.run(s.search(inbox.id, BodyContains("zebra"))) == [first.uid]
        assert not s._fulltext.items
        second = r.run(s.append(inbox.id, message("two", "a zebra again\r\n")))
        # a batch lost (as in a crash before it reached the disk): the file is read instead
        s._fulltext.items.clear()
        assert r.run(s.search(inbox.id, BodyContains("zebra"))) == [first.uid, second.uid]
        assert r.run(s.search(inbox.id, HeaderContains("subject", "two"))) == [second.uid]
        assert _unindexed(tmp_path) == 1
    finally:
        r.close()
    r = StoreRunner(tmp_path)  # the pass at open indexes it
    try:
        s = r.store
        assert isinstance(s, SQLiteStore) and s._backfill is not None
        r.run(s._backfill)
        assert _unindexed(tmp_path) == 0
        assert [has for _id, has in _indexed(tmp_path)] == [1, 1]
        assert r.run(s.search(inbox.id, BodyContains("zebra"))) == [first.uid, second.uid]
    finally:
        r.close()


def test_pending_texts_are_indexed_in_the_background(tmp_path: Path) -> None:
    r = StoreRunner(tmp_path)
    try:
        s = r.store
        assert isinstance(s, SQLiteStore)
        r.run(s.add_domain("example.test"))
        user = r.run(s.add_user("alice@example.test", "pw"))
        inbox = r.run(s.get_mailbox(user.id, INBOX))
        assert inbox is not None
        r.run(s.append(inbox.id, message("bg", "background words\r\n")))
        task = s._fulltext._task
        assert task is not None
        r.run(task)
        assert _unindexed(tmp_path) == 0 and not s._fulltext.items
        # close indexes what is still pending
        r.run(s.append(inbox.id, message("bg2", "more words\r\n")))
    finally:
        r.close()
    assert _unindexed(tmp_path) == 0
