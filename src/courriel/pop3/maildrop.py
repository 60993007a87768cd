"""A POP3 session's maildrop: INBOX as it was at login, with deletion marks.

RFC 1939 §5: message numbers and sizes are fixed for the session; DELE only marks, RSET
unmarks, and the marked messages are removed in the UPDATE state (:meth:`Maildrop.commit`,
one store operation). RFC 1939 §8: one POP3 session at a time holds a maildrop; the lock
table is per store, so ``pop3`` and ``pop3s`` share it (several nodes on one PostgreSQL
store would need a lock in the store itself).

Another protocol (IMAP, JMAP) may expunge INBOX messages meanwhile; the change feed tells
the maildrop, which then treats those messages as gone (not listed, not retrievable), while
the remaining message numbers stay as they were.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from courriel.pop3.protocol import Code, Pop3Error, wire_form
from courriel.store.api import INBOX, Mailbox, MessageInfo, Store
from courriel.store.changes import Change, FeedGap, MessagesExpunged, Subscription

#: The read-ahead window's limits: messages, and bytes beyond the message asked for.
READ_AHEAD = 64
READ_AHEAD_BYTES = 1 << 20

_locks: weakref.WeakKeyDictionary[Store, set[int]] = weakref.WeakKeyDictionary()


def locked_mailboxes(store: Store) -> set[int]:
    """The INBOX ids held by a POP3 session, for this store (RFC 1939 §8)."""
    table = _locks.get(store)
    if table is None:
        table = _locks[store] = set()
    return table


@dataclass(slots=True)
class Entry:
    uid: int
    size: int
    deleted: bool = False  # marked by DELE in this session
    gone: bool = False  # expunged by another session since login
    content_id: int = 0  # the stored message (message events)


class Maildrop:
    def __init__(self, store: Store, mailbox: Mailbox, infos: Sequence[MessageInfo]) -> None:
        self.store = store
        self.mailbox = mailbox
        self.entries = [Entry(i.uid, i.size, content_id=i.content_id) for i in infos]
        self._by_uid = {e.uid: e for e in self.entries}
        self._cache: dict[int, bytes] = {}  # read ahead, by UID
        self._window = 1
        self._last = 0  # the message number last read
        self._sub: Subscription | None = store.changes.subscribe(mailbox.user_id, self._on_changes)
        self._closed = False

    @classmethod
    async def open(cls, store: Store, user_id: int) -> Maildrop:
        """Lock and load the user's INBOX; ``-ERR [IN-USE]`` while another session holds it."""
        mailbox = await store.get_mailbox(user_id, INBOX)
        if mailbox is None:
            raise Pop3Error("no INBOX for this account", Code.SYS_PERM)
        locks = locked_mailboxes(store)
        if mailbox.id in locks:
            raise Pop3Error("maildrop already locked by another POP3 session", Code.IN_USE)
        locks.add(mailbox.id)
        try:
            infos = await store.list_messages(mailbox.id)
        except BaseException:
            locks.discard(mailbox.id)
            raise
        return cls(store, mailbox, infos)

    def close(self) -> None:
        """Release the lock and the subscription; removes nothing (no UPDATE state)."""
        if self._closed:
            return
        self._closed = True
        locked_mailboxes(self.store).discard(self.mailbox.id)
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        self._cache.clear()

    def _on_changes(self, changes: Sequence[Change]) -> None:
        for change in changes:
            if isinstance(change, FeedGap):
                # Expunges may have been lost: read from the store from now on, where a
                # message gone meanwhile is found missing (and then marked gone).
                self._cache.clear()
                self._window = 1
            if isinstance(change, MessagesExpunged) and change.mailbox_id == self.mailbox.id:
                for uid in change.uids:
                    entry = self._by_uid.get(uid)
                    if entry is not None:
                        entry.gone = True

    # --- the listing -------------------------------------------------------------------
    def entry(self, number: int) -> Entry:
        """The message numbered ``number`` (from 1); -ERR when none, deleted or gone."""
        if not 1 <= number <= len(self.entries):
            raise Pop3Error(f"no message {number}")
        entry = self.entries[number - 1]
        if entry.deleted:
            raise Pop3Error(f"message {number} is deleted")
        if entry.gone:
            raise Pop3Error(f"message {number} was removed by another session")
        return entry

    def visible(self) -> list[tuple[int, Entry]]:
        """(number, entry) of the messages neither deleted nor gone."""
        return [(n, e) for n, e in enumerate(self.entries, 1) if not (e.deleted or e.gone)]

    def stat(self) -> tuple[int, int]:
        shown = [e.size for e in self.entries if not (e.deleted or e.gone)]
        return len(shown), sum(shown)

    def delete(self, number: int) -> None:
        self.entry(number).deleted = True

    def reset(self) -> None:
        for entry in self.entries:
            entry.deleted = False

    # --- reading -------------------------------------------------------------------------
    async def read(self, number: int) -> bytes:
        """The message in wire form (CRLF lines ending in CRLF), not yet dot-stuffed.

        Clients fetch in order, one command at a time, so a miss reads ahead: the next
        messages come in the same store call, in a window that doubles while the reads are
        sequential (up to READ_AHEAD messages or READ_AHEAD_BYTES) and shrinks to one
        message after a jump, as a kernel's file read-ahead does.
        """
        entry = self.entry(number)
        data = self._cache.pop(entry.uid, None)
        if data is None:
            sequential = number == self._last + 1
            self._window = min(self._window * 2, READ_AHEAD) if sequential else 1
            self._cache.clear()
            data = await self._load(number, entry)
        self._last = number
        return wire_form(data)

    async def _load(self, number: int, entry: Entry) -> bytes:
        batch = [entry]
        budget = READ_AHEAD_BYTES - entry.size
        for e in self.entries[number : number - 1 + self._window]:
            if e.size > budget:
                break
            if not (e.deleted or e.gone):
                batch.append(e)
                budget -= e.size
        found = await self.store.read_messages(self.mailbox.id, [e.uid for e in batch])
        for e in batch:
            data = found.get(e.uid)
            if data is None:
                e.gone = True
            elif e is not entry:
                self._cache[e.uid] = data
        data = found.get(entry.uid)
        if data is None:
            raise Pop3Error(f"message {number} was removed by another session")
        return data

    # --- UPDATE state --------------------------------------------------------------------
    async def commit(self) -> list[int]:
        """RFC 1939 §6: remove the marked messages, in one store operation (all or none)."""
        uids = [e.uid for e in self.entries if e.deleted and not e.gone]
        if not uids:
            return []
        return await self.store.delete_messages(self.mailbox.id, uids)
