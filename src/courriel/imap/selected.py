"""The selected mailbox as one session sees it (RFC 9051 §2.3.1.2, §7).

Sequence numbers belong to the session: ``uids`` (an ``array('I')``, ascending) maps message
number n to ``uids[n-1]``. Changes from the store's feed queue up in ``pending`` and are
turned into EXISTS / EXPUNGE / FETCH responses only when the session may send them.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from courriel.store.api import Mailbox
from courriel.store.changes import Change


class Selected:
    __slots__ = (
        "deleted", "gone", "id", "keywords", "name", "own_modseqs", "pending", "readonly", "recent",
        "saved", "uidnext", "uids", "uidvalidity",
    )  # fmt: skip

    def __init__(self, mailbox: Mailbox, readonly: bool, uids: Iterable[int]) -> None:
        self.id = mailbox.id
        self.name = mailbox.name
        self.uidvalidity = mailbox.uidvalidity
        self.readonly = readonly
        self.uids = array("I", uids)
        self.uidnext = max(mailbox.uidnext, self.uids[-1] + 1 if self.uids else 1)
        self.recent: set[int] = set()
        self.keywords: set[str] = set()
        self.saved: list[int] = []  # RFC 5182 "$": UIDs of the last SEARCH ... SAVE
        self.pending: list[Change] = []
        self.own_modseqs: set[int] = set()  # our own flag changes, already answered
        self.gone: set[int] = set()  # UIDs expunged before the feed told us they were added
        self.deleted = False  # the mailbox itself was deleted or renamed away

    @property
    def exists(self) -> int:
        return len(self.uids)

    @property
    def last_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int:
        """The message number of ``uid``, 0 when the session does not know it."""
        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def add(self, uid: int) -> bool:
        if uid <= self.last_uid or uid in self.gone:
            return False
        self.uids.append(uid)
        if uid >= self.uidnext:
            self.uidnext = uid + 1
        return True

    def remove(self, uids: Sequence[int]) -> list[int]:
        """Forget ``uids``; returns the EXPUNGE numbers to send, in the order to send them."""
        out = []
        for uid in sorted(uids, reverse=True):
            seq = self.seq_of(uid)
            if seq:
                del self.uids[seq - 1]
                self.recent.discard(uid)
                out.append(seq)
            elif uid > self.last_uid:
                self.gone.add(uid)
        # Descending numbers stay valid as each EXPUNGE renumbers only the messages after it.
        return out

    def note_own(self, modseq: int) -> None:
        if len(self.own_modseqs) > 10_000:
            self.own_modseqs.clear()
        self.own_modseqs.add(modseq)
