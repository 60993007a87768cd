"""The cached SORT orders of the shared mailbox index (courriel.imap.sortcache): after every
change of membership (messages appended with keys landing in the middle, expunged, both, a
message the store lost before the index heard of it) the cached order equals a sort from
scratch, its rendered response too, and only the new messages are read from the store."""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from courriel.imap import sortcache
from courriel.imap.mailindex import MailboxIndex
from courriel.imap.sortcache import Criteria, Rendered, SortOrder, ordered
from courriel.store.api import INBOX, All, Flag, FlagMode, SortKey
from courriel.store.changes import Change
from tests.conftest import BACKENDS, StoreRunner

#: (Subject, Date, From, body padding); UIDs 1.. in this order. RFC 5256 §2.1 base subjects:
#: "Re:", "Fwd:", "[blob]", "[fwd: ...]", "(fwd)" and case do not count.
FIRST = [
    ("Re: Budget", "Tue, 02 Jan 2024 10:00:00 +0000", "zed@example.test", 300),  # 1 budget
    ("budget", "Wed, 03 Jan 2024 10:00:00 +0000", "amy@example.test", 0),  # 2 budget
    ("[fwd: Agenda]", "Mon, 01 Jan 2024 10:00:00 +0000", "bob@example.test", 100),  # 3 agenda
    ("Agenda (fwd)", "Thu, 04 Jan 2024 10:00:00 +0000", "amy@example.test", 100),  # 4 agenda
    ("RE[2]: re: Budget", "Mon, 01 Jan 2024 10:00:00 +0000", "cat@example.test", 50),  # 5 budget
    ("[list] Re: zebra", "Tue, 02 Jan 2024 10:00:00 +0000", "dan@example.test", 0),  # 6 zebra
    ("Fwd: [fwd: agenda]", "Fri, 05 Jan 2024 10:00:00 +0000", "eve@example.test", 10),  # 7 agenda
]
#: Appended later: keys landing in the middle of every order, ties with older messages.
LATER = [
    ("Re: agenda", "Tue, 02 Jan 2024 10:00:00 +0000", "bob@example.test", 100),  # 8 agenda
    ("Candidates", "Wed, 03 Jan 2024 09:00:00 +0000", "amy@example.test", 300),  # 9 candidates
    ("Re: Budget", "Tue, 02 Jan 2024 10:00:00 +0000", "zed@example.test", 300),  # 10: all as 1
]

