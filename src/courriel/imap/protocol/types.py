"""Parsed IMAP commands: what the pure parser hands the session (no I/O, no store)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from courriel.store.api import Flag, FlagMode, SearchKey

#: Stands for "*" in a sequence set (RFC 9051 §9 seq-number; 0 is never a valid number).
STAR = 0
MAX_NUMBER = 2**32 - 1


@dataclass(frozen=True, slots=True)
class SeqSet:
    """A sequence set as written: ranges with STAR for "*", or "$" (RFC 5182 saved result)."""

    ranges: tuple[tuple[int, int], ...] = ()
    saved: bool = False

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Ranges with "*" replaced by ``largest``, each ordered low to high (RFC 9051 §9:
        ``4:2`` is ``2:4``, and ``n:*`` includes the largest value even when n exceeds it)."""
        out = []
        for lo, hi in self.ranges:
            lo = largest if lo == STAR else lo
            hi = largest if hi == STAR else hi
            if lo > hi:
                lo, hi = hi, lo
            out.append((lo, hi))
        return out

    def select(self, values: Sequence[int]) -> list[int]:
        """The members of ascending ``values`` (UIDs) inside the set, ascending, no duplicates."""
        if not values:
            return []
        ranges = sorted(self.resolve(values[-1]))
        out: list[int] = []
        last = 0
        for lo, hi in ranges:
            lo = max(lo, last + 1)
            if lo > hi:
                continue
            i = bisect_left(values, lo)
            j = bisect_right(values, hi)
            out.extend(values[i:j])
            last = hi
        return out

    def indexes(self, count: int) -> list[int]:
        """Sequence numbers (1-based) in the set for a mailbox of ``count`` messages; those
        beyond ``count`` are dropped by the caller's check (see :meth:`max_value`)."""
        if count == 0:
            return []
        ranges = sorted(self.resolve(count))
        out: list[int] = []
        last = 0
        for lo, hi in ranges:
            lo = max(lo, last + 1)
            hi = min(hi, count)
            if lo > hi:
                continue
            out.extend(range(lo, hi + 1))
            last = hi
        return out

    def max_value(self) -> int:
        return max((max(lo, hi) for lo, hi in self.ranges), default=0)


# --- search ------------------------------------------------------------------------------
# The parser builds a tree of store keys (courriel.store.api) plus these session-relative
# keys, which the session turns into UID ranges before calling Store.search.


@dataclass(frozen=True, slots=True)
class SeqKey(SearchKey):
    """A sequence set of message numbers (or "$" when ``uid`` and saved)."""

    seqset: SeqSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class RecentKey(SearchKey):
    """\\Recent: known only to the session (RFC 3501 §2.3.2)."""


@dataclass(frozen=True, slots=True)
class ObjectIdKey(SearchKey):
    """RFC 8474 EMAILID / THREADID search keys (``kind`` is "EMAILID" or "THREADID")."""

    kind: str
    value: str


# --- fetch -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    """A section specification (RFC 9051 §6.4.5): part numbers then an optional text part."""

    part: tuple[int, ...] = ()
    text: str = ""  # "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchAtt:
    """One fetch attribute; ``name`` is upper case: FLAGS, UID, BODY, BODY[], BINARY[] ..."""

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None  # (origin, count)
    peek: bool = False
    #: The item name as it appears in the response, e.g. b"BODY[1.MIME]<0>".
    label: bytes = b""


# --- commands ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoArgs:
    pass


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    mechanism: str
    initial: bytes | None  # SASL-IR initial response (base64 text), None when absent


@dataclass(frozen=True, slots=True)
class Enable:
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Id:
    params: tuple[tuple[str, str | None], ...] | None


