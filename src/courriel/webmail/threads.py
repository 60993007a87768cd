"""The conversation list: one row per thread (RFC 8474 THREADID), newest conversation first.

A folder's threads come from one store query (``Store.thread_rows``: UID, THREADID, sort
date of every message, answered from the ``messages`` and ``contents`` rows, no message
parsed); grouping 100,000 rows into threads and ordering them by their latest
message (RFC 5256 DATE, ties by UID) happens once per folder for all sessions
(:class:`ThreadCache`); new mail then reads only the arrivals, a removal the folder again. A page
then reads only its 50 threads: the flags of their messages (``Store.list_messages``) for
the unread and flagged marks, and the records of the latest message and at most
:data:`RECORDS_PER_THREAD` last arrived per thread for the subject, date and participants.
"""

from __future__ import annotations

import asyncio
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from courriel.mime import envelope_from_json
from courriel.store.api import Flag, InThread, Mailbox, MessageRecord, Store
from courriel.webmail.common import PAGE_SIZE, Webmail
from courriel.webmail.listing import display_name
from courriel.webmail.sessions import ThreadListing

#: Records read per thread for its row (the participants of a long thread: its latest ones).
RECORDS_PER_THREAD = 8
MAX_PARTICIPANTS = 4
#: Threads an action may name at once (a page holds 50).
MAX_THREADS = 200
#: Folders whose thread listings stay in memory (about 10 MB for 100,000 messages).
MAX_MAILBOXES = 16


@dataclass(frozen=True, slots=True)
class ThreadRow:
    thread_id: str
    uid: int  # the latest message: opening the row shows its conversation
    subject: str
    date: datetime
    participants: str
    count: int
    unread: int
    flagged: bool
    attachment: bool


class ThreadIndex:
    """A mailbox's threads: the latest (date, UID) of each and its UIDs, grown by arrivals.
    Pure (tested with tables through :func:`group_threads`)."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[int, int]] = {}
        self.members: dict[str, array[int]] = {}
        self.count = 0
        self._unsorted: set[str] = set()

    def add(self, rows: list[tuple[int, str, int]]) -> None:
        latest, members = self.latest, self.members
        for uid, thread, when in rows:
            best = latest.get(thread)
            if best is None:
                latest[thread] = (when, uid)
                members[thread] = array("I", (uid,))
                continue
            if (when, uid) > best:
                latest[thread] = (when, uid)
            group = members[thread]
            if uid < group[-1]:
                self._unsorted.add(thread)
            group.append(uid)
        self.count += len(rows)

    def listing(self, key: tuple[object, ...]) -> ThreadListing:
        """Newest thread first (equal dates: the later UID first), each one's UIDs ascending
        (copies: the index keeps growing, a listing handed out does not change)."""
        for thread in self._unsorted:
            self.members[thread] = array("I", sorted(self.members[thread]))
        self._unsorted.clear()
        latest = self.latest
        order = sorted(latest, key=latest.__getitem__, reverse=True)
        return ThreadListing(key, order, [array("I", self.members[t]) for t in order],
                             array("I", (latest[t][1] for t in order)))  # fmt: skip


def group_threads(rows: list[tuple[int, str, int]]) -> tuple[list[str], list[array[int]], array[int]]:
    """Threads of these messages newest first, each one's UIDs ascending, its latest UID."""
    index = ThreadIndex()
    index.add(rows)
    listing = index.listing(())
    return listing.order, listing.uids, listing.latest


@dataclass
class _Cached:
    uidvalidity: int
    uidnext: int
    index: ThreadIndex
    listing: ThreadListing


