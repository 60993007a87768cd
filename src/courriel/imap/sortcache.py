"""Sorted orders of whole mailboxes (RFC 5256 SORT at scale), kept with the shared
:class:`courriel.imap.mailindex.MailboxIndex`.

SORT of a 100,000-message mailbox costs the store one ordered index scan (schema 7) but then
100,000 rows through Python and a 100,000-number response. A :class:`SortOrder` keeps, per
mailbox and sort criteria, the UIDs in sort order (``array('I')``) with each message's sort
values (a column per key), read once with :meth:`Store.sort_values`, and the response text
already rendered. It follows the index's UID array, which is replaced (never changed in
place) on any change of membership, so "unchanged" is an identity test:

* new messages (UIDs above every one placed) get their values from the store and are placed
  by binary search: after every message with equal values, since their UIDs are higher
  (RFC 5256 §3: ties are in mailbox order);
* expunged ones are dropped when the index's count below the last placed UID no longer
  matches (one pass over the order);
* a UID the index has but the store no longer returns (expunged meanwhile, the feed not yet
  applied) is a "ghost": counted as placed, left out of the order, forgotten once expunged.

Flag changes do not touch the sort values: a STORE leaves every order valid. Values compare
as the backends sort them (integers; strings by code point: SQLite's BINARY collation,
PostgreSQL's COLLATE "C"), so the binary search agrees with the store's ORDER BY.
"""

from __future__ import annotations

import asyncio
from array import array
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from itertools import compress, repeat
from operator import itemgetter
from typing import TYPE_CHECKING

from courriel.store.api import All, SortKey, Store

if TYPE_CHECKING:
    from courriel.imap.mailindex import MailboxIndex

#: RFC 5256 sort criteria as a cache key: (key name in lower case, REVERSE) each.
Criteria = tuple[tuple[str, bool], ...]
Value = int | str
#: Orders kept per mailbox index (the least recently used goes first).
MAX_ORDERS = 4
#: More new messages than this (and than an eighth of the mailbox): read the whole order again.
REBUILD = 2000
#: Numbers per block of a rendered response (see :class:`Rendered`).
BLOCK = 512
#: UIDs up to this many times the message count: tables indexed by UID rather than hashed.
DENSE = 8