@dataclass(frozen=True, slots=True)
class MailboxArg:
    """SELECT, EXAMINE, DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class QResync:
    """SELECT ... (QRESYNC (uidvalidity modseq [known-uids [(seqs uids)]])) (RFC 7162 §3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SeqSet | None = None
    seq_match: tuple[SeqSet, SeqSet] | None = None


@dataclass(frozen=True, slots=True)
class Select:
    """SELECT and EXAMINE with their RFC 4466 parameters."""

    mailbox: str
    condstore: bool = False
    qresync: QResync | None = None


@dataclass(frozen=True, slots=True)
class Create:
    mailbox: str
    special_use: tuple[str, ...] = ()  # RFC 6154 §3 CREATE (USE (...))


@dataclass(frozen=True, slots=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ListCmd:
    """LIST and LSUB (RFC 9051 §6.3.9, RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS)."""

    reference: str
    patterns: tuple[str, ...]
    selection: frozenset[str] = frozenset()  # SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE
    returns: frozenset[str] = frozenset()  # SUBSCRIBED CHILDREN SPECIAL-USE STATUS
    status_items: tuple[str, ...] = ()
    lsub: bool = False
    extended: bool = False  # any selection or return option given


@dataclass(frozen=True, slots=True)
class Status:
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AppendMessage:
    flags: Flag
    keywords: frozenset[str]
    internal_date: datetime | None
    data: bytes
    binary: bool = False  # literal8 (RFC 3516)


@dataclass(frozen=True, slots=True)
class Append:
    """APPEND, with several messages for MULTIAPPEND (RFC 3502)."""

    mailbox: str
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Search:
    key: SearchKey
    charset: str | None = None
    #: ESEARCH return options (RFC 4731), None when no RETURN was given.
    returns: frozenset[str] | None = None
    #: The search uses MODSEQ (RFC 7162 §3.1.5): the response carries the highest MODSEQ.
    modseq: bool = False


@dataclass(frozen=True, slots=True)
class Sort:
    """SORT (RFC 5256) with ESORT return options (RFC 5267)."""

    criteria: tuple[tuple[str, bool], ...]  # (key, reverse)
    charset: str
    key: SearchKey
    returns: frozenset[str] | None = None
    modseq: bool = False


@dataclass(frozen=True, slots=True)
class Thread:
    algorithm: str  # ORDEREDSUBJECT or REFERENCES
    charset: str
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Fetch:
    seqset: SeqSet
    atts: tuple[FetchAtt, ...]
    macro: bool = False
    changedsince: int | None = None  # RFC 7162 §3.1.4.1
    vanished: bool = False  # RFC 7162 §3.2.6


@dataclass(frozen=True, slots=True)
class Store:
    seqset: SeqSet
    mode: FlagMode
    silent: bool
    flags: Flag
    keywords: frozenset[str]
    unchangedsince: int | None = None  # RFC 7162 §3.1.3


@dataclass(frozen=True, slots=True)
class QuotaRoot:
    """GETQUOTA root / SETQUOTA root (resources) (RFC 9208)."""

    root: str
    limits: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class GetMetadata:
    """GETMETADATA [(options)] mailbox entries (RFC 5464 §4.2)."""

    mailbox: str
    entries: tuple[str, ...]
    maxsize: int | None = None
    depth: str = "0"  # 0, 1 or infinity


@dataclass(frozen=True, slots=True)
class SetMetadata:
    mailbox: str
    entries: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One event group of NOTIFY SET (RFC 5465 §5): a filter and its events."""

    filter: str  # SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED, SUBTREE, MAILBOXES
    mailboxes: tuple[str, ...]
    events: frozenset[str]  # upper case; empty for NONE


@dataclass(frozen=True, slots=True)
class Notify:
    groups: tuple[NotifyGroup, ...] | None  # None: NOTIFY NONE
    status: bool = False


@dataclass(frozen=True, slots=True)
class Compress:
    mechanism: str


@dataclass(frozen=True, slots=True)
class CopyMove:
    seqset: SeqSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class UidExpunge:
    seqset: SeqSet


Args = (
    NoArgs | Login | Authenticate | Enable | Id | MailboxArg | Create | Rename | ListCmd | Status
    | Append | Search | Fetch | Store | CopyMove | UidExpunge | Select | Sort | Thread | QuotaRoot
    | GetMetadata | SetMetadata | Notify | Compress
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Command:
    tag: str
    name: str  # upper case; "UID FETCH" etc. for the UID forms
    args: Args = field(default_factory=NoArgs)

    @property
    def uid(self) -> bool:
        return self.name.startswith("UID ")
