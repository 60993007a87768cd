"""The shared mailbox index (idempotent application of changes) and the full-text index's
backfill of messages stored before it existed."""

from __future__ import annotations

import sqlite3
from array import array
from pathlib import Path

from courriel.imap.mailindex import MailboxIndex
from courriel.imap.selected import Selected
from courriel.store.api import INBOX, BodyContains, Flag, Mailbox, MailboxSnapshot
from courriel.store.changes import FlagsChanged, MessageAdded, MessagesExpunged
from courriel.store.sqlite import fulltext
from tests.conftest import StoreRunner


def _index(uids: list[int]) -> MailboxIndex:
    mb = Mailbox(7, 1, "INBOX", 42, (uids[-1] + 1) if uids else 1, 10, None, False, len(uids), 0, 0, 0)
    return MailboxIndex(MailboxSnapshot(mb, array("I", uids), array("B", [0] * len(uids)),
                                        array("Q", [5] * len(uids)), {}))  # fmt: skip


def test_index_applies_changes_once() -> None:
    index = _index([1, 2, 3])
    before = index.uids
    changes = [
        MessageAdded(1, 11, 7, 3, 0, frozenset(), 10),  # already in the snapshot: ignored
        MessageAdded(1, 11, 7, 4, int(Flag.SEEN), frozenset({"$x"}), 10),
        FlagsChanged(1, 12, 7, 2, int(Flag.FLAGGED), frozenset()),
        FlagsChanged(1, 4, 7, 1, int(Flag.DELETED), frozenset()),  # older than the row: ignored
        MessagesExpunged(1, 13, 7, (3, 99)),
        MessageAdded(1, 14, 8, 50, 0, frozenset(), 10),  # another mailbox
    ]
    index.apply(changes)
    index.apply(changes)  # a second delivery of the same changes changes nothing
    assert list(index.uids) == [1, 2, 4] and list(before) == [1, 2, 3]  # copy on write
    assert list(index.flags) == [0, int(Flag.FLAGGED), int(Flag.SEEN)]
    assert index.keywords == {4: frozenset({"$x"})} and index.kwset == {"$x"}
    assert index.highestmodseq == 13 and index.uidnext == 5
    assert index.first_unseen() == 0
    index.apply([FlagsChanged(1, 15, 7, u, int(Flag.SEEN), frozenset()) for u in (1, 2)])
    assert index.first_unseen() == -1


def test_index_flag_changes_of_a_store_batch() -> None:
    """The fast path for runs of FlagsChanged: other mailboxes, unknown UIDs and older
    MODSEQs ignored, keywords set and cleared."""
    index = _index([1, 2, 3])
    index.apply([
        FlagsChanged(1, 20, 7, 1, int(Flag.SEEN), frozenset({"$a"})),
        FlagsChanged(1, 20, 7, 2, int(Flag.SEEN), frozenset()),
        FlagsChanged(1, 20, 7, 9, int(Flag.SEEN), frozenset()),  # not in the mailbox
        FlagsChanged(1, 21, 8, 3, int(Flag.SEEN), frozenset()),  # another mailbox
        FlagsChanged(1, 3, 7, 3, int(Flag.SEEN), frozenset()),  # older than the row
    ])  # fmt: skip
    assert list(index.flags) == [int(Flag.SEEN), int(Flag.SEEN), 0] and list(index.modseqs) == [20, 20, 5]
    assert index.keywords == {1: frozenset({"$a"})} and index.highestmodseq == 20
    index.apply([FlagsChanged(1, 22, 7, 1, 0, frozenset())])
    assert index.keywords == {} and index.flags[0] == 0 and index.highestmodseq == 22


def _selected(index: MailboxIndex) -> Selected:
    mb = Mailbox(7, 1, "INBOX", 42, index.uidnext, index.highestmodseq, None, False, len(index.uids), 0, 0, 0)
    return Selected(mb, False, index)


