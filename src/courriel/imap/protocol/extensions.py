"""Parsers of the extension commands (pure, like :mod:`.parser`): SELECT parameters
(RFC 7162 CONDSTORE / QRESYNC), SORT (RFC 5256, RFC 5267 ESORT), THREAD (RFC 5256), QUOTA
(RFC 9208), METADATA (RFC 5464), NOTIFY (RFC 5465) and COMPRESS (RFC 4978)."""

from __future__ import annotations

from courriel.imap.protocol.reader import ParseError, Reader
from courriel.imap.protocol.searchkeys import parse_search
from courriel.imap.protocol.types import (
    Args,
    Compress,
    GetMetadata,
    MailboxArg,
    Notify,
    NotifyGroup,
    QResync,
    QuotaRoot,
    Select,
    SetMetadata,
    Sort,
    Thread,
)

MAX_MODSEQ = 2**63 - 1
SORT_CRITERIA = frozenset({"ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"})
ESORT_RETURNS = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
THREAD_ALGORITHMS = frozenset({"ORDEREDSUBJECT", "REFERENCES"})
NOTIFY_EVENTS = frozenset({
    "MESSAGENEW", "MESSAGEEXPUNGE", "FLAGCHANGE", "ANNOTATIONCHANGE", "MAILBOXNAME",
    "SUBSCRIPTIONCHANGE", "MAILBOXMETADATACHANGE", "SERVERMETADATACHANGE",
})  # fmt: skip
NOTIFY_FILTERS = frozenset({"SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL", "SUBSCRIBED", "SUBTREE",
                            "MAILBOXES"})  # fmt: skip
MAX_METADATA_ENTRIES = 100


def select(r: Reader) -> Args:
    """SELECT / EXAMINE mailbox [(CONDSTORE | QRESYNC (...))] (RFC 4466 §2.1, RFC 7162)."""
    r.sp()
    mailbox = r.mailbox()
    if r.at_eol():
        return MailboxArg(mailbox)
    r.sp()
    r.expect(b"(")
    condstore = False
    qresync = None
    while not r.accept(b")"):
        if condstore or qresync:
            r.sp()
        word = r.atom("select parameter").upper()
        if word == "CONDSTORE":
            condstore = True
        elif word == "QRESYNC" and qresync is None:
            r.sp()
            qresync = _qresync(r)
        else:
            raise ParseError(f"unknown SELECT parameter {word}")
    return Select(mailbox, condstore, qresync)


def _qresync(r: Reader) -> QResync:
    # RFC 7162 §7: "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
    r.expect(b"(")
    uidvalidity = r.nz_number()
    r.sp()
    modseq = r.number(limit=MAX_MODSEQ)
    known = None
    match = None
    if r.accept(b" "):
        if r.peek() == 0x28:
            match = _seq_match(r)
        else:
            known = r.seqset()
            if known.saved:
                raise ParseError("$ is not a list of known UIDs")
            if r.accept(b" "):
                match = _seq_match(r)
    r.expect(b")")
    return QResync(uidvalidity, modseq, known, match)


def _seq_match(r: Reader) -> tuple:  # type: ignore[type-arg]
    r.expect(b"(")
    seqs = r.seqset()
    r.sp()
    uids = r.seqset()
    r.expect(b")")
    if seqs.saved or uids.saved:
        raise ParseError("$ not allowed in sequence match data")
    return seqs, uids


def _search_tail(r: Reader) -> tuple[str, object, bool]:
    charset = r.astring("charset").decode("ascii", "replace").upper()
    r.sp()
    key, modseq = parse_search(r)
    return charset, key, modseq


def sort(r: Reader) -> Args:
    """SORT [RETURN (opts)] (criteria) charset search-keys (RFC 5256 §3, RFC 5267 §3)."""
    r.sp()
    returns = None
    if r.accept(b"RETURN "):
        returns = frozenset(_words(r, ESORT_RETURNS, "return option"))
        r.sp()
    r.expect(b"(")
    criteria: list[tuple[str, bool]] = []
    reverse = False
    while True:
        word = r.atom("sort criterion").upper()
        if word == "REVERSE":
            if reverse:
                raise ParseError("REVERSE twice")
            reverse = True
        elif word in SORT_CRITERIA:
            criteria.append((word, reverse))
            reverse = False
        else:
            raise ParseError(f"unknown sort criterion {word}")
        if r.accept(b")"):
            break
        r.sp()
    if reverse:
        raise ParseError("REVERSE needs a sort key")
    if len(criteria) > 20:
        raise ParseError("too many sort criteria")
    r.sp()
    charset, key, modseq = _search_tail(r)
    return Sort(tuple(criteria), charset, key, returns, modseq)  # type: ignore[arg-type]


def thread(r: Reader) -> Args:
    r.sp()
    algorithm = r.atom("thread algorithm").upper()
    if algorithm not in THREAD_ALGORITHMS:
        raise ParseError(f"unknown thread algorithm {algorithm}")
    r.sp()
    charset, key, _modseq = _search_tail(r)
    return Thread(algorithm, charset, key)  # type: ignore[arg-type]


