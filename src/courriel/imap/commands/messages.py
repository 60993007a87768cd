"""APPEND (RFC 9051 §6.3.12, RFC 4315 APPENDUID), IDLE (RFC 2177), STORE (§6.4.6),
COPY (§6.4.7, COPYUID) and MOVE (RFC 6851), with their UID forms."""

from __future__ import annotations

import asyncio
import contextlib

from courriel.imap.commands.common import resolve, selected
from courriel.imap.errors import Bad, Bye, No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import Append, Command, CopyMove, Store
from courriel.imap.session import FLUSH_AT, Session
from courriel.store.api import Flag, FlagMode, MessageInfo, NewMessage, NotFound


async def _target(s: Session, name: str) -> int:
    # Known mailboxes are remembered per user (the feed forgets them on any mailbox change):
    # an APPEND costs no lookup. Stale only if another process deleted it: the store refuses.
    feed = s.feed
    found = feed.mailbox_ids.get(name) if feed is not None else None
    if found is None:
        generation = feed.mailboxes_changed if feed is not None else 0
        mb = await s.store.get_mailbox(s.user_id, name)
        if mb is None:
            raise No(f"no mailbox {name}", "TRYCREATE")  # RFC 9051 §6.3.12
        found = (mb.id, mb.noselect)
        if feed is not None and feed.mailboxes_changed == generation and len(feed.mailbox_ids) < 1000:
            feed.mailbox_ids[name] = found
    if found[1]:
        raise No(f"{name} cannot hold messages", "CANNOT")
    return found[0]


async def append(s: Session, cmd: Command) -> str:
    """APPEND, several messages at once with MULTIAPPEND (RFC 3502): all stored or none."""
    args = cmd.args
    assert isinstance(args, Append)
    box = await _target(s, args.mailbox)
    for msg in args.messages:
        if not msg.data:
            raise No("empty message")
        if len(msg.data) > s.settings.max_message_size:
            raise No("message too large", "TOOBIG")
        if b"\0" in msg.data and not msg.binary:
            raise Bad("NUL in message")
    try:
        if len(args.messages) == 1:
            m = args.messages[0]
            results = [await s.store.append(box, m.data, m.flags, m.keywords, m.internal_date)]
        else:
            items = [NewMessage(m.data, m.flags, m.keywords, m.internal_date) for m in args.messages]
            results = await s.store.append_many(box, items)
    except NotFound:
        if s.feed is not None:
            s.feed.mailbox_ids.pop(args.mailbox, None)
        raise No(f"no mailbox {args.mailbox}", "TRYCREATE") from None
    sel = s.selected
    if sel is not None and sel.id == box:
        added = [sel.add(r.uid) for r in results]
        if any(added):
            # RFC 9051 §6.3.12: a message appended to the selected mailbox is announced.
            s.out += b"* %d EXISTS\r\n" % sel.exists
        keywords = frozenset().union(*(m.keywords for m in args.messages))
        if keywords - sel.keywords:
            sel.keywords |= keywords
            s.untagged(b"FLAGS " + encoder.flag_list(Flag(0x1F), sel.keywords))
    uids = encoder.seqset([r.uid for r in results]).decode()
    return f"[APPENDUID {results[0].uidvalidity} {uids}] APPEND completed"


