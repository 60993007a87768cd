"""The one store interface every protocol uses.

Invariants (each backend keeps them; ``tests/store`` checks them under random operations):

- Within one UIDVALIDITY, UIDs are strictly ascending and never reused; ``uidnext`` only grows.
- Every mutation takes one new MODSEQ from the owning user's counter, so a mailbox's
  ``highestmodseq`` strictly increases with each change to it, and every message's ``modseq``
  is that of its last change (RFC 7162 §3.1). Expunged UIDs leave a tombstone with their
  MODSEQ (for QRESYNC VANISHED and JMAP changes).
- A mailbox row's counters (messages, unseen, deleted, size) equal what its messages say.
- Message bytes are immutable and stored once (copies share them); before ``append`` or
  ``deliver`` returns, the bytes and their directory are fsynced and the transaction is
  committed.
- After each committed mutation, its typed changes are published to subscribers in
  commit order (see :mod:`courriel.store.changes`).

Nothing here is SQLite-specific: a PostgreSQL backend implements the same class.
"""

from __future__ import annotations

import abc
import enum
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from courriel.store.changes import ChangeHub

INBOX = "INBOX"
#: The one hierarchy delimiter (RFC 9051 §5.1).
DELIMITER = "/"
#: Special-use mailboxes (RFC 6154) created for every new user: name -> attribute.
SPECIAL_USE = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}
MAX_MAILBOX_NAME = 1024
MAX_KEYWORD = 255


class StoreError(Exception):
    """A request the store refuses; the message is safe to show to the user."""


class NotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class InvalidName(StoreError):
    pass


class QuotaExceeded(StoreError):
    pass


class Flag(enum.IntFlag):
    """IMAP system flags, kept as a bit set (RFC 9051 §2.3.2)."""

    SEEN = 1
    ANSWERED = 2
    FLAGGED = 4
    DELETED = 8
    DRAFT = 16

    @classmethod
    def parse(cls, names: Iterable[str]) -> tuple[Flag, frozenset[str]]:
        """Split IMAP flag names into system flags and keywords (case-insensitive system names)."""
        flags = cls(0)
        keywords: set[str] = set()
        for name in names:
            sys_flag = _FLAG_BY_NAME.get(name.lower())
            if sys_flag is not None:
                flags |= sys_flag
            elif name.startswith("\\"):
                raise StoreError(f"unknown system flag {name}")
            else:
                keywords.add(name)
        return flags, frozenset(keywords)

    def names(self) -> list[str]:
        return [name for bit, name in _FLAG_NAMES if self & bit]


_FLAG_NAMES = [
    (Flag.SEEN, "\\Seen"),
    (Flag.ANSWERED, "\\Answered"),
    (Flag.FLAGGED, "\\Flagged"),
    (Flag.DELETED, "\\Deleted"),
    (Flag.DRAFT, "\\Draft"),
]
_FLAG_BY_NAME = {name.lower(): bit for bit, name in _FLAG_NAMES}


class FlagMode(enum.Enum):
    ADD = "+"
    REMOVE = "-"
    REPLACE = ""


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class User:
    id: int
    address: str
    domain_id: int
    quota_bytes: int  # 0: unlimited
    quota_messages: int  # 0: unlimited
    disabled: bool
    modseq: int


@dataclass(frozen=True, slots=True)
class Credentials:
    """What every SASL mechanism needs; the password itself is never stored."""

    user_id: int
    address: str
    password_hash: str | None  # argon2id, for PLAIN and LOGIN
    scram_salt: bytes | None  # RFC 5802 / RFC 7677 SCRAM-SHA-256
    scram_iterations: int
    scram_stored_key: bytes | None
    scram_server_key: bytes | None
    apop_secret: str | None  # RFC 1939 §7, a separate shared secret


