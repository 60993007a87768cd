"""The PostgreSQL change feed publishes a node's own batches in LISTEN order (issue 12).

PostgreSQL delivers notifications in commit order. A node's own batch used to be published
by the writer after its barrier, while the listener, already past that notification, could
publish a later batch of another node first: an IMAP session then learnt of UID 11 (another
node's, committed later) before UID 10 (its own) and dropped 10 for ever. These tests drive
:class:`courriel.store.postgres.feed.Listener` with the notifications as PostgreSQL sends
them (no database needed) and check what the local hub publishes, and in which order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from courriel.store.changes import Change, ChangeHub, MessageAdded
from courriel.store.postgres import feed
from courriel.store.postgres.db import Database

USER, MAILBOX = 7, 3


def _added(uid: int) -> MessageAdded:
    return MessageAdded(USER, uid, MAILBOX, uid, 0, frozenset(), 100)


async def _no_log(_id: int) -> str | None:
    return None


class _Node:
    """One node's Database bookkeeping and Listener around a hub that records publications."""

    def __init__(self) -> None:
        self.hub = ChangeHub()
        self.hub.bind(asyncio.get_running_loop())
        self.seen: list[int] = []
        self.hub.subscribe(USER, self._record)
        self.db = Database("postgresql://127.0.0.1:1/none", self.hub, bytea=True)
        self.listener = feed.Listener(self.db.dsn, self.db.node, self.hub, _no_log, self.db.publish_own)
        self.db.barrier = self.listener.barrier
        self.listener.connected = True

    def _record(self, changes: Sequence[Change]) -> None:
        self.seen.extend(c.uid for c in changes if isinstance(c, MessageAdded))

    def commit_own(self, uid: int) -> int:
        """What a writer does before COMMIT: number the batch and register it."""
        self.db.seq += 1
        self.db.unpublished[self.db.seq] = [_added(uid)]
        return self.db.seq

    def own_note(self, seq: int, uid: int) -> str:
        return f"{self.db.node}#{seq} {feed.encode([_added(uid)])}"


def _other_note(uid: int, seq: int = 1) -> str:
    return f"othernode#{seq} {feed.encode([_added(uid)])}"


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_own_batch_is_published_before_a_later_batch_of_another_node() -> None:
    async def run() -> list[int]:
        node = _Node()
        seq = node.commit_own(10)
        # COMMIT returned; the writer waits for its batch to come back ...
        writer = asyncio.create_task(node.db._published(seq))
        await asyncio.sleep(0)
        # ... while the listener takes both notifications without yielding in between.
        await node.listener._handle(node.own_note(seq, 10))
        await node.listener._handle(_other_note(11))
        await writer
        await _settle()
        assert not node.db.unpublished
        return node.seen

    assert asyncio.run(run()) == [10, 11]


def test_every_batch_is_published_once_in_commit_order() -> None:
    async def run() -> list[int]:
        node = _Node()
        writers = []
        notes = []
        for uid in range(1, 41):
            if uid % 3 == 0:
                notes.append(_other_note(uid, uid))
            else:
                seq = node.commit_own(uid)
                notes.append(node.own_note(seq, uid))
                writers.append(asyncio.create_task(node.db._published(seq)))
        await asyncio.sleep(0)
        for note in notes:  # PostgreSQL's delivery order = commit order
            await node.listener._handle(note)
        await asyncio.gather(*writers)
        await _settle()
        return node.seen

    assert asyncio.run(run()) == list(range(1, 41))


def test_the_writer_publishes_itself_when_the_listener_is_down() -> None:
    async def run() -> list[int]:
        node = _Node()
        node.listener.connected = False  # reconnecting: the notification will never come
        seq = node.commit_own(5)
        await asyncio.wait_for(node.db._published(seq), 5)
        # a late duplicate of the notification publishes nothing more
        await node.listener._handle(node.own_note(seq, 5))
        await _settle()
        return node.seen

    assert asyncio.run(run()) == [5]


def test_a_batch_that_did_not_commit_is_never_published() -> None:
    async def run() -> list[int]:
        node = _Node()
        seq = node.commit_own(8)
        node.db.unpublished.pop(seq)  # what the writer does when COMMIT fails
        await node.listener._handle(_other_note(9))
        await _settle()
        return node.seen

    assert asyncio.run(run()) == [9]
