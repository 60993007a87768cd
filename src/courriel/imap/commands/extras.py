"""QUOTA (RFC 9208), METADATA (RFC 5464), COMPRESS=DEFLATE (RFC 4978) and NOTIFY (RFC 5465)."""

from __future__ import annotations

from courriel.imap.commands.mailboxes import mailbox_or_fail
from courriel.imap.errors import Bad, No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import (
    Command,
    Compress,
    GetMetadata,
    MailboxArg,
    Notify,
    QuotaRoot,
    SetMetadata,
)
from courriel.imap.session import Session
from courriel.store.api import QuotaExceeded

#: RFC 5464 §4.3 limits, announced in METADATA response codes.
MAX_VALUE = 16 * 1024
MAX_ENTRIES = 100


# --- QUOTA (RFC 9208): one quota root "" per user, from the user's limits and usage ----------
async def _quota_line(s: Session) -> bytes | None:
    user = await s.store.get_user_by_id(s.user_id)
    if user is None or (not user.quota_bytes and not user.quota_messages):
        return None
    usage = await s.store.usage(s.user_id)
    items = []
    if user.quota_bytes:  # STORAGE is in units of 1024 octets (RFC 9208 §5.1)
        items.append(b"STORAGE %d %d" % ((usage.bytes + 1023) // 1024, user.quota_bytes // 1024))
    if user.quota_messages:
        items.append(b"MESSAGE %d %d" % (usage.messages, user.quota_messages))
    return b'QUOTA "" (' + b" ".join(items) + b")"


async def getquota(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, QuotaRoot)
    if cmd.args.root != "":
        raise No(f"no quota root {cmd.args.root}", "NONEXISTENT")
    line = await _quota_line(s)
    if line is None:
        raise No("no quota root", "NONEXISTENT")
    s.untagged(line)
    return "GETQUOTA completed"


async def getquotaroot(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, MailboxArg)
    mb = await mailbox_or_fail(s, cmd.args.mailbox)
    line = await _quota_line(s)
    name = s.mailbox_name(mb.name)
    if line is None:
        s.untagged(b"QUOTAROOT " + name)  # no quota applies (RFC 9208 §4.1.3)
    else:
        s.untagged(b'QUOTAROOT ' + name + b' ""')
        s.untagged(line)
    return "GETQUOTAROOT completed"


async def setquota(s: Session, cmd: Command) -> str:
    raise No("quotas are set by the administrator", "NOPERM")  # RFC 9208 §4.1.1


# --- METADATA (RFC 5464) -----------------------------------------------------------------------
async def _mailbox_id(s: Session, name: str) -> int | None:
    if name == "":
        return None  # server entries (METADATA-SERVER)
    mb = await mailbox_or_fail(s, name)
    return mb.id


async def getmetadata(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, GetMetadata)
    box = await _mailbox_id(s, args.mailbox)
    stored = await s.store.get_metadata(s.user_id, box)
    found: list[tuple[str, bytes]] = []
    for entry in args.entries:
        if entry in stored:
            found.append((entry, stored[entry]))
        if args.depth != "0":  # RFC 5464 §4.2.2: descendants, one level or all
            prefix = entry + "/"
            for name, value in stored.items():
                if name.startswith(prefix) and (args.depth == "infinity" or "/" not in name[len(prefix) :]):
                    found.append((name, value))
    longest = 0
    if args.maxsize is not None:
        longest = max((len(v) for _n, v in found if len(v) > args.maxsize), default=0)
        found = [(n, v) for n, v in found if len(v) <= args.maxsize]
    if found:
        items = b" ".join(encoder.astring(n) + b" " + _value(v) for n, v in found)
        s.untagged(b"METADATA " + (s.mailbox_name(args.mailbox) if args.mailbox else b'""') + b" (" + items + b")")
    if longest:
        return f"[METADATA LONGENTRIES {longest}] GETMETADATA completed"
    return "GETMETADATA completed"


def _value(value: bytes) -> bytes:
    if b"\0" in value:
        return b"~{%d}\r\n" % len(value) + value
    return encoder.string(value)


async def setmetadata(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, SetMetadata)
    box = await _mailbox_id(s, args.mailbox)
    for name, value in args.entries:
        if value is not None and len(value) > MAX_VALUE:
            raise No(f"value of {name} too large", f"METADATA MAXSIZE {MAX_VALUE}")
    try:
        await s.store.set_metadata(s.user_id, box, dict(args.entries), MAX_ENTRIES)
    except QuotaExceeded:
        raise No("too many annotations", "METADATA TOOMANY") from None
    return "SETMETADATA completed"


# --- COMPRESS=DEFLATE (RFC 4978) ---------------------------------------------------------------
async def compress(s: Session, cmd: Command) -> str:
    assert isinstance(cmd.args, Compress)
    if cmd.args.mechanism != "DEFLATE":
        raise Bad(f"unknown compression mechanism {cmd.args.mechanism}")
    if s.compressed:
        raise No("compression is already active", "COMPRESSIONACTIVE")
    from courriel.imap.compress import start_deflate

    s.out += f"{cmd.tag} OK DEFLATE active\r\n".encode()
    await s.flush()
    start_deflate(s.conn)
    s.compressed = True
    return ""  # the tagged reply went out uncompressed, before the switch


# --- NOTIFY (RFC 5465) --------------------------------------------------------------------------
async def notify(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, Notify)
    from courriel.imap.notify import NotifyState, unsupported

    if args.groups is None:
        s.notify = None
        return "NOTIFY completed"
    bad = unsupported(args.groups)
    if bad:
        raise No(
            f"event {bad} is not supported",
            "BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange"
            " MailboxMetadataChange ServerMetadataChange)",
        )
    state = await NotifyState.create(s, args.groups)
    s.notify = state
    if args.status:
        await state.initial_status(s)
    return "NOTIFY completed"
