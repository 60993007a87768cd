"""Store invariants under random sequences of operations (hypothesis stateful testing).

A plain-Python model follows every operation. After each step: UIDs strictly ascend and are
never reused within a UIDVALIDITY, each mailbox's HIGHESTMODSEQ grew if and only if it
changed, counters and flags agree with the model, the store's own check passes, and a replica
built only from the change feed equals the store (the feed is complete and in order).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from courriel.store.api import INBOX, Flag, FlagMode, StoreError
from courriel.store.changes import (
    Change,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MessageAdded,
    MessagesExpunged,
)
from tests.conftest import BACKENDS, StoreRunner

FLAGS = st.sampled_from([Flag(0), Flag.SEEN, Flag.DELETED, Flag.SEEN | Flag.FLAGGED, Flag.DELETED | Flag.SEEN])
KEYWORDS = st.frozensets(st.sampled_from(["$Junk", "Work", "todo"]), max_size=2)
NAMES = st.sampled_from(["A", "B", "A/x", "B/y/z", "Lists"])


@dataclass
class ModelBox:
    id: int
    name: str
    uidvalidity: int
    messages: dict[int, tuple[int, frozenset[str], bytes]] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    highestmodseq: int = 0


class StoreMachine(RuleBasedStateMachine):
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.r = StoreRunner(Path(self.tmp.name), self.backend)
        self.boxes: dict[int, ModelBox] = {}
        self.feed: list[Change] = []
        self.replica: dict[int, dict[int, tuple[int, frozenset[str]]]] = {}
        self.counter = 0

    @initialize()
    def setup(self) -> None:
        s = self.r.store
        self.r.run(s.add_domain("example.test"))
        self.user = self.r.run(s.add_user("u@example.test", "pw")).id
        self.r.settle()
        s.changes.subscribe(self.user, self.feed.extend)
        for m in self.r.run(s.list_mailboxes(self.user)):
            assert not m.noselect
            self.boxes[m.id] = ModelBox(m.id, m.name, m.uidvalidity, highestmodseq=m.highestmodseq)
            self.replica[m.id] = {}

    def teardown(self) -> None:
        self.r.close()
        self.tmp.cleanup()

    def _box(self, i: int) -> ModelBox:
        ids = sorted(self.boxes)
        return self.boxes[ids[i % len(ids)]]

    def _pick(self, box: ModelBox, picks: list[int]) -> list[int]:
        uids = sorted(box.messages)
        return sorted({uids[p % len(uids)] for p in picks}) if uids else []

    @rule(i=st.integers(0, 20), flags=FLAGS, kw=KEYWORDS, n=st.integers(1, 3))
    def append(self, i: int, flags: Flag, kw: frozenset[str], n: int) -> None:
        box = self._box(i)
        for _ in range(n):
            self.counter += 1
            data = f"Subject: m{self.counter}\r\n\r\nbody {self.counter}\r\n".encode()
            a = self.r.run(self.r.store.append(box.id, data, flags, kw))
            assert a.uid not in box.used and all(a.uid > u for u in box.used)
            assert a.uidvalidity == box.uidvalidity
            box.used.add(a.uid)
            box.messages[a.uid] = (int(flags), kw, data)
            assert a.modseq > box.highestmodseq
            box.highestmodseq = a.modseq

    @rule(i=st.integers(0, 20), picks=st.lists(st.integers(0, 50), max_size=4), mode=st.sampled_from(list(FlagMode)),
          flags=FLAGS, kw=KEYWORDS)  # fmt: skip
    def store_flags(self, i: int, picks: list[int], mode: FlagMode, flags: Flag, kw: frozenset[str]) -> None:
        box = self._box(i)
        uids = self._pick(box, picks)
        res = self.r.run(self.r.store.store_flags(box.id, uids, mode, flags, kw))
        changed = set()
        for uid in uids:
            old_f, old_k, data = box.messages[uid]
            if mode is FlagMode.ADD:
                nf, nk = old_f | int(flags), old_k | kw
            elif mode is FlagMode.REMOVE:
                nf, nk = old_f & ~int(flags), old_k - kw
            else:
                nf, nk = int(flags), kw
            if (nf, nk) != (old_f, old_k):
                changed.add(uid)
                box.messages[uid] = (nf, nk, data)
        assert {m.uid for m in res.changed} == changed
        if changed:
            assert res.changed[0].modseq > box.highestmodseq
            box.highestmodseq = res.changed[0].modseq

    @rule(src=st.integers(0, 20), dst=st.integers(0, 20), picks=st.lists(st.integers(0, 50), max_size=4),
          move=st.booleans())  # fmt: skip
    def copy_or_move(self, src: int, dst: int, picks: list[int], move: bool) -> None:
        a, b = self._box(src), self._box(dst)
        uids = self._pick(a, picks)
        if move and a.id == b.id:
            return
        op = self.r.store.move if move else self.r.store.copy
        pairs = self.r.run(op(a.id, uids, b.id))
        assert [p[0] for p in pairs] == uids
        for old, new in pairs:
            assert new not in b.used and all(new > u for u in b.used)
            b.used.add(new)
            b.messages[new] = a.messages[old]
            if move:
                del a.messages[old]
        if pairs:
            box = self.r.run(self.r.store.get_mailbox_by_id(b.id))
            assert box is not None and box.highestmodseq > b.highestmodseq
            b.highestmodseq = box.highestmodseq
            if move:
                abox = self.r.run(self.r.store.get_mailbox_by_id(a.id))
                assert abox is not None and abox.highestmodseq > a.highestmodseq
                a.highestmodseq = abox.highestmodseq

    @rule(i=st.integers(0, 20))
    def expunge(self, i: int) -> None:
        box = self._box(i)
        gone = self.r.run(self.r.store.expunge(box.id))
        expected = sorted(u for u, (f, _, _) in box.messages.items() if f & Flag.DELETED)
        assert gone == expected
        for uid in gone:
            del box.messages[uid]
        if gone:
            mb = self.r.run(self.r.store.get_mailbox_by_id(box.id))
            assert mb is not None and mb.highestmodseq > box.highestmodseq
            box.highestmodseq = mb.highestmodseq

    @rule(name=NAMES)
    def create(self, name: str) -> None:
        try:
            self.r.run(self.r.store.create_mailbox(self.user, name))
        except StoreError:
            return
        self._sync_boxes()

    @precondition(lambda self: len(self.boxes) > 6)
    @rule(i=st.integers(0, 20))
    def delete(self, i: int) -> None:
        box = self._box(i)
        if box.name == INBOX:
            return
        try:
            self.r.run(self.r.store.delete_mailbox(self.user, box.name))
        except StoreError:
            return
        box.messages.clear()
        self._sync_boxes()

    def _sync_boxes(self) -> None:
        current = {m.id: m for m in self.r.run(self.r.store.list_mailboxes(self.user)) if not m.noselect}
        for mid in list(self.boxes):
            if mid not in current:
                del self.boxes[mid]
        for mid, m in current.items():
            if mid not in self.boxes or m.uidvalidity != self.boxes[mid].uidvalidity:
                self.boxes[mid] = ModelBox(mid, m.name, m.uidvalidity, highestmodseq=m.highestmodseq)
            else:
                assert m.highestmodseq >= self.boxes[mid].highestmodseq
                self.boxes[mid].highestmodseq = m.highestmodseq

    @invariant()
    def store_matches_model(self) -> None:
        if not self.boxes:
            return
        s = self.r.store
        assert self.r.run(s.check()) == []
        for box in self.boxes.values():
            mb = self.r.run(s.get_mailbox_by_id(box.id))
            assert mb is not None
            infos = self.r.run(s.list_messages(box.id))
            assert [m.uid for m in infos] == sorted(box.messages)
            for m in infos:
                flags, kw, _ = box.messages[m.uid]
                assert (int(m.flags), m.keywords) == (flags, kw)
            assert mb.messages == len(box.messages)
            assert mb.unseen == sum(1 for f, _, _ in box.messages.values() if not f & Flag.SEEN)
            assert mb.highestmodseq == box.highestmodseq
            assert all(u < mb.uidnext for u in box.used)

    @invariant()
    def feed_replica_matches(self) -> None:
        if not self.boxes:
            return
        self.r.settle()
        last = 0
        for change in self.feed:
            assert change.modseq >= last  # commit order
            last = change.modseq
            if isinstance(change, MessageAdded):
                self.replica.setdefault(change.mailbox_id, {})[change.uid] = (change.flags, change.keywords)
            elif isinstance(change, FlagsChanged):
                self.replica[change.mailbox_id][change.uid] = (change.flags, change.keywords)
            elif isinstance(change, MessagesExpunged):
                for uid in change.uids:
                    del self.replica[change.mailbox_id][uid]
            elif isinstance(change, MailboxCreated):
                self.replica.setdefault(change.mailbox_id, {})
            elif isinstance(change, MailboxDeleted):
                del self.replica[change.mailbox_id]
        self.feed.clear()
        for box in self.boxes.values():
            assert self.replica.get(box.id, {}) == {u: (f, k) for u, (f, k, _) in box.messages.items()}


class PostgresStoreMachine(StoreMachine):
    backend = "postgres"


StoreMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Each PostgreSQL step costs a few round trips more: fewer examples keep the suite's budget.
PostgresStoreMachine.TestCase.settings = settings(
    max_examples=8,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
if "sqlite" in BACKENDS:
    TestStoreInvariants = StoreMachine.TestCase
if "postgres" in BACKENDS:
    TestStoreInvariantsPostgres = PostgresStoreMachine.TestCase