def test_selected_shares_the_index_after_its_own_append() -> None:
    index = _index([1, 2, 3])
    sel = _selected(index)
    assert sel.uids is index.uids  # aligned
    index.apply([MessageAdded(1, 11, 7, 4, 0, frozenset(), 10)])  # the feed, before APPEND returns
    assert sel.uids is not index.uids and list(sel.uids) == [1, 2, 3]
    assert sel.add(4) and sel.uids is index.uids and list(sel.uids) == [1, 2, 3, 4]  # shared, not copied
    assert not sel.add(4)  # the same change from the session's queue: nothing new
    # Another session's message came first: the index's array is not ours plus one UID.
    index.apply([MessageAdded(1, 12, 7, 5, 0, frozenset(), 10)])
    index.apply([MessageAdded(1, 13, 7, 6, 0, frozenset(), 10)])
    assert sel.add(6) and sel.uids is not index.uids and list(sel.uids) == [1, 2, 3, 4, 6]
    assert list(index.uids) == [1, 2, 3, 4, 5, 6]  # the index's array untouched
    # An expunge the session has not announced yet: its view keeps the message.
    index = _index([1, 2, 3])
    sel = _selected(index)
    index.apply([MessagesExpunged(1, 11, 7, (2,))])
    index.apply([MessageAdded(1, 12, 7, 4, 0, frozenset(), 10)])
    assert sel.add(4) and sel.uids is not index.uids and list(sel.uids) == [1, 2, 3, 4]
    assert list(index.uids) == [1, 3, 4]


def test_index_keeps_sizes_and_contents_aligned() -> None:
    uids = [1, 2, 3]
    mb = Mailbox(7, 1, "INBOX", 42, 4, 10, None, False, 3, 0, 0, 0)
    snap = MailboxSnapshot(mb, array("I", uids), array("B", [0] * 3), array("Q", [5] * 3), {},
                           array("I", [100, 200, 300]), array("Q", [11, 12, 13]))  # fmt: skip
    index = MailboxIndex(snap)
    index.apply([MessageAdded(1, 11, 7, 4, 0, frozenset(), 400, 14), MessagesExpunged(1, 12, 7, (2,))])
    assert list(index.uids) == [1, 3, 4]
    assert list(index.sizes or ()) == [100, 300, 400] and list(index.content_ids or ()) == [11, 13, 14]
    index.apply([MessagesExpunged(1, 13, 7, tuple(range(1, 80)))])  # the other removal path
    assert list(index.uids) == [] and list(index.sizes or ()) == [] and list(index.content_ids or ()) == []
    # a change without its content id: FETCH reads the rows from then on
    index.apply([MessageAdded(1, 14, 7, 90, 0, frozenset(), 10)])
    assert index.sizes is None and index.content_ids is None
    assert _index([1]).content_ids is None  # a snapshot without them


def test_fulltext_backfill(tmp_path: Path) -> None:
    r = StoreRunner(tmp_path)
    try:
        s = r.store
        r.run(s.add_domain("example.test"))
        user = r.run(s.add_user("fts@example.test", "pw-fts-123"))
        inbox = r.run(s.get_mailbox(user.id, INBOX))
        assert inbox is not None
        for text in ("alpha bravo", "charlie delta", "bravo echo"):
            r.run(s.append(inbox.id, f"Subject: t\r\n\r\n{text}\r\n".encode()))
        assert r.run(s.search(inbox.id, BodyContains("bravo"))) == [1, 3]
        # Pretend the rows came from schema 3: no index entries, not marked indexed.
        conn = sqlite3.connect(tmp_path / "courriel.db")
        conn.execute("DELETE FROM contents_fts")
        conn.execute("UPDATE contents SET indexed = 0")
        conn.commit()
        conn.close()
        assert r.run(s.search(inbox.id, BodyContains("bravo"))) == [1, 3]  # read from the files
        assert r.run(fulltext.backfill(s)) == 3
        assert r.run(fulltext.backfill(s)) == 0
        assert r.run(s.search(inbox.id, BodyContains("bravo"))) == [1, 3]
        assert r.run(s.search(inbox.id, BodyContains("CHARLIE D"))) == [2]
        r.run(s.expunge(inbox.id, None))  # nothing flagged: no change
        r.run(s.delete_messages(inbox.id, [2]))
        assert r.run(s.search(inbox.id, BodyContains("charlie"))) == []
    finally:
        r.close()
