"""The change feed: typed changes published after each commit, in commit order.

A backend hands each committed batch to :meth:`ChangeHub.publish` (from any thread); the hub
delivers it on the event loop to every subscriber of the user concerned, in the order of
the commits. IMAP IDLE and unsolicited responses, JMAP push and the webmail's live
updates are all subscribers. Callbacks run on the event loop and must not block.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    user_id: int
    modseq: int


@dataclass(frozen=True, slots=True)
class MessageAdded(Change):
    mailbox_id: int
    uid: int
    flags: int
    keywords: frozenset[str]
    size: int
    content_id: int = 0  # 0: not told (MessageInfo.content_id)


@dataclass(frozen=True, slots=True)
class FlagsChanged(Change):
    mailbox_id: int
    uid: int
    flags: int
    keywords: frozenset[str]


@dataclass(frozen=True, slots=True)
class MessagesExpunged(Change):
    mailbox_id: int
    uids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class MailboxCreated(Change):
    mailbox_id: int
    name: str


@dataclass(frozen=True, slots=True)
class MailboxRenamed(Change):
    mailbox_id: int
    old_name: str
    name: str


@dataclass(frozen=True, slots=True)
class MailboxDeleted(Change):
    mailbox_id: int
    name: str


@dataclass(frozen=True, slots=True)
class SubscriptionChanged(Change):
    """A mailbox name was subscribed or unsubscribed (``modseq`` 0: not versioned)."""

    name: str
    subscribed: bool


@dataclass(frozen=True, slots=True)
class MetadataChanged(Change):
    """RFC 5464 entries of a mailbox (``mailbox_id``) or of the server (``mailbox_id`` None)
    were set or removed (``modseq`` 0: annotations are not versioned)."""

    mailbox_id: int | None
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FeedGap(Change):
    """The feed lost changes (another node's, while the PostgreSQL listener was
    disconnected, or a batch too old to read back): whatever a subscriber derived from the
    feed may be stale and must be read again from the store. ``modseq`` is the user's
    MODSEQ read after the feed was whole again (0 for a subscriber of every user).
    Published by :meth:`ChangeHub.gap`, in order with the other changes."""


Callback = Callable[[Sequence[Change]], None]


class Subscription:
    """A registration; :meth:`close` ends it. ``None`` user means every user."""

    __slots__ = ("_hub", "callback", "user_id")

    def __init__(self, hub: ChangeHub, user_id: int | None, callback: Callback) -> None:
        self._hub = hub
        self.user_id = user_id
        self.callback = callback

    def close(self) -> None:
        self._hub._remove(self)


class ChangeHub:
    def __init__(self) -> None:
        self._subs: dict[int | None, list[Subscription]] = defaultdict(list)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, user_id: int | None, callback: Callback) -> Subscription:
        sub = Subscription(self, user_id, callback)
        self._subs[user_id].append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.user_id)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.user_id]

    def publish(self, changes: Sequence[Change]) -> None:
        """Hand committed changes to the event loop; safe from any thread, keeps order."""
        if not changes:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if _on_loop(loop):
                loop.call_soon(self._dispatch, changes)
            else:
                loop.call_soon_threadsafe(self._dispatch, changes)
        except RuntimeError:  # loop closing: nobody is listening any more
            pass

    def users(self) -> list[int]:
        """The users with a subscriber now."""
        return [u for u in self._subs if u is not None]

    def gap(self, modseqs: dict[int, int]) -> None:
        """Tell every subscriber that changes were lost (:class:`FeedGap`): a user's
        subscribers with the user's current MODSEQ from ``modseqs`` (0 when not there),
        subscribers of every user with one gap per user and one for user 0. Safe from any
        thread; delivered in order with the batches published before and after."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if _on_loop(loop):
                loop.call_soon(self._dispatch_gap, dict(modseqs))
            else:
                loop.call_soon_threadsafe(self._dispatch_gap, dict(modseqs))
        except RuntimeError:
            pass

    def _dispatch_gap(self, modseqs: dict[int, int]) -> None:
        every: list[Change] = [FeedGap(0, 0)]
        for user_id, subs in list(self._subs.items()):
            if user_id is None:
                continue
            gap = FeedGap(user_id, modseqs.get(user_id, 0))
            every.append(gap)
            for sub in list(subs):
                self._call(sub, [gap])
        for sub in list(self._subs.get(None, ())):
            self._call(sub, every)

    def _dispatch(self, changes: Sequence[Change]) -> None:
        by_user: dict[int, list[Change]] = defaultdict(list)
        for change in changes:
            by_user[change.user_id].append(change)
        for user_id, items in by_user.items():
            for sub in list(self._subs.get(user_id, ())):
                self._call(sub, items)
        for sub in list(self._subs.get(None, ())):
            self._call(sub, changes)

    @staticmethod
    def _call(sub: Subscription, items: Sequence[Change]) -> None:
        try:
            sub.callback(items)
        except Exception:  # one broken subscriber must not starve the others
            log.exception("change subscriber failed")

    async def stream(self, user_id: int | None) -> AsyncIterator[Change]:
        """Changes as an async iterator (convenient for tests and simple consumers)."""
        queue: asyncio.Queue[Change] = asyncio.Queue()

        def put(items: Sequence[Change]) -> None:
            for item in items:
                queue.put_nowait(item)

        sub = self.subscribe(user_id, put)
        try:
            while True:
                yield await queue.get()
        finally:
            sub.close()


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