@dataclass(frozen=True, slots=True)
class Alias:
    address: str  # local@domain, or @domain for a catch-all
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    user_id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    noselect: bool
    messages: int
    unseen: int
    deleted: int
    size: int


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """The small, often-read part of a message (SELECT, FETCH FLAGS, POP3 LIST)."""

    uid: int
    modseq: int
    flags: Flag
    keywords: frozenset[str]
    size: int
    internal_date: datetime
    content_id: int  # stable across COPY and MOVE (OBJECTID EMAILID, JMAP Email id)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A message with what was computed once at delivery (envelope, body structure...)."""

    info: MessageInfo
    mailbox_id: int
    blob: str
    envelope_json: str
    body_json: str
    preview: str
    savedate: datetime
    mail_from: str | None
    has_attachment: bool
    sent_date: datetime | None
    subject: str
    message_id: str | None
    in_reply_to: str | None
    references: str | None


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """A whole mailbox's message rows at one instant, packed (IMAP SELECT at scale).

    ``uids`` ascending (``array('I')``), with ``flags`` (``array('B')``, :class:`Flag` bits)
    and ``modseqs`` (``array('Q')``) aligned to it; ``keywords`` only for messages that have
    any. ``mailbox`` (HIGHESTMODSEQ, UIDNEXT...) is read in the same transaction.
    ``sizes`` (``array('I')``) and ``content_ids`` (``array('Q')``), aligned too, are optional:
    with them IMAP answers FETCH RFC822.SIZE / ENVELOPE / BODYSTRUCTURE without a query."""

    mailbox: Mailbox
    uids: array[int]
    flags: array[int]
    modseqs: array[int]
    keywords: dict[int, frozenset[str]]
    sizes: array[int] | None = None
    content_ids: array[int] | None = None


@dataclass(frozen=True, slots=True)
class AppendTarget:
    mailbox_id: int
    flags: Flag = Flag(0)
    keywords: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NewMessage:
    data: bytes
    flags: Flag = Flag(0)
    keywords: frozenset[str] = frozenset()
    internal_date: datetime | None = None
    mail_from: str | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    mailbox_id: int
    uidvalidity: int
    uid: int
    modseq: int
    content_id: int


@dataclass(frozen=True, slots=True)
class FlagResult:
    """Result of :meth:`Store.store_flags`: messages changed, and those refused by UNCHANGEDSINCE."""

    changed: list[MessageInfo]
    modified: list[int]  # RFC 7162 §3.2: UIDs whose modseq exceeds UNCHANGEDSINCE


# --- search primitives -------------------------------------------------------------------
# A small query tree the IMAP SEARCH and JMAP filters translate into. Backends compile it.


class SearchKey:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class All(SearchKey):
    pass


@dataclass(frozen=True, slots=True)
class And(SearchKey):
    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class Or(SearchKey):
    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class Not(SearchKey):
    key: SearchKey


@dataclass(frozen=True, slots=True)
class HasFlag(SearchKey):
    flag: Flag


@dataclass(frozen=True, slots=True)
class HasKeyword(SearchKey):
    keyword: str


@dataclass(frozen=True, slots=True)
class UidIn(SearchKey):
    """UIDs in inclusive ranges."""

    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class SizeCompare(SearchKey):
    larger: bool  # LARGER n, else SMALLER n
    size: int


class DateField(enum.Enum):
    INTERNAL = "internal"
    SENT = "sent"
    SAVED = "saved"


@dataclass(frozen=True, slots=True)
class DateCompare(SearchKey):
    """``op`` is 'before' (<), 'since' (>=) or 'on'; timestamps are UTC seconds bounding a day."""

    field: DateField
    op: str
    start: int  # the day's first second
    end: int  # the next day's first second