CRITERIA: list[Criteria] = [
    (("subject", False),),
    (("subject", True),),
    (("date", False),),
    (("arrival", True),),
    (("from", False), ("size", True)),
    (("size", False), ("subject", True)),
    (("displayfrom", True), ("date", True)),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Box:
    """A mailbox, its index, and the changes the feed published, applied when asked."""

    def __init__(self, runner: StoreRunner) -> None:
        self.runner = runner
        s = runner.store
        runner.run(s.add_domain("example.test"))
        self.user = runner.run(s.add_user("alice@example.test", "pw")).id
        inbox = runner.run(s.get_mailbox(self.user, INBOX))
        assert inbox is not None
        self.id = inbox.id
        self.changes: list[Change] = []
        self.sub = s.changes.subscribe(self.user, self.changes.extend)
        self.append(FIRST)
        self.index = MailboxIndex(runner.run(s.snapshot(self.id)))
        self.changes.clear()
        self.since: list[int] = []  # since_uid of every sort_values call
        real = s.sort_values

        async def spy(mailbox_id: int, keys: Sequence[SortKey], since_uid: int = 1) -> Any:
            self.since.append(since_uid)
            return await real(mailbox_id, keys, since_uid)

        s.sort_values = spy  # type: ignore[method-assign]

    def append(self, messages: list[tuple[str, str, str, int]]) -> None:
        for subject, date, sender, pad in messages:
            data = f"From: {sender}\r\nTo: alice@example.test\r\nSubject: {subject}\r\nDate: {date}\r\n\r\n{'x' * pad}.\r\n"
            self.runner.run(self.runner.store.append(self.id, data.encode()))

    def expunge(self, uids: list[int]) -> None:
        self.runner.run(self.runner.store.delete_messages(self.id, uids))

    def apply(self) -> None:
        self.runner.settle()
        self.index.apply(self.changes)
        self.changes.clear()

    def order(self, criteria: Criteria) -> SortOrder:
        order = self.runner.run(ordered(self.runner.store, self.index, criteria))
        assert order is not None and order.synced is self.index.uids
        return order

    def check(self, criteria: Criteria) -> list[int]:
        """The cached order against a sort from scratch (only messages the index knows)."""
        order = self.order(criteria)
        keys = [SortKey(name, rev) for name, rev in criteria]
        known = set(self.index.uids)
        expected = [u for u in self.runner.run(self.runner.store.sort(self.id, keys, All())) if u in known]
        assert list(order.uids) == expected, criteria
        assert order.text(True) == b"".join(b" %d" % u for u in expected)
        seq = {u: i + 1 for i, u in enumerate(self.index.uids)}
        assert order.text(False) == b"".join(b" %d" % seq[u] for u in expected)
        assert order.numbers() == [seq[u] for u in expected]
        return expected


@pytest.fixture
def box(runner: StoreRunner) -> Iterator[Box]:
    b = Box(runner)
    yield b
    b.sub.close()


def test_orders_follow_appends_and_expunges(box: Box) -> None:
    for criteria in CRITERIA:
        box.check(criteria)
    # RFC 5256 §3: base subjects, ties in mailbox order (REVERSE too: only the key reverses)
    assert box.check((("subject", False),)) == [3, 4, 7, 1, 2, 5, 6]
    assert box.check((("subject", True),)) == [6, 1, 2, 5, 3, 4, 7]
    assert box.check((("date", False),)) == [3, 5, 1, 6, 2, 4, 7]
    subject = box.order((("subject", False),))

    box.append(LATER)
    box.apply()
    box.since.clear()
    assert box.check((("subject", False),)) == [3, 4, 7, 8, 1, 2, 5, 10, 9, 6]
    assert box.order((("subject", False),)) is subject  # kept, not rebuilt
    assert box.check((("subject", True),)) == [6, 9, 1, 2, 5, 10, 3, 4, 7, 8]
    assert box.check((("date", False),)) == [3, 5, 1, 6, 8, 10, 9, 2, 4, 7]
    for criteria in CRITERIA:
        box.check(criteria)

    box.expunge([1, 4, 9])
    box.apply()
    box.since.clear()
    last = box.order(CRITERIA[-1])  # still cached (the loop above used it last)
    assert box.since == []  # an expunge needs no query
    assert box.check(CRITERIA[-1]) and box.order(CRITERIA[-1]) is last
    assert box.check((("subject", False),)) == [3, 7, 8, 2, 5, 10, 6]
    for criteria in CRITERIA:
        box.check(criteria)

    # both at once, the last UID expunged too, then everything gone
    box.append(LATER)  # 11, 12, 13
    box.expunge([2, 11, 13])
    box.apply()
    assert box.check((("subject", False),)) == [3, 7, 8, 5, 10, 12, 6]
    for criteria in CRITERIA:
        box.check(criteria)
    box.expunge(list(box.index.uids))
    box.apply()
    for criteria in CRITERIA:
        assert box.check(criteria) == []
        assert box.order(criteria).text(True) == b""
    box.append(FIRST[:2])
    box.apply()
    assert box.check((("subject", False),)) == [14, 15]


def test_queries(box: Box) -> None:
    """The first order costs one sort; the values are read with the first message to
    place; after that, only the new messages are read, and an expunge reads nothing."""
    criteria: Criteria = (("subject", False),)
    box.check(criteria)
    assert box.since == [] and box.order(criteria).columns is None
    box.append(LATER[:1])  # 8
    box.apply()
    assert box.check(criteria) == [3, 4, 7, 8, 1, 2, 5, 6] and box.since == [1]
    box.append(LATER[1:])  # 9, 10
    box.apply()
    assert box.check(criteria) == [3, 4, 7, 8, 1, 2, 5, 10, 9, 6] and box.since == [1, 9]
    box.expunge([2, 9])
    box.apply()
    assert box.check(criteria) == [3, 4, 7, 8, 1, 5, 10, 6] and box.since == [1, 9]


def test_a_message_gone_before_the_index_heard(box: Box) -> None:
    criteria: Criteria = (("subject", False),)
    box.check(criteria)
    box.append(LATER)  # 8, 9, 10 (the index hears of them)
    box.apply()
    box.expunge([9])  # ... but not of this yet: a ghost when the order is refreshed
    assert box.order(criteria).ghosts == {9}
    assert list(box.order(criteria).uids) == [3, 4, 7, 8, 1, 2, 5, 10, 6]
    box.since.clear()
    box.apply()
    assert box.check(criteria) == [3, 4, 7, 8, 1, 2, 5, 10, 6]
    assert box.order(criteria).ghosts == set() and box.since == []  # forgotten, no query
    box.expunge([3])  # the index does not know yet: the order is the index's view
    assert list(box.order(criteria).uids)[:2] == [3, 4]
    box.apply()
    assert box.check(criteria)[:2] == [4, 7]


def test_many_new_messages_rebuild_and_orders_are_bounded(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    criteria: Criteria = (("date", True),)
    box.check(criteria)
    box.append(LATER[:1])
    box.apply()
    box.check(criteria)
    monkeypatch.setattr(sortcache, "REBUILD", 1)
    box.append(LATER[1:])
    box.apply()
    box.since.clear()
    box.check(criteria)
    assert box.since == [1]  # more than REBUILD new: the whole order read again
    for c in CRITERIA:
        box.order(c)
    assert len(box.index.sorts) == sortcache.MAX_ORDERS
    assert list(box.index.sorts) == CRITERIA[-sortcache.MAX_ORDERS :]


def test_flag_changes_keep_the_order(box: Box) -> None:
    criteria: Criteria = (("subject", False),)
    order = box.order(criteria)
    synced = order.synced
    box.runner.run(box.runner.store.store_flags(box.id, [1, 2], FlagMode.ADD, Flag.SEEN))
    box.apply()
    box.since.clear()
    assert box.order(criteria).synced is synced
    assert box.since == []


@pytest.mark.parametrize("block", [1, 2, 3, 512])
def test_rendered_insertions(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sortcache, "BLOCK", block)
    numbers: list[int] = []
    text = Rendered(numbers)
    assert text.text() == b""
    for i, at in enumerate([0, 0, 1, 3, 2, 0, 6, 4, 4, 9, 1, 5]):
        numbers.insert(at, 100 + i)
        text.insert(at, 100 + i)
        assert text.text() == b"".join(b" %d" % n for n in numbers)
        assert sum(text.counts) == len(numbers)
    again = Rendered(numbers)
    assert again.text() == text.text()


def test_membership_and_numbers_dense_or_sparse() -> None:
    for uids in ([3, 5, 9], [2, 10**6, 4 * 10**9]):  # a byte per UID, or a set
        target = array("I", uids)
        member = sortcache._member(target, 7)
        assert [bool(member(u)) for u in (2, 3, 4, 5, 7, 9)] == [u in uids for u in (2, 3, 4, 5, 7, 9)]
        order = SortOrder((("size", False),))
        order.uids = array("I", [uids[2], uids[0], uids[1]])
        order.synced = target
        assert order.numbers() == [3, 1, 2]
        assert order.text(False) == b" 3 1 2" and order.text(True) == b" %d %d %d" % (uids[2], uids[0], uids[1])
