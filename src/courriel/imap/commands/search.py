"""SEARCH and UID SEARCH (RFC 9051 §6.4.4), with ESEARCH return options (RFC 4731) and the
saved result "$" (RFC 5182 SEARCHRES)."""

from __future__ import annotations

from itertools import compress

from courriel.imap.commands.common import resolve, selected
from courriel.imap.errors import No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import Command, ObjectIdKey, RecentKey, Search, SeqKey
from courriel.imap.selected import Selected
from courriel.imap.session import Session
from courriel.store.api import And, ContentIs, HasFlag, InThread, Not, Or, SearchKey, UidIn

CHARSETS = frozenset({"US-ASCII", "UTF-8"})


def _ranges(uids: list[int]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for uid in uids:
        if out and out[-1][1] == uid - 1:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return tuple(out)


async def to_store_key(s: Session, sel: Selected, key: SearchKey) -> SearchKey:
    """Resolve the session-relative keys (sequence sets, "$", \\Recent, object ids) into
    store keys."""
    if isinstance(key, SeqKey):
        return UidIn(_ranges(resolve(sel, key.seqset, key.uid)))
    if isinstance(key, RecentKey):
        return UidIn(_ranges(sorted(sel.recent)))
    if isinstance(key, ObjectIdKey):
        return _object_key(key)
    if isinstance(key, And):
        return And(tuple([await to_store_key(s, sel, k) for k in key.keys]))
    if isinstance(key, Or):
        return Or(tuple([await to_store_key(s, sel, k) for k in key.keys]))
    if isinstance(key, Not):
        return Not(await to_store_key(s, sel, key.key))
    return key


def _object_key(key: ObjectIdKey) -> SearchKey:
    """RFC 8474 §6: EMAILID and THREADID as store keys (an indexed lookup, not a scan)."""
    if key.kind == "EMAILID":
        # fetch.py's EMAILID is "M" + the content id; anything else matches nothing.
        value = key.value
        if len(value) > 1 and value[0] == "M" and value[1:].isdigit() and len(value) < 20:
            return ContentIs(int(value[1:]))
        return UidIn(())
    return InThread(key.value)


def flag_search(sel: Selected, key: SearchKey) -> list[int] | None:
    """SEARCH on one system flag (UNSEEN, DELETED, FLAGGED...), answered from the shared index
    while the session's view is the index's; None for anything else (the store answers)."""
    negate = isinstance(key, Not)
    flag = key.key if isinstance(key, Not) else key
    if not isinstance(flag, HasFlag) or not sel.aligned:
        return None
    index = sel.index
    bit = int(flag.flag)
    table = bytes(1 if bool(i & bit) != negate else 0 for i in range(256))
    return list(compress(index.uids, index.flags.tobytes().translate(table)))


def check_charset(charset: str | None) -> None:
    if charset is not None and charset not in CHARSETS:
        raise No(f"unsupported charset {charset}", "BADCHARSET (US-ASCII UTF-8)")  # RFC 9051 §6.4.4


def known(sel: Selected, found: list[int]) -> list[int]:
    """Only messages this session knows (a message added since is announced later)."""
    if (found and found[-1] > sel.last_uid) or sel.gone:
        return [u for u in found if sel.seq_of(u)]
    return found


async def highest_modseq(s: Session, sel: Selected, uids: list[int]) -> int:
    """RFC 7162 §3.1.5: the highest MODSEQ among the messages found."""
    if sel.aligned:
        index = sel.index
        return max((index.modseqs[i] for i in map(index.position, uids) if i >= 0), default=0)
    return max((i.modseq for i in await s.store.list_messages(sel.id, uids)), default=0)


def esearch(cmd: Command, values: list[int], returns: frozenset[str] | set[str], modseq: int) -> bytes:
    """The ESEARCH response (RFC 4731 §3.1): MIN and MAX are the first and last of
    ``values`` (in sort order for ESORT, RFC 5267 §3.2), ALL keeps their order."""
    out = b"* ESEARCH (TAG " + encoder.string(cmd.tag) + b")"
    if cmd.uid:
        out += b" UID"
    if values and "MIN" in returns:
        out += b" MIN %d" % values[0]
    if values and "MAX" in returns:
        out += b" MAX %d" % values[-1]
    if "COUNT" in returns:
        out += b" COUNT %d" % len(values)
    if values and "ALL" in returns:
        out += b" ALL " + encoder.seqset(values)
    if modseq:
        out += b" MODSEQ %d" % modseq
    return out + b"\r\n"


async def search(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, Search)
    sel = selected(s)
    check_charset(args.charset)
    if args.modseq:
        s.enable_condstore()
    key = await to_store_key(s, sel, args.key)
    found = flag_search(sel, key)
    uids = known(sel, found if found is not None else await s.store.search(sel.id, key))
    values = uids if cmd.uid else [sel.seq_of(u) for u in uids]
    modseq = await highest_modseq(s, sel, uids) if args.modseq and uids else 0
    returns = args.returns
    if returns is None and not s.rev2:
        tail = b" (MODSEQ %d)" % modseq if modseq else b""
        s.out += b"* SEARCH" + (" " + " ".join(map(str, values))).encode() * bool(values) + tail + b"\r\n"
        return f"{cmd.name} completed"
    if returns is None or not returns:
        returns = frozenset({"ALL"})  # RFC 4731 §3.1: RETURN () means ALL
    if "SAVE" in returns:
        only_minmax = not returns & {"ALL", "COUNT"} and returns & {"MIN", "MAX"}
        if only_minmax and uids:  # RFC 5182 §2.4
            kept = []
            if "MIN" in returns:
                kept.append(uids[0])
            if "MAX" in returns and uids[-1] not in kept:
                kept.append(uids[-1])
            sel.saved = kept
        else:
            sel.saved = list(uids)
        if returns == {"SAVE"}:
            return f"{cmd.name} completed"
    s.out += esearch(cmd, values, returns, modseq)
    return f"{cmd.name} completed"
