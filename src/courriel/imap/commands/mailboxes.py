"""Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
NAMESPACE, STATUS (RFC 9051 §6.3), and CHECK, CLOSE, UNSELECT, EXPUNGE, UID EXPUNGE (§6.4)."""

from __future__ import annotations

from bisect import bisect_left

from courriel.imap.errors import Bad, No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import (
    Command,
    Create,
    MailboxArg,
    QResync,
    Rename,
    Select,
    Status,
    UidExpunge,
)
from courriel.imap.selected import Selected
from courriel.imap.session import Session
from courriel.store.api import (
    DELIMITER,
    INBOX,
    SPECIAL_USE,
    Flag,
    HasFlag,
    Mailbox,
    NotFound,
    UidIn,
)

_SPECIAL_USES = {v.lower(): v for v in SPECIAL_USE.values()}
MAX_UID = 2**32 - 1


async def mailbox_or_fail(s: Session, name: str) -> Mailbox:
    mb = await s.store.get_mailbox(s.user_id, name)
    if mb is None:
        raise No(f"no mailbox {name}", "NONEXISTENT")
    return mb


def mailbox_id(mb: Mailbox) -> bytes:
    """RFC 8474 MAILBOXID: stable across renames, never reused (UIDVALIDITY is server-wide)."""
    return b"F%d-%d" % (mb.uidvalidity, mb.id)


async def _select(s: Session, cmd: Command, readonly: bool) -> str:
    args = cmd.args
    assert isinstance(args, MailboxArg | Select)
    qresync = args.qresync if isinstance(args, Select) else None
    if qresync is not None and not s.qresync:
        raise Bad("QRESYNC must be enabled first (RFC 7162 §3.2.5)")
    if s.selected is not None:
        s.close_selected()
        s.untagged("OK [CLOSED] previous mailbox closed")  # RFC 9051 §7.1
    if isinstance(args, Select) and args.condstore:
        s.enable_condstore()
    mb = await mailbox_or_fail(s, args.mailbox)
    if mb.noselect:
        raise No(f"{mb.name} cannot be selected", "CANNOT")
    assert s.feed is not None
    index = await s.feeds.index(s.feed, mb)
    # From here to watch() nothing awaits: the session's view is the index at this instant,
    # and every later change reaches the session's queue.
    sel = Selected(mb, readonly, index)
    s.watch(sel)
    highestmodseq = index.highestmodseq
    first_unseen = index.first_unseen() + 1
    flags = encoder.flag_list(Flag(0x1F), sel.keywords)
    s.untagged(b"FLAGS " + flags)
    if readonly:
        s.untagged("OK [PERMANENTFLAGS ()] read-only mailbox")
    else:
        s.untagged(b"OK [PERMANENTFLAGS " + flags[:-1] + b" \\*)] flags permitted")
    s.untagged(b"%d EXISTS" % sel.exists)
    if not s.rev2:
        uids = sel.uids
        if uids:
            first = await s.store.claim_recent(mb.id, 0 if readonly else uids[-1] + 1)
            sel.add_recent(uids[bisect_left(uids, first) :])
        s.untagged(b"%d RECENT" % len(sel.recent))
        if first_unseen:
            s.untagged(b"OK [UNSEEN %d] first unseen message" % first_unseen)
    s.untagged(b"OK [UIDVALIDITY %d] UIDs valid" % mb.uidvalidity)
    s.untagged(b"OK [UIDNEXT %d] predicted next UID" % sel.uidnext)
    if s.condstore:
        s.untagged(b"OK [HIGHESTMODSEQ %d] Highest" % highestmodseq)
    s.untagged(b"OK [MAILBOXID (" + mailbox_id(mb) + b")] Ok")  # RFC 8474 §4.2
    if s.rev2:  # RFC 9051 §6.3.2: the mailbox name as the server spells it
        s.untagged(b'LIST () "/" ' + s.mailbox_name(mb.name))
    if qresync is not None and qresync.uidvalidity == mb.uidvalidity:
        await _resync(s, sel, qresync)
    mode = "READ-ONLY" if readonly else "READ-WRITE"
    return f"[{mode}] {cmd.name} completed"


