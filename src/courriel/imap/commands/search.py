"""SEARCH and UID SEARCH (RFC 9051 §6.4.4), with ESEARCH return options (RFC 4731) and the
saved result "$" (RFC 5182 SEARCHRES)."""

from __future__ import annotations

from courriel.imap.commands.common import resolve, selected
from courriel.imap.errors import No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.types import Command, RecentKey, Search, SeqKey
from courriel.imap.selected import Selected
from courriel.imap.session import Session
from courriel.store.api import And, Not, Or, SearchKey, UidIn

CHARSETS = frozenset({"US-ASCII", "UTF-8"})


def _ranges(uids: list[int]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for uid in uids:
        if out and out[-1][1] == uid - 1:
            out[-1] = (out[-1][0], uid)
        else:
            out.append((uid, uid))
    return tuple(out)


def to_store_key(sel: Selected, key: SearchKey) -> SearchKey:
    """Resolve the session-relative keys (sequence sets, "$", \\Recent) into UID ranges."""
    if isinstance(key, SeqKey):
        return UidIn(_ranges(resolve(sel, key.seqset, key.uid)))
    if isinstance(key, RecentKey):
        return UidIn(_ranges(sorted(sel.recent)))
    if isinstance(key, And):
        return And(tuple(to_store_key(sel, k) for k in key.keys))
    if isinstance(key, Or):
        return Or(tuple(to_store_key(sel, k) for k in key.keys))
    if isinstance(key, Not):
        return Not(to_store_key(sel, key.key))
    return key


async def search(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, Search)
    sel = selected(s)
    if args.charset is not None and args.charset not in CHARSETS:
        raise No(f"unsupported charset {args.charset}", "BADCHARSET (US-ASCII UTF-8)")
    key = to_store_key(sel, args.key)
    found = await s.store.search(sel.id, key)
    # Only messages this session knows (a message added since is announced later).
    uids = [u for u in found if sel.seq_of(u)] if (found and found[-1] > sel.last_uid) or sel.gone else found
    values = uids if cmd.uid else [sel.seq_of(u) for u in uids]
    returns = args.returns
    if returns is None and not s.rev2:
        s.out += b"* SEARCH" + b"".join(b" %d" % v for v in values) + b"\r\n"
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
    s.out += out + b"\r\n"
    return f"{cmd.name} completed"
