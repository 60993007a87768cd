"""What every session of one process shares: one change-feed subscription per user, fanned
out to that user's sessions, and a packed index of each selected mailbox.

A :class:`MailboxIndex` holds a mailbox's UIDs (``array('I')``), flags (``array('B')``),
MODSEQs (``array('Q')``) and keywords, read once with :meth:`Store.snapshot` and kept
current from the change feed, so SELECT, UID FETCH (FLAGS), STORE replies and the like
need no query. The UID array is never changed in place: a change of membership builds a
new one, so a session whose view equals the index simply holds the same array object
(copy-on-write, see :class:`courriel.imap.selected.Selected`) and an idle session costs
no per-message memory. Flags and MODSEQs are updated in place (they are read through the
index, aligned with the index's own UID array).

Changes apply idempotently (an add at or below the last UID, a flag change not newer than
the stored MODSEQ, an expunge of an absent UID are ignored), so a change both inside a
snapshot and published after the subscription is counted once. An index is checked
against the mailbox row read by SELECT and read again when another process changed it.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from weakref import ReferenceType, WeakKeyDictionary, ref

from courriel.store.api import Flag, Mailbox, MailboxSnapshot, Store
from courriel.store.changes import (
    Change,
    FeedGap,
    FlagsChanged,
    MailboxCreated,
    MailboxDeleted,
    MailboxRenamed,
    MessageAdded,
    MessagesExpunged,
    Subscription,
)

if TYPE_CHECKING:
    from courriel.imap.sortcache import Criteria, SortOrder

Listener = Callable[[Sequence[Change]], None]
#: Users whose feed (and indexes) stay after their last session ends, for quick re-login.
IDLE_FEEDS = 32
_SEEN_MAP = bytes(0 if not (i & Flag.SEEN) else 1 for i in range(256))
#: Change types that carry ``mailbox_id`` and concern an index (compared by exact type:
#: the change dataclasses have no subclasses, and a set lookup is cheaper than isinstance).
_MAILBOX_CHANGES = frozenset({MessageAdded, FlagsChanged, MessagesExpunged, MailboxDeleted, MailboxRenamed})
#: Changes after which a mailbox name may mean another mailbox.
_NAMING_CHANGES = frozenset({MailboxCreated, MailboxDeleted, MailboxRenamed, FeedGap})


log = logging.getLogger("courriel.imap")

class MailboxIndex:
    __slots__ = (
        "content_ids", "flags", "grown_from", "highestmodseq", "id", "keywords", "kwset", "modseqs", "sizes", "sorts",
        "uidnext", "uids", "uidvalidity", "valid",
    )  # fmt: skip

    def __init__(self, snap: MailboxSnapshot) -> None:
        mb = snap.mailbox
        self.id = mb.id
        self.uidvalidity = mb.uidvalidity
        self.uids = snap.uids
        #: The array ``uids`` was built from by appending its last UID alone (weakly held),
        #: so that a session holding that array can share ``uids`` after its own APPEND
        #: without copying or comparing (:meth:`Selected.add`).
        self.grown_from: ReferenceType[array[int]] | None = None
        self.flags = snap.flags
        self.modseqs = snap.modseqs
        # RFC822.SIZE and the content (ENVELOPE, BODYSTRUCTURE) by position, when the
        # backend's snapshot has them (None: FETCH reads the rows).
        self.sizes = snap.sizes
        self.content_ids = snap.content_ids
        if self.sizes is None or self.content_ids is None or len(self.sizes) != len(self.uids):
            self.sizes = self.content_ids = None
        self.keywords = snap.keywords
        self.kwset: set[str] = set().union(*snap.keywords.values()) if snap.keywords else set()
        self.highestmodseq = mb.highestmodseq
        self.uidnext = max(mb.uidnext, snap.uids[-1] + 1 if snap.uids else 1)
        self.valid = True
        #: SORT orders of the whole mailbox by criteria (courriel.imap.sortcache), LRU last.
        self.sorts: dict[Criteria, SortOrder] = {}

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def position(self, uid: int) -> int:
        """Index of ``uid`` in :attr:`uids`, -1 when absent."""
        i = bisect_left(self.uids, uid)
        return i if i < len(self.uids) and self.uids[i] == uid else -1

    def first_unseen(self) -> int:
        """Position of the first message without \\Seen, -1 when none."""
        return self.flags.tobytes().translate(_SEEN_MAP).find(b"\0")

    def fresh_for(self, mb: Mailbox) -> bool:
        """Whether this index is at least as new as a mailbox row just read."""
        return self.valid and mb.uidvalidity == self.uidvalidity and self.highestmodseq >= mb.highestmodseq

    def apply(self, changes: Sequence[Change]) -> None:
        added: list[MessageAdded] = []
        my_id, uids, flags, modseqs = self.id, self.uids, self.flags, self.modseqs
        for ch in changes:
            kind = type(ch)
            if type(ch) is FlagsChanged:  # the common case first (a STORE's batch)
                if ch.mailbox_id != my_id:
                    continue
                if added:  # messages added before this change come first
                    self._add(added)
                    added = []
                    uids, flags, modseqs = self.uids, self.flags, self.modseqs
                if ch.modseq > self.highestmodseq:
                    self.highestmodseq = ch.modseq
                i = bisect_left(uids, ch.uid)
                if i < len(uids) and uids[i] == ch.uid and ch.modseq > modseqs[i]:
                    flags[i] = ch.flags
                    modseqs[i] = ch.modseq
                    if ch.keywords or self.keywords:
                        self._set_keywords(ch.uid, ch.keywords)
                continue
            if kind is FeedGap:
                self.valid = False  # changes were lost: read the mailbox again
                break
            if kind not in _MAILBOX_CHANGES or getattr(ch, "mailbox_id", None) != my_id:
                continue
            if ch.modseq > self.highestmodseq:
                self.highestmodseq = ch.modseq
            if isinstance(ch, MessageAdded):
                if ch.uid > (added[-1].uid if added else self.last_uid):
                    added.append(ch)
                elif not added and self.position(ch.uid) < 0:
                    # A UID below ones already known, never seen: a change that arrived out of
                    # commit order (another node's). Reload from the store rather than miss it.
                    log.warning("imap: mailbox %d: UID %d arrived after higher ones; reloading", self.id, ch.uid)
                    self.valid = False
                continue
            if added:
                self._add(added)
                added = []
            if isinstance(ch, MessagesExpunged):
                self._remove(ch.uids)
            else:  # MailboxDeleted, MailboxRenamed
                self.valid = False
            uids, flags, modseqs = self.uids, self.flags, self.modseqs  # arrays replaced by _add / _remove
        if added:
            self._add(added)

    def _set_keywords(self, uid: int, keywords: frozenset[str]) -> None:
        if keywords:
            self.keywords[uid] = keywords
            self.kwset |= keywords
        else:
            self.keywords.pop(uid, None)

    def _add(self, added: list[MessageAdded]) -> None:
        old = self.uids
        self.uids = old + array("I", [a.uid for a in added])  # a new array: sessions keep theirs
        self.grown_from = ref(old) if len(added) == 1 else None
        # Flags and MODSEQs are read by position below a session's own length: extended in
        # place (amortised O(1) per message, where a copy costs O(mailbox) per APPEND).
        self.flags.extend([a.flags for a in added])
        self.modseqs.extend([a.modseq for a in added])
        if self.sizes is not None and self.content_ids is not None:
            if all(a.content_id for a in added):
                self.sizes.extend([a.size for a in added])
                self.content_ids.extend([a.content_id for a in added])
            else:  # a backend that does not tell: FETCH reads the rows from now on
                self.sizes = self.content_ids = None
        for a in added:
            self._set_keywords(a.uid, a.keywords)
        self.uidnext = max(self.uidnext, added[-1].uid + 1)

    def _remove(self, uids: Sequence[int]) -> None:
        gone = {i for i in (self.position(u) for u in uids) if i >= 0}
        if not gone:
            return
        self.grown_from = None
        keep = [i for i in range(len(self.uids)) if i not in gone] if len(gone) > 64 else None
        if keep is not None:
            self.uids = array("I", [self.uids[i] for i in keep])
            self.flags = array("B", [self.flags[i] for i in keep])
            self.modseqs = array("Q", [self.modseqs[i] for i in keep])
            if self.sizes is not None and self.content_ids is not None:
                self.sizes = array("I", [self.sizes[i] for i in keep])
                self.content_ids = array("Q", [self.content_ids[i] for i in keep])
        else:
            new_uids, new_flags, new_modseqs = array("I", self.uids), array("B", self.flags), array("Q", self.modseqs)
            for i in sorted(gone, reverse=True):
                del new_uids[i], new_flags[i], new_modseqs[i]
            self.uids, self.flags, self.modseqs = new_uids, new_flags, new_modseqs
            if self.sizes is not None and self.content_ids is not None:
                new_sizes, new_contents = array("I", self.sizes), array("Q", self.content_ids)
                for i in sorted(gone, reverse=True):
                    del new_sizes[i], new_contents[i]
                self.sizes, self.content_ids = new_sizes, new_contents
        for u in uids:
            self.keywords.pop(u, None)


class UserFeed:
    """One subscription to the store's change feed for one user, shared by its sessions."""

    __slots__ = ("indexes", "listeners", "loading", "mailbox_ids", "mailboxes_changed", "sub")

    def __init__(self, store: Store, user_id: int) -> None:
        self.listeners: list[Listener] = []
        self.indexes: dict[int, MailboxIndex] = {}
        #: Mailbox name -> (id, \Noselect), for APPEND's target; emptied by any change of
        #: the user's mailboxes seen on the feed.
        self.mailbox_ids: dict[str, tuple[int, bool]] = {}
        self.mailboxes_changed = 0  # counts those changes (a lookup in flight meanwhile is not kept)
        self.loading: dict[int, tuple[asyncio.Future[MailboxIndex], list[Change]]] = {}
        self.sub: Subscription = store.changes.subscribe(user_id, self._on_changes)

    def _on_changes(self, changes: Sequence[Change]) -> None:
        if not _NAMING_CHANGES.isdisjoint(map(type, changes)):
            self.mailbox_ids.clear()
            self.mailboxes_changed += 1
        for index in list(self.indexes.values()):
            index.apply(changes)
            if not index.valid:
                del self.indexes[index.id]
        for _fut, buffered in self.loading.values():
            buffered.extend(changes)
        for listener in list(self.listeners):
            try:
                listener(changes)
            except Exception:  # one session's failure must not starve the others
                import logging

                logging.getLogger("courriel.imap").exception("imap: change listener failed")