def _words(r: Reader, allowed: frozenset[str], what: str) -> list[str]:
    r.expect(b"(")
    out: list[str] = []
    while not r.accept(b")"):
        if out:
            r.sp()
        word = r.atom(what).upper()
        if word not in allowed:
            raise ParseError(f"unsupported {what} {word}")
        out.append(word)
    return out


def getquota(r: Reader) -> Args:
    r.sp()
    return QuotaRoot(r.astring_text("quota root"))


def getquotaroot(r: Reader) -> Args:
    r.sp()
    return MailboxArg(r.mailbox())


def setquota(r: Reader) -> Args:
    # RFC 9208 §4.1.1: SETQUOTA root (resource limit ...)
    r.sp()
    root = r.astring_text("quota root")
    r.sp()
    r.expect(b"(")
    limits: list[tuple[str, int]] = []
    while not r.accept(b")"):
        if limits:
            r.sp()
        name = r.atom("resource").upper()
        r.sp()
        limits.append((name, r.number(limit=MAX_MODSEQ)))
    return QuotaRoot(root, tuple(limits))


def _entry(r: Reader, whole_tree: bool = False) -> str:
    # RFC 5464 §3.2: entry names start with /private or /shared, no "*", "%", "//" or trailing "/"
    name = r.astring_text("entry name").lower()
    if whole_tree and name in ("/private", "/shared"):  # GETMETADATA (DEPTH ...) (/shared)
        return name
    if not (name.startswith("/private/") or name.startswith("/shared/")) or name.endswith("/") or "//" in name \
            or "*" in name or "%" in name or len(name) > 1024 or any(ord(c) < 0x20 for c in name):  # fmt: skip
        raise ParseError(f"invalid entry name {name}")
    return name


def getmetadata(r: Reader) -> Args:
    r.sp()
    maxsize = None
    depth = "0"
    if r.peek() == 0x28:  # options before the mailbox (RFC 5464 §4.2)
        r.expect(b"(")
        first = True
        while not r.accept(b")"):
            if not first:
                r.sp()
            first = False
            opt = r.atom("option").upper()
            r.sp()
            if opt == "MAXSIZE":
                maxsize = r.number()
            elif opt == "DEPTH":
                depth = r.atom("depth").lower()
                if depth not in ("0", "1", "infinity"):
                    raise ParseError("DEPTH is 0, 1 or infinity")
            else:
                raise ParseError(f"unknown GETMETADATA option {opt}")
        r.sp()
    mailbox = r.mailbox()
    r.sp()
    entries: list[str] = []
    if r.accept(b"("):
        while not r.accept(b")"):
            if entries:
                r.sp()
            entries.append(_entry(r, whole_tree=True))
            if len(entries) > MAX_METADATA_ENTRIES:
                raise ParseError("too many entries")
    else:
        entries.append(_entry(r, whole_tree=True))
    if not entries:
        raise ParseError("no entry named")
    return GetMetadata(mailbox, tuple(entries), maxsize, depth)


def setmetadata(r: Reader) -> Args:
    r.sp()
    mailbox = r.mailbox()
    r.sp()
    r.expect(b"(")
    entries: list[tuple[str, bytes | None]] = []
    while not r.accept(b")"):
        if entries:
            r.sp()
        name = _entry(r)
        r.sp()
        if r.accept(b"NIL"):
            value = None
        elif r.peek() == 0x7E:  # literal8 (RFC 5464 §5: values are binary)
            value = r.literal(allow8=True)[0]
        else:
            value = r.string()
        entries.append((name, value))
        if len(entries) > MAX_METADATA_ENTRIES:
            raise ParseError("too many entries")
    if not entries:
        raise ParseError("no entry to set")
    return SetMetadata(mailbox, tuple(entries))


def notify(r: Reader) -> Args:
    """NOTIFY NONE | NOTIFY SET [(STATUS)] event-group ... (RFC 5465 §8)."""
    r.sp()
    if r.accept(b"NONE"):
        return Notify(None)
    r.expect(b"SET", "SET or NONE")
    status = False
    groups: list[NotifyGroup] = []
    while not r.at_eol():
        r.sp()
        if not groups and not status and r.accept(b"STATUS"):
            status = True
            continue
        r.expect(b"(")
        flt = r.atom("filter").upper()
        if flt not in NOTIFY_FILTERS:
            raise ParseError(f"unknown NOTIFY filter {flt}")
        names: list[str] = []
        if flt in ("SUBTREE", "MAILBOXES"):
            r.sp()
            if r.accept(b"("):
                while not r.accept(b")"):
                    if names:
                        r.sp()
                    names.append(r.mailbox())
            else:
                names.append(r.mailbox())
            if not names:
                raise ParseError("empty mailbox list")
        r.sp()
        if r.accept(b"NONE"):
            events: list[str] = []
        else:
            events = _words(r, NOTIFY_EVENTS, "event")
            if not events:
                raise ParseError("empty event list")
        r.expect(b")")
        groups.append(NotifyGroup(flt, tuple(names), frozenset(events)))
        if len(groups) > 20:
            raise ParseError("too many event groups")
    if not groups:
        raise ParseError("NOTIFY SET needs an event group")
    return Notify(tuple(groups), status)


def compress(r: Reader) -> Args:
    r.sp()
    return Compress(r.atom("mechanism").upper())