@dataclass(frozen=True, slots=True)
class HeaderContains(SearchKey):
    """Case-insensitive substring of a decoded header (RFC 9051 §6.4.4). Empty text: header exists."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class BodyContains(SearchKey):
    text: str
    whole: bool = False  # TEXT: headers and body; BODY: body only


@dataclass(frozen=True, slots=True)
class ModSeqAtLeast(SearchKey):
    modseq: int


@dataclass(frozen=True, slots=True)
class ContentIs(SearchKey):
    """The copies of one stored message (``MessageInfo.content_id``; RFC 8474 EMAILID)."""

    content_id: int


@dataclass(frozen=True, slots=True)
class InThread(SearchKey):
    """Messages of one thread, by the id :func:`courriel.store.content.thread_id` gives
    (RFC 8474 THREADID); backends answer it through an index."""

    thread_id: str


@dataclass(frozen=True, slots=True)
class SortKey:
    """RFC 5256 sort criteria: arrival, cc, date, from, size, subject, to, displayfrom, displayto."""

    name: str
    reverse: bool = False


SORT_KEYS = frozenset({"arrival", "cc", "date", "from", "size", "subject", "to", "displayfrom", "displayto"})


# --- outbound queue ----------------------------------------------------------------------
# Mail for remote recipients (authenticated submission, aliases with external targets) waits
# here for the outbound SMTP client: the message stored once, a row per recipient with its
# own state, the RFC 3461 DSN parameters kept for the delivery status notifications.

#: Recipient states in the queue. ``queued``: waiting for an attempt (or for the outbound
#: client, which is not part of this release: until it is, the queue holds the mail).
QUEUE_STATES = ("queued", "deferred", "delivered", "failed")


@dataclass(frozen=True, slots=True)
class QueueRecipient:
    """A recipient to queue, with its RFC 3461 parameters."""

    address: str
    notify: str | None = None  # NOTIFY as given: "NEVER" or e.g. "SUCCESS,FAILURE"
    orcpt: str | None = None  # "addr-type;address", xtext-decoded


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    id: int
    address: str
    notify: str | None
    orcpt: str | None
    state: str  # one of QUEUE_STATES
    attempts: int
    next_attempt: datetime
    last_error: str | None


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    id: int
    mail_from: str  # "" for the null sender
    size: int
    blob: str
    created: datetime
    envid: str | None  # RFC 3461 ENVID
    ret: str | None  # RFC 3461 RET: FULL or HDRS
    smtputf8: bool
    body_8bit: bool
    auth_user: str | None  # who submitted it, if authenticated
    source: str  # transaction id of the SMTP session that queued it, for the logs
    recipients: tuple[QueuedRecipient, ...]


@dataclass(frozen=True, slots=True)
class RecipientUpdate:
    """The outcome of a delivery attempt for one queued recipient (see :meth:`Store.update_queue`)."""

    id: int
    state: str  # one of QUEUE_STATES
    next_attempt: datetime | None = None  # None: unchanged
    last_error: str | None = None
    attempted: bool = True  # count the attempt


# --- account-wide views and change tracking (JMAP, RFC 8620 §5.2) -------------------------
# One user's messages across all mailboxes; an Email is a content id (shared by its copies).


@dataclass(frozen=True, slots=True)
class AccountMessage:
    """One message copy in one of a user's mailboxes, with the fields account-wide queries
    sort and thread on (see :meth:`Store.account_messages`)."""

    mailbox_id: int
    uid: int
    content_id: int
    modseq: int
    flags: Flag
    keywords: frozenset[str]
    size: int
    internal_date: datetime
    sent_date: datetime | None
    base_subject: str  # RFC 5256 §2.1, casefolded
    sort_from: str
    sort_to: str
    message_id: str | None
    in_reply_to: str | None
    references: str | None
    #: :func:`courriel.store.content.thread_key` when the backend keeps it (else computed).
    thread_key: str | None = None


@dataclass(frozen=True, slots=True)
class CopyChange:
    """A message copy added, changed or removed in a user's mailboxes (see
    :meth:`Store.message_changes`)."""

    content_id: int
    mailbox_id: int
    uid: int
    created_modseq: int  # the MODSEQ at which the copy appeared (0: before tracking began)
    modseq: int  # its last change, or its removal when ``removed``
    removed: bool


@dataclass(frozen=True, slots=True)
class MailboxChange:
    """A mailbox changed or removed after some MODSEQ (see :meth:`Store.mailbox_changes`)."""

    mailbox_id: int
    created_modseq: int  # 0: created before tracking began
    modseq: int  # HIGHESTMODSEQ, or the removal's MODSEQ when ``removed``
    removed: bool


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A fact in a stored message's journey (courriel.trace.events): ``kind`` "delivered",
    "retrieved" or "relayed", ``time`` in Unix seconds, ``details`` a JSON object."""

    user_id: int
    content_id: int
    time: float
    kind: str
    protocol: str = ""
    client: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    id: int = 0  # assigned by the store


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token for the HTTP APIs; the secret itself is never stored, only its hash."""

    id: int
    user_id: int
    address: str
    label: str
    created: datetime


@dataclass(frozen=True, slots=True)
class WebSession:
    """A webmail session (courriel.webmail.sessions). Only the SHA-256 of the cookie's token
    is stored; ``secret`` is the CSRF secret. Times in Unix seconds: ``expires`` is the end of
    its maximum lifetime, the idle timeout runs from ``last_seen`` (written in batches)."""

    id: int
    user_id: int
    token_hash: bytes
    secret: str
    created: float
    last_seen: float
    expires: float
    client_ip: str = ""
    user_agent: str = ""


@dataclass(slots=True)
class Usage:
    bytes: int = 0
    messages: int = 0


@dataclass(frozen=True, slots=True)
class SieveScript:
    """A user's Sieve script (RFC 5228) as managed over ManageSieve (RFC 5804)."""

    name: str
    content: str
    active: bool


