"""One user's account as JMAP sees it: Emails (store contents, shared by their copies in
several mailboxes, RFC 8621 §4), Threads, keywords, and the state string.

The state of every type is the user's MODSEQ counter (every store mutation bumps it), so a
state string is exact for /changes and cheap to read. The account-wide index (one row per
Email with its mailboxes, keywords and sort fields) is built from
:meth:`Store.account_messages` and cached per user for the MODSEQ it was read at.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from courriel.jmap.core import MethodError
from courriel.store.api import AccountMessage, Flag, Mailbox, MessageEvent, Store
from courriel.store.content import thread_id, thread_key
from courriel.trace import events

if TYPE_CHECKING:
    from courriel.server import Context

#: JMAP keyword <-> IMAP system flag (RFC 8621 §4.1.1).
KEYWORD_FLAGS = {"$seen": Flag.SEEN, "$flagged": Flag.FLAGGED, "$answered": Flag.ANSWERED, "$draft": Flag.DRAFT}
_CACHE_USERS = 64
log = logging.getLogger("courriel.jmap")
#: Emails kept in cached account views over all users (about 1 KB each).
_CACHE_EMAILS = 1_000_000


def email_id(content_id: int) -> str:
    return f"M{content_id}"  # RFC 8474 §5.1 EMAILID, as IMAP FETCH EMAILID shows it


def content_of(eid: object) -> int | None:
    if isinstance(eid, str) and eid.startswith("M") and eid[1:].isdigit() and len(eid) < 20:
        return int(eid[1:])
    return None


def mailbox_id(box: int) -> str:
    return f"B{box}"


def box_of(mid: object) -> int | None:
    if isinstance(mid, str) and mid.startswith("B") and mid[1:].isdigit() and len(mid) < 20:
        return int(mid[1:])
    return None


def thread_of(references: str | None, in_reply_to: str | None, message_id: str | None, content_id: int) -> str:
    """RFC 8474 THREADID, exactly as IMAP shows it (the store's thread key)."""
    return thread_id(thread_key(references, in_reply_to, message_id), content_id)


def keywords_of(flags: Flag, keywords: frozenset[str]) -> dict[str, bool]:
    out = {kw: True for kw, bit in KEYWORD_FLAGS.items() if flags & bit}
    for kw in keywords:
        out[kw.lower()] = True
    return out


def split_keywords(keywords: dict[str, bool]) -> tuple[Flag, frozenset[str]]:
    flags = Flag(0)
    others = set()
    for kw in keywords:
        bit = KEYWORD_FLAGS.get(kw.lower())
        if bit is not None:
            flags |= bit
        else:
            others.add(kw.lower())
    return flags, frozenset(others)


@dataclass
class EmailEntry:
    content_id: int
    copies: list[tuple[int, int]]  # (mailbox id, uid), by mailbox then uid
    flags: Flag
    keywords: frozenset[str]
    size: int
    received_at: datetime
    sent_at: datetime | None
    base_subject: str
    sort_from: str
    sort_to: str
    thread: str
    modseq: int
    boxes: frozenset[int] = frozenset()

    @property
    def id(self) -> str:
        return email_id(self.content_id)

    @property
    def mailbox_ids(self) -> frozenset[int]:
        return self.boxes

    def jmap_keywords(self) -> dict[str, bool]:
        return keywords_of(self.flags, self.keywords)

    def has_keyword(self, kw: str) -> bool:
        kw = kw.lower()
        bit = KEYWORD_FLAGS.get(kw)
        return bool(self.flags & bit) if bit is not None else kw in self.keywords


def _entries(rows: list[AccountMessage], threads: dict[int, str]) -> dict[int, EmailEntry]:
    """Email entries from copy rows; ``threads`` caches content id -> thread (immutable)."""
    out: dict[int, EmailEntry] = {}
    for r in rows:
        e = out.get(r.content_id)
        if e is None:
            thread = threads.get(r.content_id)
            if thread is None:
                if r.thread_key is not None:
                    thread = threads[r.content_id] = thread_id(r.thread_key, r.content_id)
                else:
                    thread = threads[r.content_id] = thread_of(r.references, r.in_reply_to, r.message_id, r.content_id)
            out[r.content_id] = EmailEntry(
                r.content_id, [(r.mailbox_id, r.uid)], r.flags, r.keywords, r.size, r.internal_date,
                r.sent_date, r.base_subject, r.sort_from, r.sort_to, thread, r.modseq,
            )  # fmt: skip
        else:
            e.copies.append((r.mailbox_id, r.uid))
            e.flags |= r.flags
            e.keywords |= r.keywords
            e.received_at = min(e.received_at, r.internal_date)
            e.modseq = max(e.modseq, r.modseq)
    for e in out.values():
        e.boxes = frozenset(b for b, _ in e.copies)
    return out


def _by_date(emails: dict[int, EmailEntry], ids: Iterable[int]) -> list[int]:
    return sorted(ids, key=lambda c: (emails[c].received_at, c))


@dataclass
class AccountIndex:
    modseq: int
    emails: dict[int, EmailEntry] = field(default_factory=dict)  # by content id
    threads: dict[str, list[int]] = field(default_factory=dict)  # content ids by receivedAt
    #: Email/query results for this state, by (filter, sort, collapseThreads), most recent last.
    queries: OrderedDict[str, list[str]] = field(default_factory=OrderedDict)
    #: Sorted orders of all Emails by sort criteria that do not depend on keywords.
    orders: dict[str, list[int]] = field(default_factory=dict)
    _box_threads: dict[int, tuple[int, int]] | None = None
    _members: dict[int, set[int]] | None = None
    _uids: dict[int, dict[int, int]] | None = None

    def box_threads(self) -> dict[int, tuple[int, int]]:
        """Mailbox id -> (threads, threads with an unread Email there), computed once."""
        if self._box_threads is None:
            threads: dict[int, set[str]] = {}
            unread: dict[int, set[str]] = {}
            for e in self.emails.values():
                seen = e.has_keyword("$seen")
                for box in e.boxes:
                    threads.setdefault(box, set()).add(e.thread)
                    if not seen:
                        unread.setdefault(box, set()).add(e.thread)
            self._box_threads = {b: (len(t), len(unread.get(b, ()))) for b, t in threads.items()}
        return self._box_threads

    def uids(self, box: int) -> dict[int, int]:
        """UID -> content id of a mailbox's copies (for store searches), computed once per box."""
        if self._uids is None:
            self._uids = {}
        found = self._uids.get(box)
        if found is None:
            found = self._uids[box] = {u: e.content_id for e in self.emails.values() for b, u in e.copies if b == box}
        return found

    def members(self, box: int) -> set[int]:
        """Content ids of the Emails in a mailbox."""
        if self._members is None:
            members: dict[int, set[int]] = {}
            for e in self.emails.values():
                for b in e.boxes:
                    members.setdefault(b, set()).add(e.content_id)
            self._members = members
        return self._members.get(box, set())

    @classmethod
    def build(cls, modseq: int, rows: list[AccountMessage], threads: dict[int, str] | None = None) -> AccountIndex:
        idx = cls(modseq, _entries(rows, {} if threads is None else threads))
        for c in _by_date(idx.emails, idx.emails):
            idx.threads.setdefault(idx.emails[c].thread, []).append(c)
        return idx

    def updated(self, modseq: int, touched: set[int], rows: list[AccountMessage], threads: dict[int, str]) -> AccountIndex:
        """A new index for ``modseq`` from this one: the Emails in ``touched`` replaced by what
        ``rows`` (their current copies) say; the rest shared with this one."""
        fresh = _entries(rows, threads)
        emails = dict(self.emails)
        for c in touched:
            emails.pop(c, None)
        emails.update(fresh)
        new = AccountIndex(modseq, emails, dict(self.threads))
        affected = {self.emails[c].thread for c in touched if c in self.emails} | {e.thread for e in fresh.values()}
        for t in affected:
            kept = [c for c in self.threads.get(t, []) if c not in touched]
            members = _by_date(emails, kept + [c for c, e in fresh.items() if e.thread == t])
            if members:
                new.threads[t] = members
            else:
                new.threads.pop(t, None)
        same_set = all(
            c in self.emails and c in fresh and self.emails[c].received_at == fresh[c].received_at for c in touched
        ) or not touched
        if same_set:  # nothing added or removed: the orders by content fields still hold
            new.orders = self.orders
            if all(self.emails[c].boxes == fresh[c].boxes for c in fresh):
                new._members = self._members
        return new


def _sweep_known(user_id: int, idx: AccountIndex) -> None:
    known = _KNOWN_THREADS.setdefault(user_id, {})
    if len(known) > _MAX_KNOWN:
        for c in [c for c in known if c not in idx.emails]:
            del known[c]


_INDEXES: OrderedDict[int, AccountIndex] = OrderedDict()
_LOCKS: dict[int, asyncio.Lock] = {}
#: Threads of Emails seen in this process, by user then content id (a content's thread never
#: changes), so rebuilding skips the hashing and Thread/changes can name the thread of an
#: Email destroyed since (its content may be gone from the store).
_KNOWN_THREADS: dict[int, dict[int, str]] = {}
_MAX_KNOWN = 500_000
#: Past this many changed Emails, a new index is read whole rather than patched.
_MAX_PATCH = 5000


#: Retrieval events waiting for their batched write, by id of the store: (store, events).
_RETRIEVALS: dict[int, tuple[Store, list[MessageEvent]]] = {}
#: Seconds a retrieval waits for others to share its write; at most this many in one write.
RETRIEVAL_DELAY = 0.2
_MAX_PENDING = 1000

#: Background builds of account indexes, by user (see :meth:`Account.ready_index`).
_BUILDS: dict[int, asyncio.Task[AccountIndex]] = {}
#: Seconds between the first request on an account and the start of its build.
BUILD_DELAY = 0.5


def _build_done(user_id: int) -> Callable[[asyncio.Task[AccountIndex]], None]:
    def done(task: asyncio.Task[AccountIndex]) -> None:
        _BUILDS.pop(user_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("building the JMAP account view of user %d failed: %r", user_id, task.exception())

    return done


def known_thread(user_id: int, content_id: int) -> str | None:
    return _KNOWN_THREADS.get(user_id, {}).get(content_id)


class Account:
    """The authenticated user's one account (RFC 8620 §1.6.2)."""

    def __init__(self, ctx: Context, user_id: int, address: str, peer_ip: str = "", tls: bool = False) -> None:
        self.ctx = ctx
        self.peer_ip = peer_ip
        self.tls = tls
        self.store: Store = ctx.store
        self.user_id = user_id
        self.address = address
        self.id = f"A{user_id}"
        #: The client as message events name it (``127.0.0.1:5123``), and the contents whose
        #: bodies this request sent it (recorded once per request, see :meth:`flush_retrievals`).
        self.client = peer_ip
        self.retrieved: set[int] = set()

    def flush_retrievals(self) -> None:
        """Record the request's retrievals as "retrieved" message events, in the background
        (courriel.trace.events: informative, off the request's critical path)."""
        if not self.retrieved or not events.enabled(self.ctx):
            return
        now = time.time()
        batch = [
            MessageEvent(self.user_id, c, now, "retrieved", "JMAP", self.client, {"peek": False})
            for c in sorted(self.retrieved)
        ]
        self.retrieved = set()
        store = self.store
        pending = _RETRIEVALS.get(id(store))
        if pending is not None and len(pending[1]) < _MAX_PENDING:
            pending[1].extend(batch)  # the write already scheduled takes them
            return
        _RETRIEVALS[id(store)] = (store, batch)

        async def gathered() -> list[MessageEvent]:
            await asyncio.sleep(RETRIEVAL_DELAY)
            got = _RETRIEVALS.get(id(store))
            if got is None or got[1] is not batch:
                return batch  # a full batch that a later one replaced: written on its own
            del _RETRIEVALS[id(store)]
            return batch

        # One store write for the retrievals of many requests (tracked, so that a stopping
        # server still writes them: courriel.trace.events.drain).
        events.write_later_from(store, gathered())

    async def modseq(self) -> int:
        user = await self.store.get_user_by_id(self.user_id)
        if user is None:
            raise MethodError("forbidden", "account no longer exists")
        return user.modseq

    async def state(self) -> str:
        return str(await self.modseq())

    async def index(self, modseq: int | None = None) -> AccountIndex:
        """The account index at the current state (``modseq``: the state the caller has just
        read, saving a second read)."""
        idx = _INDEXES.get(self.user_id)
        if idx is not None and idx.modseq == (modseq if modseq is not None else await self.modseq()):
            _INDEXES.move_to_end(self.user_id)
            return idx
        lock = _LOCKS.setdefault(self.user_id, asyncio.Lock())
        async with lock:  # one rebuild per user at a time; the others then find it done
            return await self._refresh()

    async def _refresh(self) -> AccountIndex:
        modseq = await self.modseq()  # read before the rows: a race only makes it look older
        idx = _INDEXES.get(self.user_id)
        if idx is not None and idx.modseq == modseq:
            _INDEXES.move_to_end(self.user_id)
            return idx
        threads = _KNOWN_THREADS.setdefault(self.user_id, {})
        patched = None
        if idx is not None and idx.modseq < modseq:
            changes, complete = await self.store.message_changes(self.user_id, idx.modseq)
            touched = {c.content_id for c in changes}
            if complete and len(touched) <= _MAX_PATCH:
                rows = await self.store.account_messages_of(self.user_id, sorted(touched))
                patched = idx.updated(modseq, touched, rows, threads)
        if patched is None:  # built in a thread: seconds for a large account, the loop keeps serving
            rows = await self.store.account_messages(self.user_id)
            patched = await asyncio.to_thread(AccountIndex.build, modseq, rows, threads)
        idx = patched
        _sweep_known(self.user_id, idx)
        _INDEXES[self.user_id] = idx
        while len(_INDEXES) > 1 and (
            len(_INDEXES) > _CACHE_USERS or sum(len(i.emails) for i in _INDEXES.values()) > _CACHE_EMAILS
        ):
            _INDEXES.popitem(last=False)
        return idx

    async def ready_index(self, modseq: int | None = None) -> AccountIndex | None:
        """The account index when this process already holds one for the user (patched to the
        current state, which is cheap); otherwise None, and a build starts in the background so
        that later requests find it: the first requests after a start answer from the store
        (see :meth:`entries` and :func:`courriel.jmap.query.quick_query`) instead of waiting
        for the whole account to be read."""
        if self.user_id in _INDEXES:
            return await self.index(modseq)
        if self.user_id not in _BUILDS:
            task = asyncio.get_running_loop().create_task(self._build_soon())
            _BUILDS[self.user_id] = task
            task.add_done_callback(_build_done(self.user_id))
        return None

    async def _build_soon(self) -> AccountIndex:
        await asyncio.sleep(BUILD_DELAY)  # the request that asked answers first, without competing
        return await self.index()

    async def entries(self, content_ids: Iterable[int], modseq: int | None = None) -> dict[int, EmailEntry]:
        """The Emails among ``content_ids`` (absent: not in the account), from the index when
        it is ready, else read from the store for just these contents."""
        wanted = sorted(set(content_ids))
        idx = await self.ready_index(modseq)
        if idx is not None:
            return {c: idx.emails[c] for c in wanted if c in idx.emails}
        if not wanted:
            return {}
        rows = await self.store.account_messages_of(self.user_id, wanted)
        return _entries(rows, _KNOWN_THREADS.setdefault(self.user_id, {}))

    async def mailboxes(self) -> dict[int, Mailbox]:
        return {m.id: m for m in await self.store.list_mailboxes(self.user_id)}

    async def check_state(self, if_in_state: object) -> str:
        """RFC 8620 §5.3 ifInState: stateMismatch unless it is the current state."""
        state = await self.state()
        if if_in_state is not None and if_in_state != state:
            raise MethodError("stateMismatch", f"state is {state}")
        return state


def parse_state(value: object) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 19:
        raise MethodError("cannotCalculateChanges", "not a state of this server")
    return int(value)