class ThreadCache:
    """The thread listings of the last :data:`MAX_MAILBOXES` folders viewed, shared by every
    session (a folder's threads are the same for all who may see it; :meth:`Webmail.mailbox`
    checks that first). A folder with new mail reads only the arrivals (UIDs from the
    UIDNEXT it had); any removal (the message count disagrees) reads the folder again."""

    def __init__(self) -> None:
        self._entries: OrderedDict[int, _Cached] = OrderedDict()
        self._locks: dict[int, asyncio.Lock] = {}

    def peek(self, mailbox_id: int) -> ThreadListing | None:
        entry = self._entries.get(mailbox_id)
        return entry.listing if entry is not None else None

    async def listing(self, store: Store, mailbox: Mailbox) -> ThreadListing:
        key = (mailbox.id, mailbox.uidvalidity, mailbox.uidnext, mailbox.messages)
        lock = self._locks.setdefault(mailbox.id, asyncio.Lock())
        async with lock:  # one build per folder at a time; the others wait for it
            entry = self._entries.get(mailbox.id)
            if entry is not None and entry.listing.key == key:
                self._entries.move_to_end(mailbox.id)
                return entry.listing
            if entry is not None and entry.uidvalidity == mailbox.uidvalidity and mailbox.uidnext >= entry.uidnext:
                rows = [r for r in await store.thread_rows(mailbox.id, entry.uidnext) if r[0] < mailbox.uidnext]
                if entry.index.count + len(rows) == mailbox.messages:  # arrivals only
                    entry.index.add(rows)
                else:
                    entry = None
            else:
                entry = None
            if entry is None:
                index = ThreadIndex()
                index.add([r for r in await store.thread_rows(mailbox.id) if r[0] < mailbox.uidnext])
                entry = _Cached(mailbox.uidvalidity, mailbox.uidnext, index, ThreadListing((), [], [], array("I")))
            entry.uidnext = mailbox.uidnext
            entry.listing = entry.index.listing(key)
            self._entries[mailbox.id] = entry
            self._entries.move_to_end(mailbox.id)
            while len(self._entries) > MAX_MAILBOXES:
                old, _ = self._entries.popitem(last=False)
                held = self._locks.get(old)
                if held is not None and not held.locked():
                    del self._locks[old]
            return entry.listing


def neighbours(listing: ThreadListing, uid: int) -> tuple[int | None, int | None]:
    """The latest messages of the conversations before and after the one holding ``uid`` (the
    message page's previous / next links in the conversation list)."""
    for i, group in enumerate(listing.uids):
        if uid in group:
            return (listing.latest[i - 1] if i > 0 else None,
                    listing.latest[i + 1] if i + 1 < len(listing.latest) else None)  # fmt: skip
    return None, None


async def thread_listing(wm: Webmail, mailbox: Mailbox) -> ThreadListing:
    """The folder's threads in display order (see :class:`ThreadCache`)."""
    return await wm.threads.listing(wm.store, mailbox)


def participants(records: list[MessageRecord]) -> str:
    """Distinct senders of the records read of a thread, oldest first, by display name."""
    seen: list[str] = []
    for rec in records:
        name, _ = display_name(envelope_from_json(rec.envelope_json).from_)
        if name and name not in seen:
            seen.append(name)
    if len(seen) > MAX_PARTICIPANTS:
        return ", ".join([seen[0], "…", *seen[-(MAX_PARTICIPANTS - 1) :]])
    return ", ".join(seen) or "(no sender)"


async def page_threads(wm: Webmail, mailbox: Mailbox, listing: ThreadListing, page: int) -> list[ThreadRow]:
    """The rows of one page of the conversation list."""
    start = (page - 1) * PAGE_SIZE
    ids = listing.order[start : start + PAGE_SIZE]
    groups = listing.uids[start : start + PAGE_SIZE]
    latest = listing.latest[start : start + PAGE_SIZE]
    every = [uid for group in groups for uid in group]
    flags = {info.uid: info.flags for info in await wm.store.list_messages(mailbox.id, every)}
    # The latest by date, and the last arrived (those of a long thread's row).
    chosen = [{*group[-RECORDS_PER_THREAD:], last} for group, last in zip(groups, latest, strict=True)]
    wanted = sorted(uid for uids in chosen for uid in uids)
    records = {rec.info.uid: rec for rec in await wm.store.get_records(mailbox.id, wanted)}
    out = []
    for thread, group, uids in zip(ids, groups, chosen, strict=True):
        present = [uid for uid in group if uid in flags]
        recs = sorted((records[u] for u in uids if u in records),
                      key=lambda r: (r.sent_date or r.info.internal_date, r.info.uid))  # fmt: skip
        if not present or not recs:
            continue  # removed since the listing was cached: the next request rebuilds it
        last = recs[-1]
        out.append(ThreadRow(
            thread_id=thread, uid=last.info.uid, subject=last.subject or "(no subject)",
            date=last.sent_date or last.info.internal_date, participants=participants(recs), count=len(present),
            unread=sum(1 for u in present if not flags[u] & Flag.SEEN),
            flagged=any(flags[u] & Flag.FLAGGED for u in present), attachment=any(r.has_attachment for r in recs),
        ))  # fmt: skip
    return out


async def thread_uids(wm: Webmail, mailbox: Mailbox, thread_ids: list[str]) -> set[int]:
    """The messages of these threads in this folder now (an action on a thread row)."""
    out: set[int] = set()
    for thread in thread_ids:
        out.update(await wm.store.search(mailbox.id, InThread(thread)))
    return out