class Feeds:
    """Per store: the user feeds of this process."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.active: dict[int, UserFeed] = {}
        self.idle: OrderedDict[int, UserFeed] = OrderedDict()

    def attach(self, user_id: int, listener: Listener) -> UserFeed:
        feed = self.active.get(user_id) or self.idle.pop(user_id, None)
        if feed is None:
            feed = UserFeed(self.store, user_id)
        self.active[user_id] = feed
        feed.listeners.append(listener)
        return feed

    def detach(self, user_id: int, listener: Listener) -> None:
        feed = self.active.get(user_id)
        if feed is None:
            return
        if listener in feed.listeners:
            feed.listeners.remove(listener)
        if not feed.listeners:
            del self.active[user_id]
            self.idle[user_id] = feed
            while len(self.idle) > IDLE_FEEDS:
                _uid, old = self.idle.popitem(last=False)
                old.sub.close()

    async def index(self, feed: UserFeed, mb: Mailbox) -> MailboxIndex:
        """The mailbox's index, at least as new as ``mb`` (a row read just before)."""
        index = feed.indexes.get(mb.id)
        if index is not None and index.fresh_for(mb):
            return index
        pending = feed.loading.get(mb.id)
        if pending is not None:
            return await asyncio.shield(pending[0])
        fut: asyncio.Future[MailboxIndex] = asyncio.get_running_loop().create_future()
        buffered: list[Change] = []
        feed.loading[mb.id] = (fut, buffered)
        try:
            snap = await self.store.snapshot(mb.id)
            while any(isinstance(c, FeedGap) for c in buffered):
                buffered.clear()  # the snapshot may be older than the gap: read it again
                snap = await self.store.snapshot(mb.id)
            index = MailboxIndex(snap)
            index.apply(buffered)  # changes published while the snapshot was read (idempotent)
        except BaseException as exc:
            del feed.loading[mb.id]
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: nobody else may be waiting
            raise
        del feed.loading[mb.id]
        if index.valid:
            feed.indexes[mb.id] = index
        fut.set_result(index)
        return index


_FEEDS: WeakKeyDictionary[Store, Feeds] = WeakKeyDictionary()


def feeds_for(store: Store) -> Feeds:
    feeds = _FEEDS.get(store)
    if feeds is None:
        feeds = _FEEDS[store] = Feeds(store)
    return feeds
