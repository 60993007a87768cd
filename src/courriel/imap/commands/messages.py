"""APPEND (RFC 9051 §6.3.12, RFC 4315 APPENDUID), IDLE (RFC 2177), STORE (§6.4.6),
COPY (§6.4.7, COPYUID) and MOVE (RFC 6851), with their UID forms."""

from __future__ import annotations

import asyncio
import contextlib

from courriel.imap.commands.common import resolve, selected
from courriel.imap.errors import Bad, Bye, No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import Append, Command, CopyMove, Store
from courriel.imap.session import Session
from courriel.store.api import Flag, FlagMode, MessageInfo


async def _target(s: Session, name: str) -> int:
    mb = await s.store.get_mailbox(s.user_id, name)
    if mb is None:
        raise No(f"no mailbox {name}", "TRYCREATE")  # RFC 9051 §6.3.12
    if mb.noselect:
        raise No(f"{name} cannot hold messages", "CANNOT")
    return mb.id


async def append(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, Append)
    box = await _target(s, args.mailbox)
    if not args.data:
        raise No("empty message")
    if len(args.data) > s.settings.max_message_size:
        raise No("message too large", "TOOBIG")
    if b"\0" in args.data and not args.binary:
        raise Bad("NUL in message")
    result = await s.store.append(box, args.data, args.flags, args.keywords, args.internal_date)
    sel = s.selected
    if sel is not None and sel.id == box and sel.add(result.uid):
        # RFC 9051 §6.3.12: a message appended to the selected mailbox is announced.
        s.out += b"* %d EXISTS\r\n" % sel.exists
        if args.keywords - sel.keywords:
            sel.keywords |= args.keywords
            s.untagged(b"FLAGS " + encoder.flag_list(Flag(0x1F), sel.keywords))
    return f"[APPENDUID {result.uidvalidity} {result.uid}] APPEND completed"


async def idle(s: Session, cmd: Command) -> str:
    s.out += b"+ idling\r\n"
    await s.updates(True)
    await s.flush()
    reader = s.conn.reader
    read = asyncio.ensure_future(s._read_line())
    try:
        async with asyncio.timeout(s.settings.idle_timeout):
            while True:
                s.wake.clear()
                waker = asyncio.ensure_future(s.wake.wait())
                done, _ = await asyncio.wait({read, waker}, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    waker.cancel()
                    break
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
    if not uids:
        return f"{cmd.name} completed"
    result = await s.store.store_flags(sel.id, uids, args.mode, args.flags, args.keywords)
    for info in result.changed:
        sel.note_own(info.modseq)
    if args.mode is not FlagMode.REMOVE and args.keywords - sel.keywords:
        sel.keywords |= args.keywords
        s.untagged(b"FLAGS " + encoder.flag_list(Flag(0x1F), sel.keywords))
    if not args.silent:
        changed = {i.uid: i for i in result.changed}
        rest = [u for u in uids if u not in changed]
        infos: list[MessageInfo] = list(changed.values())
        if rest:
            infos += await s.store.list_messages(sel.id, rest)
        for info in sorted(infos, key=lambda i: i.uid):
            seq = sel.seq_of(info.uid)
            if not seq:
                continue
            flags = encoder.flag_list(info.flags, info.keywords, info.uid in sel.recent)
            if cmd.uid:
                s.out += b"* %d FETCH (UID %d FLAGS %s)\r\n" % (seq, info.uid, flags)
            else:
                s.out += b"* %d FETCH (FLAGS %s)\r\n" % (seq, flags)
            await s.maybe_flush()
    return f"{cmd.name} completed"


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
        for seq in sel.remove([p[0] for p in pairs]):
            s.out += b"* %d EXPUNGE\r\n" % seq
        return f"{cmd.name} completed"
    if dest == sel.id:
        added = [sel.add(p[1]) for p in pairs]
        if any(added):
            s.out += b"* %d EXISTS\r\n" % sel.exists
    return f"[{code.decode()}] {cmd.name} completed"