async def _resync(s: Session, sel: Selected, q: QResync) -> None:
    """RFC 7162 §3.2.5.2: what changed since the client's MODSEQ: VANISHED (EARLIER) for the
    UIDs expunged since (tombstones are kept, so the list is exact), then FETCH responses."""
    changed, gone = await s.store.changed_since(sel.id, q.modseq)
    if q.known_uids is not None:
        ranges = q.known_uids.resolve(max(sel.uidnext - 1, 1))
        gone = [u for u in gone if any(lo <= u <= hi for lo, hi in ranges)]
    # A UID still in the session's view is announced by its pending expunge later.
    gone = [u for u in gone if not sel.seq_of(u)]
    if gone:
        s.out += b"* VANISHED (EARLIER) " + encoder.seqset(gone) + b"\r\n"
    for info in changed:
        seq = sel.seq_of(info.uid)
        if seq:
            flags = encoder.flag_list(info.flags, info.keywords, info.uid in sel.recent)
            s.out += b"* %d FETCH (UID %d FLAGS %s MODSEQ (%d))\r\n" % (seq, info.uid, flags, info.modseq)
            await s.maybe_flush()


async def select(s: Session, cmd: Command) -> str:
    return await _select(s, cmd, readonly=False)


async def examine(s: Session, cmd: Command) -> str:
    return await _select(s, cmd, readonly=True)


async def create(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, Create)
    name = cmd.args.mailbox.rstrip(DELIMITER)  # RFC 9051 §6.3.4: "foo/" creates "foo"
    if not name:
        raise No("invalid mailbox name", "CANNOT")
    if name.upper() == INBOX:
        raise No("INBOX always exists", "ALREADYEXISTS")
    special = None
    if cmd.args.special_use:
        if len(cmd.args.special_use) > 1:
            raise No("only one special-use attribute per mailbox", "USEATTR")
        special = _SPECIAL_USES.get(cmd.args.special_use[0].lower())
        if special is None:
            raise No(f"unsupported special use {cmd.args.special_use[0]}", "USEATTR")  # RFC 6154 §3
    mb = await s.store.create_mailbox(s.user_id, name, special)
    return f"[MAILBOXID ({mailbox_id(mb).decode()})] CREATE completed"  # RFC 8474 §4.1


async def delete(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, MailboxArg)
    name = cmd.args.mailbox
    if name.upper() == INBOX:
        raise No("INBOX cannot be deleted", "CANNOT")
    mb = await mailbox_or_fail(s, name)
    if mb.noselect and not any(m.name.startswith(mb.name + DELIMITER) for m in await s.store.list_mailboxes(s.user_id)):
        raise No(f"no mailbox {name}", "NONEXISTENT")
    if mb.noselect:  # RFC 9051 §6.3.5: a \Noselect name with inferiors cannot be deleted
        raise No(f"{name} has inferior hierarchical names", "HASCHILDREN")
    if s.selected is not None and s.selected.id == mb.id:
        s.close_selected()
        s.untagged("OK [CLOSED] mailbox deleted")
    await s.store.delete_mailbox(s.user_id, mb.name)
    return "DELETE completed"


async def rename(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, Rename)
    old, new = cmd.args.old, cmd.args.new.rstrip(DELIMITER)
    await mailbox_or_fail(s, old)
    if new.upper() == INBOX or await s.store.get_mailbox(s.user_id, new) is not None:
        raise No(f"{new} already exists", "ALREADYEXISTS")
    await s.store.rename_mailbox(s.user_id, old, new)
    return "RENAME completed"


async def subscribe(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, MailboxArg)
    await s.store.subscribe(s.user_id, cmd.args.mailbox)
    return "SUBSCRIBE completed"


