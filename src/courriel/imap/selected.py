"""The selected mailbox as one session sees it (RFC 9051 §2.3.1.2, §7).

Sequence numbers belong to the session: ``uids`` (an ``array('I')``, ascending) maps message
number n to ``uids[n-1]``. Changes from the store's feed queue up in ``pending`` and are
turned into EXISTS / EXPUNGE (or VANISHED) / FETCH responses only when the session may
send them.

While the session's view equals the shared :class:`MailboxIndex`, ``uids`` *is* the index's
array (``aligned``): no per-session copy, and flags and MODSEQs are read from the index by
position. The first change the session makes to its own view copies the array
(copy-on-write); once its pending changes are all announced and the views match again,
it shares the index's array again (:meth:`realign`).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence

from courriel.imap.mailindex import MailboxIndex
from courriel.store.api import Mailbox
from courriel.store.changes import Change

_EMPTY: frozenset[int] = frozenset()


class Selected:
    __slots__ = (
        "deleted", "gone", "id", "index", "keywords", "name", "own_modseqs", "pending", "readonly", "recent",
        "saved", "shared", "uidnext", "uids", "uidvalidity",
    )  # fmt: skip

    def __init__(self, mailbox: Mailbox, readonly: bool, index: MailboxIndex) -> None:
        self.id = mailbox.id
        self.name = mailbox.name
        self.uidvalidity = mailbox.uidvalidity
        self.readonly = readonly
        self.index = index
        self.uids = index.uids
        self.shared = True
        self.uidnext = index.uidnext
        self.recent: set[int] | frozenset[int] = _EMPTY
        self.keywords: frozenset[str] = frozenset(index.kwset)
        self.saved: list[int] = []  # RFC 5182 "$": UIDs of the last SEARCH ... SAVE
        self.pending: list[Change] = []
        self.own_modseqs: set[int] | None = None  # our own flag changes, already answered
        self.gone: set[int] | None = None  # UIDs expunged before the feed told us they were added
        self.deleted = False  # the mailbox itself was deleted or renamed away

    @property
    def exists(self) -> int:
        return len(self.uids)

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    @property
    def aligned(self) -> bool:
        """The session's view is the index's: positions in ``uids`` are positions in the index."""
        return self.uids is self.index.uids

    def seq_of(self, uid: int) -> int:
        """The message number of ``uid``, 0 when the session does not know it."""
        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def _own(self) -> array[int]:
        if self.shared:
            self.uids = array("I", self.uids)
            self.shared = False
        return self.uids

    def add(self, uid: int) -> bool:
        if uid <= self.last_uid or (self.gone is not None and uid in self.gone):
            return False
        index = self.index
        grown_from = index.grown_from
        if self.shared and grown_from is not None and grown_from() is self.uids and index.uids[-1] == uid:
            # The index's array is ours plus exactly this UID (the feed applied our own
            # APPEND first): share it rather than copy ours and compare them later.
            self.uids = index.uids
        else:
            self._own().append(uid)
        if uid >= self.uidnext:
            self.uidnext = uid + 1
        return True

    def remove(self, uids: Sequence[int]) -> list[int]:
        """Forget ``uids``; returns the EXPUNGE numbers to send, in the order to send them."""
        out = []
        for uid in sorted(uids, reverse=True):
            seq = self.seq_of(uid)
            if seq:
                del self._own()[seq - 1]
                if uid in self.recent:
                    self.recent.discard(uid)  # type: ignore[union-attr]
                out.append(seq)
            elif uid > self.last_uid:
                if self.gone is None:
                    self.gone = set()
                self.gone.add(uid)
        # Descending numbers stay valid as each EXPUNGE renumbers only the messages after it.
        return out

    def add_recent(self, uids: Sequence[int]) -> None:
        if uids:
            if not isinstance(self.recent, set):
                self.recent = set()
            self.recent.update(uids)

    def realign(self) -> None:
        """Share the index's array again when nothing is pending and the views match (also
        after :meth:`Session.resync` replaced the index under a shared array)."""
        if not self.aligned and not self.pending and self.uids == self.index.uids:
            self.uids = self.index.uids
            self.shared = True

    def note_own(self, modseq: int) -> None:
        if self.own_modseqs is None:
            self.own_modseqs = set()
        elif len(self.own_modseqs) > 10_000:
            self.own_modseqs.clear()
        self.own_modseqs.add(modseq)