class SortOrder:
    __slots__ = ("columns", "criteria", "ghosts", "last_uid", "lock", "reverse", "seq_text", "synced", "uid_text", "uids")

    def __init__(self, criteria: Criteria) -> None:
        self.criteria = criteria
        self.reverse = tuple(rev for _name, rev in criteria)
        self.uids: array[int] = array("I")
        #: Sort values by position, a column per key: array('q') for numbers, else a list.
        #: None until a message must be placed (the first order comes from Store.sort).
        self.columns: list[array[int] | list[Value]] | None = None
        #: The index UID array this order matches (None: never built).
        self.synced: array[int] | None = None
        self.last_uid = 0  # every UID up to this one is placed or a ghost
        self.ghosts: set[int] = set()
        self.lock = asyncio.Lock()
        self.uid_text: Rendered | None = None  # the UIDs in order, rendered
        self.seq_text: Rendered | None = None  # the same as message numbers of ``synced``

    @property
    def keys(self) -> list[SortKey]:
        return [SortKey(name, rev) for name, rev in self.criteria]

    # --- keeping up with the index ----------------------------------------------------------
    async def refresh(self, index: MailboxIndex, store: Store) -> bool:
        """Bring the order to the index's current UIDs; False when the store cannot tell
        sort values. Several rounds when the index changes while the store is read; after
        that, :attr:`synced` may still lag behind."""
        for _ in range(4):
            target = index.uids
            if self.synced is target:
                return True
            cut = bisect_right(target, self.last_uid)
            placed = len(self.uids) + len(self.ghosts)
            if self.synced is not None and placed > cut:
                self._keep(target[:cut])  # some were expunged
                placed = len(self.uids) + len(self.ghosts)
            new = target[cut:]
            rebuild = placed != cut or len(new) > max(REBUILD, len(target) // 8)
            if self.synced is None:
                # The first time, the order alone: what a sort from scratch costs. The values
                # are read when a message must be placed.
                self._build(await store.sort(index.id, self.keys, All()), None, target)
            elif rebuild or (new and self.columns is None):
                rows = await store.sort_values(index.id, self.keys)
                if rows is None:
                    return False
                columns = [list(map(itemgetter(j), rows)) for j in range(len(self.criteria) + 1)]
                self._build(columns[0], columns[1:], target)
            elif new:
                rows = await store.sort_values(index.id, self.keys, new[0])
                if rows is None:
                    return False
                self._insert(rows, new, cut)
            self.synced = target
        return True

    def _build(self, uids: Sequence[int], columns: Sequence[Sequence[Value]] | None, target: array[int]) -> None:
        """The order from a whole-mailbox sort, restricted to the index's UIDs ``target``."""
        order = array("I", uids)
        mask = list(map(_member(target, max(order, default=0)), order))
        if len(order) != len(target) or not all(mask):
            order = array("I", compress(order, mask))
            if columns is not None:
                columns = [list(compress(col, mask)) for col in columns]
        self.uids = order
        self.columns = None if columns is None else [_column(col) for col in columns]
        self.ghosts = set(target).difference(order) if len(order) != len(target) else set()
        self.last_uid = target[-1] if target else 0
        self.uid_text = self.seq_text = None

    def _insert(self, rows: Sequence[tuple[Value, ...]], new: array[int], cut: int) -> None:
        """Place the messages ``new`` (the index's UIDs from position ``cut`` on, above all
        placed ones) from their ``rows``; the renderings follow (message numbers below
        ``cut`` are unchanged: nothing was expunged in between, or they were dropped)."""
        seq_of = {uid: cut + i + 1 for i, uid in enumerate(new)}
        found = set()
        columns = self.columns
        assert columns is not None  # refresh() reads them first
        for row in rows:
            uid = int(row[0])
            if uid not in seq_of or uid in found:
                continue
            found.add(uid)
            values = row[1:]
            at = self._place(values)
            self.uids.insert(at, uid)
            for col, v in zip(columns, values, strict=True):
                col.insert(at, v)  # type: ignore[arg-type]
            if self.uid_text is not None:
                self.uid_text.insert(at, uid)
            if self.seq_text is not None:
                self.seq_text.insert(at, seq_of[uid])
        self.ghosts.update(u for u in new if u not in found)
        self.last_uid = new[-1]

    def _place(self, values: Sequence[Value]) -> int:
        """Where a message with ``values`` and a UID above all others goes: after every
        message that sorts before it or ties with it."""
        lo, hi = 0, len(self.uids)
        columns, reverse = self.columns or [], self.reverse
        while lo < hi:
            mid = (lo + hi) // 2
            before = False
            for v, col, rev in zip(values, columns, reverse, strict=True):
                w = col[mid]
                if v != w:
                    before = v > w if rev else v < w  # type: ignore[operator]
                    break
            if before:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _keep(self, live: array[int]) -> None:
        """Keep the placed UIDs still in ``live`` (the index's UIDs up to :attr:`last_uid`)."""
        mask = list(map(_member(live, self.last_uid), self.uids))
        self.uids = array("I", compress(self.uids, mask))
        if self.columns is not None:
            self.columns = [_column(list(compress(col, mask)), col) for col in self.columns]
        if self.ghosts:
            self.ghosts.intersection_update(live)
        self.uid_text = self.seq_text = None  # message numbers moved: rendered again when asked

    # --- the response -------------------------------------------------------------------------
    def text(self, uid: bool) -> bytes:
        """The order as the SORT response's numbers (" 5 1 3"; b"" when empty): UIDs, or
        message numbers in :attr:`synced` (a session whose view is the index's)."""
        if uid:
            if self.uid_text is None:
                self.uid_text = Rendered(self.uids)
            return self.uid_text.text()
        if self.seq_text is None:
            self.seq_text = Rendered(self.numbers())
        return self.seq_text.text()

    def numbers(self) -> list[int]:
        """The order as message numbers of :attr:`synced`."""
        target = self.synced if self.synced is not None else array("I")
        if target and target[-1] <= DENSE * len(target):
            # a slot per UID: sequential memory, where a dict of 100,000 entries is not
            seq = array("I", bytes(4 * (target[-1] + 1)))
            deque(map(seq.__setitem__, target, range(1, len(target) + 1)), maxlen=0)
            return list(map(seq.__getitem__, self.uids))
        by_uid = dict(zip(target, range(1, len(target) + 1), strict=True))
        return list(map(by_uid.__getitem__, self.uids))


class Rendered:
    """Numbers rendered as " 5 1 3", in blocks of about :data:`BLOCK`: placing one more
    re-renders only its block."""

    __slots__ = ("blocks", "counts", "joined")

    def __init__(self, numbers: Sequence[int]) -> None:
        self.blocks = [_render(numbers[i : i + BLOCK]) for i in range(0, len(numbers), BLOCK)]
        self.counts = [min(BLOCK, len(numbers) - i) for i in range(0, len(numbers), BLOCK)]
        self.joined: bytes | None = None

    def text(self) -> bytes:
        if self.joined is None:
            self.joined = b"".join(self.blocks)
        return self.joined

    def insert(self, at: int, number: int) -> None:
        """Put ``number`` at position ``at`` (0 to the count of numbers)."""
        self.joined = None
        if not self.blocks:
            self.blocks, self.counts = [_render([number])], [1]
            return
        b = 0
        while b < len(self.counts) - 1 and at > self.counts[b]:
            at -= self.counts[b]
            b += 1
        parts = self.blocks[b].split(b" ")  # parts[0] is b"": every number follows a space
        parts.insert(at + 1, b"%d" % number)
        if len(parts) > 2 * BLOCK:
            half = len(parts) // 2
            self.blocks[b : b + 1] = [b" ".join(parts[:half]), b" " + b" ".join(parts[half:])]
            self.counts[b : b + 1] = [half - 1, len(parts) - half]
        else:
            self.blocks[b] = b" ".join(parts)
            self.counts[b] += 1


def _member(uids: array[int], top: int) -> Callable[[int], object]:
    """A membership test for ``uids`` (ascending) taking any UID up to ``top``: a byte per
    UID when they are dense enough (100 KB for 100,000: it stays in the CPU cache, a set of
    them does not), else a set."""
    top = max(top, uids[-1] if uids else 0)
    if top > DENSE * len(uids) + 4096:
        return set(uids).__contains__
    mark = bytearray(top + 1)
    deque(map(mark.__setitem__, uids, repeat(1)), maxlen=0)
    return mark.__getitem__


def _render(numbers: Sequence[int]) -> bytes:
    return (" " + " ".join(map(str, numbers))).encode() if numbers else b""


def _column(values: Sequence[Value], like: array[int] | list[Value] | None = None) -> array[int] | list[Value]:
    if values and not isinstance(like, list):
        with suppress(TypeError, OverflowError):  # not all integers: a list
            return array("q", values)  # type: ignore[arg-type]
    # Equal strings share one object (a base subject is shared by a whole thread).
    pool = dict(zip(values, values, strict=True))
    return list(map(pool.__getitem__, values))


async def ordered(store: Store, index: MailboxIndex, criteria: Criteria) -> SortOrder | None:
    """The index's order for ``criteria``, refreshed; None when the store cannot help."""
    orders = index.sorts
    order = orders.pop(criteria, None)
    if order is None:
        order = SortOrder(criteria)
        while len(orders) >= MAX_ORDERS:
            del orders[next(iter(orders))]
    orders[criteria] = order  # most recently used last
    if order.synced is not index.uids:
        async with order.lock:
            if not await order.refresh(index, store):
                orders.pop(criteria, None)
                return None
    # Behind only when the index kept changing during every read (the caller sorts through
    # the store this time).
    return order if order.synced is index.uids else None