@dataclass(frozen=True, slots=True)
class EmailSubmissionRecord:
    """A JMAP EmailSubmission (RFC 8621 §7) as remembered for EmailSubmission/get: ``envelope``
    and ``delivery`` (deliveryStatus by recipient) are JSON objects. ``created`` and ``changed``
    are the user's submission change numbers (assigned by the store) at which it appeared and
    last changed; a destroyed one stays as a tombstone (``destroyed``) for /changes."""

    id: str
    user_id: int
    identity_id: str
    email_id: str
    thread_id: str
    envelope: dict[str, Any]
    send_at: float
    queue_id: int | None = None
    delivery: dict[str, Any] = field(default_factory=dict)
    created: int = 0
    changed: int = 0
    destroyed: bool = False


@dataclass(slots=True)
class StoreStats:
    users: int = 0
    mailboxes: int = 0
    messages: int = 0
    bytes: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Store(abc.ABC):
    """The store. All methods are coroutines; mutations are durable when they return."""

    changes: ChangeHub

    # --- lifecycle ---------------------------------------------------------------------
    @abc.abstractmethod
    async def close(self) -> None: ...

    # --- domains, users, aliases ---------------------------------------------------------
    @abc.abstractmethod
    async def add_domain(self, name: str) -> Domain: ...

    @abc.abstractmethod
    async def list_domains(self) -> list[Domain]: ...

    @abc.abstractmethod
    async def delete_domain(self, name: str) -> None: ...

    @abc.abstractmethod
    async def is_local_domain(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def add_user(self, address: str, password: str, quota_bytes: int = 0, quota_messages: int = 0) -> User:
        """Create a user with INBOX and the special-use mailboxes; hashes the password."""

    @abc.abstractmethod
    async def set_password(self, address: str, password: str) -> None: ...

    @abc.abstractmethod
    async def set_apop_secret(self, address: str, secret: str | None) -> None: ...

    @abc.abstractmethod
    async def set_quota(self, address: str, quota_bytes: int, quota_messages: int) -> None: ...

    @abc.abstractmethod
    async def get_user(self, address: str) -> User | None: ...

    @abc.abstractmethod
    async def get_user_by_id(self, user_id: int) -> User | None: ...

    @abc.abstractmethod
    async def list_users(self, domain: str | None = None) -> list[User]: ...

    @abc.abstractmethod
    async def delete_user(self, address: str) -> None:
        """Remove the user, its mailboxes and messages (files too once unreferenced)."""

    @abc.abstractmethod
    async def get_credentials(self, address: str) -> Credentials | None: ...

    @abc.abstractmethod
    async def add_alias(self, address: str, targets: Sequence[str]) -> Alias: ...

    @abc.abstractmethod
    async def delete_alias(self, address: str, targets: Sequence[str] = ()) -> None:
        """Remove the given targets of an alias, or the whole alias when none is given."""

    @abc.abstractmethod
    async def get_alias(self, address: str) -> Alias | None: ...

    @abc.abstractmethod
    async def list_aliases(self) -> list[Alias]: ...

    # --- mailboxes -----------------------------------------------------------------------
    @abc.abstractmethod
    async def create_mailbox(self, user_id: int, name: str, special_use: str | None = None) -> Mailbox:
        """Create a mailbox and any missing parents (RFC 9051 §6.3.4)."""

    @abc.abstractmethod
    async def delete_mailbox(self, user_id: int, name: str) -> None:
        """Delete a mailbox; one with children becomes \\Noselect (RFC 9051 §6.3.5)."""

    @abc.abstractmethod
    async def rename_mailbox(self, user_id: int, old: str, new: str) -> None:
        """Rename with children; renaming INBOX moves its messages (RFC 9051 §6.3.6)."""

    @abc.abstractmethod
    async def get_mailbox(self, user_id: int, name: str) -> Mailbox | None: ...

    @abc.abstractmethod
    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None: ...

    @abc.abstractmethod
    async def list_mailboxes(self, user_id: int) -> list[Mailbox]: ...

    @abc.abstractmethod
    async def subscribe(self, user_id: int, name: str) -> None: ...

    @abc.abstractmethod
    async def unsubscribe(self, user_id: int, name: str) -> None: ...

    @abc.abstractmethod
    async def list_subscriptions(self, user_id: int) -> list[str]: ...

    # --- messages ------------------------------------------------------------------------
    @abc.abstractmethod
    async def deliver(
        self,
        data: bytes,
        targets: Sequence[AppendTarget],
        internal_date: datetime | None = None,
        mail_from: str | None = None,
        check_quota: bool = True,
    ) -> list[Appended]:
        """Store one message in several mailboxes (one copy of the bytes); durable on return.

        All targets or none: a :class:`QuotaExceeded` or missing mailbox fails the whole call.
        """

    async def append(
        self,
        mailbox_id: int,
        data: bytes,
        flags: Flag = Flag(0),
        keywords: frozenset[str] = frozenset(),
        internal_date: datetime | None = None,
        mail_from: str | None = None,
    ) -> Appended:
        (result,) = await self.deliver(data, [AppendTarget(mailbox_id, flags, keywords)], internal_date, mail_from)
        return result

    @abc.abstractmethod
    async def append_many(self, mailbox_id: int, items: Sequence[NewMessage]) -> list[Appended]:
        """Append several messages in order, in one transaction (import); durable on return."""

    @abc.abstractmethod
    async def copy(self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int) -> list[tuple[int, int]]:
        """Copy messages; returns (source UID, new UID) pairs in source UID order (RFC 4315 COPYUID)."""

    @abc.abstractmethod
    async def move(self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int) -> list[tuple[int, int]]:
        """Copy then expunge atomically (RFC 6851)."""

    @abc.abstractmethod
    async def store_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        mode: FlagMode,
        flags: Flag,
        keywords: frozenset[str] = frozenset(),
        unchanged_since: int | None = None,
    ) -> FlagResult: ...

    @abc.abstractmethod
    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        """Remove messages flagged \\Deleted (restricted to ``uids`` when given); returns their UIDs."""

    @abc.abstractmethod
    async def delete_messages(self, mailbox_id: int, uids: Sequence[int]) -> list[int]:
        """Flag \\Deleted and expunge exactly ``uids`` in one operation (POP3 UPDATE state,
        RFC 1939 §6): all of them or none. Returns the UIDs removed (those that still existed)."""

    @abc.abstractmethod
    async def list_messages(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[MessageInfo]:
        """Messages in UID order (all, or those of ``uids`` that exist)."""

    @abc.abstractmethod
    async def changed_since(self, mailbox_id: int, modseq: int) -> tuple[list[MessageInfo], list[int]]:
        """Messages changed after ``modseq``, and UIDs expunged after it (RFC 7162)."""

    @abc.abstractmethod
    async def get_records(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageRecord]: ...

    @abc.abstractmethod
    async def read_message(self, blob: str) -> bytes: ...

    async def read_messages(self, mailbox_id: int, uids: Sequence[int]) -> dict[int, bytes]:
        """The bytes of several messages in one call (POP3 read-ahead), by UID. A UID that does
        not exist, or whose file went with a concurrent expunge, is left out."""
        out: dict[int, bytes] = {}
        for rec in await self.get_records(mailbox_id, uids):
            try:
                out[rec.info.uid] = await self.read_message(rec.blob)
            except FileNotFoundError:
                pass
        return out

    @abc.abstractmethod
    async def snapshot(self, mailbox_id: int) -> MailboxSnapshot:
        """Every message's UID, flags, keywords and MODSEQ with the mailbox row, consistently."""

    @abc.abstractmethod
    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        """UIDs matching ``key``, ascending."""

    @abc.abstractmethod
    async def sort(self, mailbox_id: int, keys: Sequence[SortKey], key: SearchKey) -> list[int]:
        """UIDs matching ``key`` in RFC 5256 order (ties broken by UID)."""

    async def sort_values(
        self, mailbox_id: int, keys: Sequence[SortKey], since_uid: int = 1
    ) -> list[tuple[int | str, ...]] | None:
        """The messages from UID ``since_uid`` on (1: all) in RFC 5256 order (ties by UID),
        as rows ``(uid, value of each key...)``, the values as the backend compares them
        (integers, or strings in code point order), so that a caller keeping a sorted list
        can place new messages itself (IMAP SORT at scale). None: this backend does not
        offer it (use :meth:`sort`)."""
        return None

    async def thread_rows(self, mailbox_id: int, since_uid: int = 1) -> list[tuple[int, str, int]]:
        """(UID, RFC 8474 THREADID, sort date in Unix seconds) of every message of a mailbox
        from UID ``since_uid`` on (1: all; UIDNEXT seen earlier: the arrivals since), in no
        particular order: what a conversation list groups and orders (the webmail).
        The sort date is RFC 5256 §2.2 DATE (the Date field, else the internal date); the
        thread id is :func:`courriel.store.content.thread_id`. This generic version reads
        every record; backends that keep the thread id indexed answer it in one query."""
        from courriel.store.content import thread_id, thread_key

        out: list[tuple[int, str, int]] = []
        uids = [uid for uid in (await self.snapshot(mailbox_id)).uids if uid >= since_uid]
        for i in range(0, len(uids), 1000):
            for rec in await self.get_records(mailbox_id, uids[i : i + 1000]):
                key = thread_key(rec.references, rec.in_reply_to, rec.message_id)
                when = rec.sent_date or rec.info.internal_date
                out.append((rec.info.uid, thread_id(key, rec.info.content_id), int(when.timestamp())))
        return out

    @abc.abstractmethod
    async def claim_recent(self, mailbox_id: int, upto_uid: int | None = None) -> int:
        """Claim the \\Recent messages of a mailbox for one session (RFC 3501 §2.3.2).

        Returns the first UID that is recent for the caller (messages from it up to
        ``upto_uid``, exclusive, or up to UIDNEXT when None, are recent for that session only);
        later callers get none of them.
        """

    @abc.abstractmethod
    async def usage(self, user_id: int) -> Usage: ...

    @abc.abstractmethod
    async def stats(self) -> StoreStats: ...

    @abc.abstractmethod
    async def check(self) -> list[str]:
        """Verify the invariants; returns a list of problems (empty when sound)."""

    # --- annotations (RFC 5464 METADATA) ----------------------------------------------------
    @abc.abstractmethod
    async def get_metadata(self, user_id: int, mailbox_id: int | None) -> dict[str, bytes]:
        """Every entry of a mailbox (or the user's server entries when None), by name."""

    @abc.abstractmethod
    async def set_metadata(
        self, user_id: int, mailbox_id: int | None, entries: dict[str, bytes | None], max_entries: int = 0
    ) -> None:
        """Set (None: remove) entries, all or none. With ``max_entries``, refuses with
        :class:`QuotaExceeded` when the mailbox (or server) would hold more entries."""

    # --- outbound queue --------------------------------------------------------------------
    @abc.abstractmethod
    async def enqueue(
        self,
        data: bytes,
        mail_from: str,
        recipients: Sequence[QueueRecipient],
        envid: str | None = None,
        ret: str | None = None,
        smtputf8: bool = False,
        body_8bit: bool = False,
        auth_user: str | None = None,
        source: str = "",
    ) -> int:
        """Queue one message for remote recipients (bytes stored once); durable on return.

        Returns the queue id."""

    @abc.abstractmethod
    async def list_queue(self) -> list[QueuedMessage]:
        """Queued messages, oldest first, with their recipients."""

    @abc.abstractmethod
    async def delete_queued(self, queue_id: int) -> None:
        """Remove a queued message and its recipients (its file too). NotFound when absent."""

    @abc.abstractmethod
    async def due_queue(self, now: datetime, limit: int = 1000) -> list[QueuedMessage]:
        """Queued messages with at least one recipient waiting (``queued`` or ``deferred``)
        whose next attempt is at or before ``now``, oldest first, with all their recipients."""

    @abc.abstractmethod
    async def update_queue(self, updates: Sequence[RecipientUpdate]) -> list[int]:
        """Record attempt outcomes in one transaction; a message whose recipients are all
        final (``delivered`` or ``failed``) is removed with its file. Returns removed ids."""

    @abc.abstractmethod
    async def flush_queue(self) -> int:
        """Make every waiting recipient due now; returns how many."""

    # --- Sieve scripts (RFC 5228, RFC 5804) and vacation tracking (RFC 5230) ---------------
    @abc.abstractmethod
    async def list_sieve_scripts(self, user_id: int) -> list[SieveScript]: ...

    @abc.abstractmethod
    async def get_sieve_script(self, user_id: int, name: str | None) -> SieveScript | None:
        """A script by name, or the active one when ``name`` is None."""

    async def delivery_sieve_scripts(self, user_id: int, system: str) -> tuple[SieveScript | None, SieveScript | None]:
        """What local delivery runs for the user, read at each delivery: (the active script,
        the script named ``system``: the JMAP vacation's, kept inactive beside the user's own).
        Backends should override this generic version (two reads) with one query."""
        return await self.get_sieve_script(user_id, None), await self.get_sieve_script(user_id, system)

    @abc.abstractmethod
    async def put_sieve_script(
        self, user_id: int, name: str, content: str, max_scripts: int = 0, max_size: int = 0
    ) -> None:
        """Create or replace a script; :class:`QuotaExceeded` past ``max_scripts``/``max_size``."""

    @abc.abstractmethod
    async def set_active_sieve_script(self, user_id: int, name: str | None) -> None:
        """Make ``name`` the one active script (None: none active). NotFound when absent."""

    @abc.abstractmethod
    async def delete_sieve_script(self, user_id: int, name: str) -> None:
        """NotFound when absent; StoreError when it is the active one (RFC 5804 §2.10)."""

    @abc.abstractmethod
    async def rename_sieve_script(self, user_id: int, old: str, new: str) -> None: ...

    @abc.abstractmethod
    async def vacation_due(self, user_id: int, handle: str, sender: str, period: int) -> bool:
        """Whether a vacation reply to ``sender`` under ``handle`` may go now (none within
        ``period`` seconds); when it may, the reply is recorded in the same operation."""

    # --- account-wide views and change tracking (JMAP) ------------------------------------
    @abc.abstractmethod
    async def account_messages(self, user_id: int) -> list[AccountMessage]:
        """Every message copy in the user's mailboxes, by mailbox then UID."""

    async def account_messages_of(self, user_id: int, content_ids: Sequence[int]) -> list[AccountMessage]:
        """The copies of the given contents in the user's mailboxes, as :meth:`account_messages`
        gives them (to patch an account view after :meth:`message_changes`). Backends should
        override this generic version, which reads the whole account."""
        wanted = set(content_ids)
        return [m for m in await self.account_messages(user_id) if m.content_id in wanted]

    async def account_received(self, user_id: int, mailbox_id: int | None) -> list[tuple[int, float]]:
        """(content id, receivedAt as epoch seconds) of each content with a copy in the mailbox
        (in any of the user's mailboxes when None), by receivedAt then content id; receivedAt is
        the earliest internal date of its copies in the user's mailboxes (JMAP's first
        Email/query before the account view is read). Backends should override this generic
        version, which reads the whole account."""
        received: dict[int, float] = {}
        members: set[int] = set()
        for m in await self.account_messages(user_id):
            when = m.internal_date.timestamp()
            if m.content_id not in received or when < received[m.content_id]:
                received[m.content_id] = when
            if mailbox_id is None or m.mailbox_id == mailbox_id:
                members.add(m.content_id)
        return sorted(((c, received[c]) for c in members), key=lambda r: (r[1], r[0]))

    async def received_page(
        self, user_id: int, mailbox_id: int, count: int, total: bool
    ) -> tuple[list[tuple[int, float]], int | None]:
        """The first ``count`` entries of :meth:`account_received` for the mailbox in reverse
        order (receivedAt descending, then content id descending), and with ``total`` the number
        of contents in the mailbox (else None): JMAP's first page of a mailbox before the account
        view is read, without reading the whole mailbox. Backends should override this generic
        version, which reads the whole mailbox."""
        rows = await self.account_received(user_id, mailbox_id)
        page = rows[max(0, len(rows) - count) :][::-1] if count > 0 else []
        return page, (len(rows) if total else None)

    @abc.abstractmethod
    async def message_changes(self, user_id: int, since: int) -> tuple[list[CopyChange], bool]:
        """Copies in the user's mailboxes added, changed or removed after MODSEQ ``since``,
        together with every current copy of the contents concerned (changed or not).

        The flag is False when removals after ``since`` can no longer be told (a mailbox was
        deleted or re-created since, taking its tombstones with it)."""

    @abc.abstractmethod
    async def mailbox_changes(self, user_id: int, since: int) -> list[MailboxChange]:
        """The user's mailboxes whose HIGHESTMODSEQ exceeds ``since``, and those removed after it."""

    # --- bearer tokens (HTTP APIs) ----------------------------------------------------------
    @abc.abstractmethod
    async def add_token(self, user_id: int, token_hash: bytes, label: str = "") -> AccessToken: ...

    @abc.abstractmethod
    async def list_tokens(self, user_id: int | None = None) -> list[AccessToken]: ...

    @abc.abstractmethod
    async def delete_token(self, token_id: int) -> None:
        """NotFound when absent."""

    @abc.abstractmethod
    async def token_user(self, token_hash: bytes) -> User | None:
        """The (enabled) user a token hash belongs to, or None."""

    # --- message events (journeys) ----------------------------------------------------------
    @abc.abstractmethod
    async def add_message_events(self, events: Sequence[MessageEvent]) -> None:
        """Record events in one write, not fsynced on its own (informative, not acknowledged
        data); events of users that no longer exist are dropped."""

    @abc.abstractmethod
    async def message_events(self, user_id: int, content_id: int) -> list[MessageEvent]:
        """The user's events about one content, oldest first."""

    @abc.abstractmethod
    async def prune_message_events(self, before: float) -> int:
        """Delete events older than ``before`` (Unix time); returns how many."""

    # --- JMAP EmailSubmission records (RFC 8621 §7) ---------------------------------------
    @abc.abstractmethod
    async def add_email_submission(self, record: EmailSubmissionRecord) -> int:
        """Remember a submission; returns the user's new submission change number (its
        ``created``). AlreadyExists when the user has one with that id."""

    @abc.abstractmethod
    async def email_submissions(self, user_id: int, tombstones: bool = False) -> list[EmailSubmissionRecord]:
        """The user's submissions by change number of creation (with ``tombstones``, the
        destroyed ones too)."""

    @abc.abstractmethod
    async def update_email_submission(self, user_id: int, submission_id: str, delivery: dict[str, Any]) -> int:
        """Replace a live submission's deliveryStatus; returns the new change number.
        NotFound when absent or destroyed."""

    @abc.abstractmethod
    async def destroy_email_submissions(self, user_id: int, ids: Sequence[str]) -> list[str]:
        """Forget live submissions (kept as tombstones under a new change number); returns
        the ids destroyed, the others being unknown."""

    # --- webmail sessions -------------------------------------------------------------------
    @abc.abstractmethod
    async def add_web_session(
        self, user_id: int, token_hash: bytes, secret: str, created: float, expires: float,
        client_ip: str = "", user_agent: str = "",
    ) -> WebSession:  # fmt: skip
        """A new session (``last_seen`` = ``created``); NotFound when the user does not exist."""

    @abc.abstractmethod
    async def web_session(self, token_hash: bytes) -> WebSession | None:
        """The session of a token hash, None when unknown or its user is disabled."""

    @abc.abstractmethod
    async def web_session_by_id(self, session_id: int) -> WebSession | None:
        """The session with this id, None when unknown or its user is disabled."""

    @abc.abstractmethod
    async def list_web_sessions(self, user_id: int) -> list[WebSession]:
        """The user's sessions, the most recently seen first."""

    @abc.abstractmethod
    async def touch_web_sessions(self, seen: Sequence[tuple[int, float]]) -> None:
        """Record (session id, last seen) pairs in one write, not fsynced on its own; a time
        never moves back, unknown ids are ignored."""

    @abc.abstractmethod
    async def delete_web_session(self, session_id: int) -> None:
        """End one session (no error when it is already gone)."""

    @abc.abstractmethod
    async def delete_web_sessions(self, user_id: int) -> int:
        """End every session of a user; returns how many. ``set_password`` and ``delete_user``
        do it too, in their own transaction."""

    @abc.abstractmethod
    async def prune_web_sessions(self, idle_before: float, now: float) -> int:
        """Delete sessions last seen before ``idle_before`` or past ``expires``; how many."""