async def idle(s: Session, cmd: Command) -> str:
    s.out += b"+ idling\r\n"
    await s.updates(True)
    await s.flush()
    reader = s.conn.reader
    read = asyncio.ensure_future(s._read_line())
    try:
        async with asyncio.timeout(s.settings.idle_timeout):
            while True:
                waker = asyncio.ensure_future(s.wake.wait())
                done, _ = await asyncio.wait({read, waker}, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    waker.cancel()
                    break
                s.wake.clear()  # before the updates: a change during them wakes the next wait
                await s.updates(True)
                await s.flush()
    except TimeoutError:
        read.cancel()
        raise Bye("autologout: idle for too long") from None
    finally:
        if not read.done():
            read.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await read
    del reader
    line, _tail = read.result()
    if line is None or line.strip().upper() != b"DONE":
        raise Bad("expected DONE")
    return "IDLE terminated"


async def store(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, Store)
    sel = selected(s)
    uids = resolve(sel, args.seqset, cmd.uid)
    if sel.readonly:
        raise No("mailbox is read-only", "READ-ONLY")
    if args.unchangedsince is not None:
        s.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    if not uids:
        return f"{cmd.name} completed"
    result = await s.store.store_flags(sel.id, uids, args.mode, args.flags, args.keywords, args.unchangedsince)
    for modseq in {info.modseq for info in result.changed}:  # one per store_flags call
        sel.note_own(modseq)
    if args.mode is not FlagMode.REMOVE and args.keywords - sel.keywords:
        sel.keywords |= args.keywords
        s.untagged(b"FLAGS " + encoder.flag_list(Flag(0x1F), sel.keywords))
    uid_item = cmd.uid
    if not args.silent:
        modified = set(result.modified)
        changed = {i.uid: i for i in result.changed}
        seq_of, recent, condstore = sel.seq_of, sel.recent, s.condstore
        lists: dict[tuple[int, frozenset[str], bool], bytes] = {}  # flag lists, rendered once each
        for uid, flags, keywords, modseq in await _current(s, uids, changed, modified):
            seq = seq_of(uid)
            if not seq:
                continue
            key = (flags, keywords, uid in recent)
            flag_list = lists.get(key)
            if flag_list is None:
                flag_list = lists[key] = encoder.flag_list(Flag(flags), keywords, key[2])
            if uid_item:
                s.out += b"* %d FETCH (UID %d FLAGS %s" % (seq, uid, flag_list)
            else:
                s.out += b"* %d FETCH (FLAGS %s" % (seq, flag_list)
            s.out += b" MODSEQ (%d))\r\n" % modseq if condstore else b")\r\n"
            if len(s.out) >= FLUSH_AT:
                await s.flush()
    elif s.condstore:
        # RFC 7162 §3.1.3: even after .SILENT, the new MODSEQ of each changed message.
        for info in result.changed:
            seq = sel.seq_of(info.uid)
            if seq:
                s.out += b"* %d FETCH (UID %d MODSEQ (%d))\r\n" % (seq, info.uid, info.modseq)
    if result.modified:
        values = sorted(result.modified) if cmd.uid else sorted(filter(None, map(sel.seq_of, result.modified)))
        return f"[MODIFIED {encoder.seqset(values).decode()}] Conditional {cmd.name} failed"
    return f"{cmd.name} completed"


async def _current(
    s: Session, uids: list[int], changed: dict[int, MessageInfo], skip: set[int]
) -> list[tuple[int, int, frozenset[str], int]]:
    """(uid, flags, keywords, modseq) after a STORE: the changed rows as the store returned
    them, the others from the shared index (current: the feed applied the STORE's changes
    before the store call returned) or, when the session's view differs, from the store."""
    sel = selected(s)
    out: list[tuple[int, int, frozenset[str], int]] = []
    index = sel.index
    rest: list[int] = []
    for uid in uids:
        if uid in skip:
            continue
        info = changed.get(uid)
        if info is not None:
            out.append((uid, int(info.flags), info.keywords, info.modseq))
            continue
        i = index.position(uid) if index.valid else -1
        if i >= 0:
            out.append((uid, index.flags[i], index.keywords.get(uid, frozenset()), index.modseqs[i]))
        else:
            rest.append(uid)
    if rest:
        for info in await s.store.list_messages(sel.id, rest):
            out.append((info.uid, int(info.flags), info.keywords, info.modseq))
        out.sort()
    return out


async def copy(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, CopyMove)
    sel = selected(s)
    uids = resolve(sel, args.seqset, cmd.uid)
    move = cmd.name.endswith("MOVE")
    if move and sel.readonly:
        raise No("mailbox is read-only", "READ-ONLY")
    dest = await _target(s, args.mailbox)
    if not uids:
        return f"{cmd.name} completed"
    if move and dest == sel.id:
        raise No("source and destination are the same mailbox", "CANNOT")
    if move:
        pairs = await s.store.move(sel.id, uids, dest)
    else:
        pairs = await s.store.copy(sel.id, uids, dest)
    if not pairs:
        return f"{cmd.name} completed"
    dst = await s.store.get_mailbox_by_id(dest)
    if dst is None:
        raise No("destination mailbox vanished", "TRYCREATE")
    code = b"COPYUID %d %s %s" % (
        dst.uidvalidity, encoder.seqset([p[0] for p in pairs]), encoder.seqset([p[1] for p in pairs])
    )
    if move:
        # RFC 6851 §4.3: COPYUID in an untagged OK, then the EXPUNGEs, then the tagged OK.
        s.untagged(b"OK [" + code + b"] moved")
        s.expunged(sel, [p[0] for p in pairs])
        return f"{cmd.name} completed"
    if dest == sel.id:
        added = [sel.add(p[1]) for p in pairs]
        if any(added):
            s.out += b"* %d EXISTS\r\n" % sel.exists
    return f"[{code.decode()}] {cmd.name} completed"
