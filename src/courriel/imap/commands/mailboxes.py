"""Mailbox commands: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
NAMESPACE, STATUS (RFC 9051 §6.3), and CHECK, CLOSE, UNSELECT, EXPUNGE, UID EXPUNGE (§6.4)."""

from __future__ import annotations

from bisect import bisect_left

from courriel.imap.errors import Bad, No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import Command, Create, MailboxArg, Rename, Status, UidExpunge
from courriel.imap.selected import Selected
from courriel.imap.session import Session
from courriel.store.api import DELIMITER, INBOX, SPECIAL_USE, Flag, Mailbox, NotFound, UidIn

_SPECIAL_USES = {v.lower(): v for v in SPECIAL_USE.values()}
MAX_UID = 2**32 - 1


async def mailbox_or_fail(s: Session, name: str) -> Mailbox:
    mb = await s.store.get_mailbox(s.user_id, name)
    if mb is None:
        raise No(f"no mailbox {name}", "NONEXISTENT")
    return mb


async def _select(s: Session, cmd: Command, readonly: bool) -> str:
    assert isinstance(cmd.args, MailboxArg)
    if s.selected is not None:
        s.close_selected()
        s.untagged("OK [CLOSED] previous mailbox closed")  # RFC 9051 §7.1
    mb = await mailbox_or_fail(s, cmd.args.mailbox)
    if mb.noselect:
        raise No(f"{mb.name} cannot be selected", "CANNOT")
    # Subscribe first, list second: a change committed in between is in both and the
    # session's bookkeeping ignores the duplicate.
    sel = Selected(mb, readonly, ())
    s.watch(sel)
    infos = await s.store.list_messages(mb.id)
    sel.uids.extend(i.uid for i in infos)
    sel.uidnext = max(sel.uidnext, sel.last_uid + 1)
    first_unseen = 0
    keywords: set[str] = set()
    for n, info in enumerate(infos, 1):
        if info.keywords:
            keywords |= info.keywords
        if not first_unseen and not info.flags & Flag.SEEN:
            first_unseen = n
    sel.keywords = keywords
    flags = encoder.flag_list(Flag(0x1F), keywords)
    s.untagged(b"FLAGS " + flags)
    if readonly:
        s.untagged("OK [PERMANENTFLAGS ()] read-only mailbox")
    else:
        s.untagged(b"OK [PERMANENTFLAGS " + flags[:-1] + b" \\*)] flags permitted")
    s.untagged(b"%d EXISTS" % sel.exists)
    if not s.rev2:
        if sel.uids:
            first = await s.store.claim_recent(mb.id, 0 if readonly else sel.last_uid + 1)
            sel.recent.update(sel.uids[bisect_left(sel.uids, first) :])
        s.untagged(b"%d RECENT" % len(sel.recent))
        if first_unseen:
            s.untagged(b"OK [UNSEEN %d] first unseen message" % first_unseen)
    s.untagged(b"OK [UIDVALIDITY %d] UIDs valid" % mb.uidvalidity)
    s.untagged(b"OK [UIDNEXT %d] predicted next UID" % sel.uidnext)
    if s.rev2:  # RFC 9051 §6.3.2: the mailbox name as the server spells it
        s.untagged(b'LIST () "/" ' + s.mailbox_name(mb.name))
    mode = "READ-ONLY" if readonly else "READ-WRITE"
    return f"[{mode}] {cmd.name} completed"


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
    await s.store.create_mailbox(s.user_id, name, special)
    return "CREATE completed"


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
        elif item == "HIGHESTMODSEQ":
            raise Bad("HIGHESTMODSEQ needs CONDSTORE, which is not offered")
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
    for seq in sel.remove(removed):
        s.out += b"* %d EXPUNGE\r\n" % seq
    return f"{cmd.name} completed"