async def unsubscribe(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, MailboxArg)
    await s.store.unsubscribe(s.user_id, cmd.args.mailbox)
    return "UNSUBSCRIBE completed"


async def namespace(s: Session, cmd: Command) -> str:
    s.untagged('NAMESPACE (("" "/")) NIL NIL')  # RFC 2342: one personal namespace
    return "NAMESPACE completed"


async def status_line(s: Session, mb: Mailbox, items: tuple[str, ...]) -> bytes:
    """The STATUS response for ``mb`` (also used by LIST-STATUS)."""
    values: list[bytes] = []
    sel = s.selected
    for item in items:
        if item == "MESSAGES":
            value = mb.messages
        elif item == "UIDNEXT":
            value = mb.uidnext
        elif item == "UIDVALIDITY":
            value = mb.uidvalidity
        elif item == "UNSEEN":
            value = mb.unseen
        elif item == "DELETED":
            value = mb.deleted
        elif item == "SIZE":
            value = mb.size
        elif item == "HIGHESTMODSEQ":  # RFC 7162 §3.1.8 (a CONDSTORE-enabling command)
            s.enable_condstore()
            value = mb.highestmodseq
        elif item == "MAILBOXID":  # RFC 8474 §4.3
            values.append(b"MAILBOXID (" + mailbox_id(mb) + b")")
            continue
        elif item == "APPENDLIMIT":  # RFC 7889 §4
            value = s.settings.max_message_size
        elif item == "DELETED-STORAGE":  # RFC 9208 §4.2.1
            uids = await s.store.search(mb.id, HasFlag(Flag.DELETED))
            value = sum(i.size for i in await s.store.list_messages(mb.id, uids)) if uids else 0
        else:  # RECENT (IMAP4rev1): messages nobody has claimed yet, or ours when selected
            if sel is not None and sel.id == mb.id:
                value = len(sel.recent)
            else:
                first = await s.store.claim_recent(mb.id, 0)
                value = len(await s.store.search(mb.id, UidIn(((first, MAX_UID),)))) if first < mb.uidnext else 0
        values.append(item.encode() + b" %d" % value)
    return b"STATUS " + s.mailbox_name(mb.name) + b" (" + b" ".join(values) + b")"


async def status(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, Status)
    mb = await mailbox_or_fail(s, cmd.args.mailbox)
    if mb.noselect:
        raise No(f"{mb.name} is not selectable", "NONEXISTENT")
    s.untagged(await status_line(s, mb, cmd.args.items))
    return "STATUS completed"


async def check(s: Session, cmd: Command) -> str:
    return "CHECK completed"  # every change is durable when it returns


async def close(s: Session, cmd: Command) -> str:
    sel = s.selected
    assert sel is not None
    if not sel.readonly:
        try:
            await s.store.expunge(sel.id)  # RFC 9051 §6.4.1: silently, no EXPUNGE responses
        except NotFound:
            pass
    s.close_selected()
    return "CLOSE completed"


async def unselect(s: Session, cmd: Command) -> str:
    s.close_selected()
    return "UNSELECT completed"


async def expunge(s: Session, cmd: Command) -> str:
    sel = s.selected
    assert sel is not None
    if sel.readonly:
        raise No("mailbox is read-only", "READ-ONLY")
    uids = None
    if isinstance(cmd.args, UidExpunge):  # RFC 4315 §2.1 UID EXPUNGE
        uids = cmd.args.seqset.select(sel.saved) if cmd.args.seqset.saved else cmd.args.seqset.select(sel.uids)
        if not uids:
            return f"{cmd.name} completed"
    removed = await s.store.expunge(sel.id, uids)
    s.expunged(sel, removed)
    if s.condstore:  # RFC 7162 §3.2.10 (and §3.1.12 for CONDSTORE alone)
        return f"[HIGHESTMODSEQ {sel.index.highestmodseq}] {cmd.name} completed"
    return f"{cmd.name} completed"
