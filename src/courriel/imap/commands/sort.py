"""SORT and UID SORT (RFC 5256 §3) with ESORT return options (RFC 5267 §3) and
SORT=DISPLAY (RFC 5957); THREAD and UID THREAD (RFC 5256 §3)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress

from courriel.imap.commands.common import selected
from courriel.imap.commands.search import (
    check_charset,
    esearch,
    highest_modseq,
    known,
    to_store_key,
)
from courriel.imap.protocol.types import Command, Sort, Thread
from courriel.imap.selected import Selected
from courriel.imap.session import Session
from courriel.imap.sortcache import Criteria, SortOrder, ordered
from courriel.imap.thread import ALGORITHMS, Msg, render
from courriel.mime import base_subject
from courriel.store.api import All, SearchKey, SortKey

BATCH = 1000


async def sort(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, Sort)
    sel = selected(s)
    check_charset(args.charset)
    if args.modseq:
        s.enable_condstore()
    key = await to_store_key(s, sel, args.key)
    criteria = tuple((name.lower(), bool(reverse)) for name, reverse in args.criteria)
    order = await _whole_mailbox(s, sel, key, criteria)
    returns = args.returns
    if order is not None and order.synced is sel.uids and returns is None and not args.modseq:
        # The session sees the index's UIDs: the order's rendered text is the answer.
        s.out += b"* SORT" + order.text(cmd.uid) + b"\r\n"
        return f"{cmd.name} completed"
    if order is not None:
        uids = list(order.uids) if order.synced is sel.uids else _in_view(sel, order.uids)
    else:
        keys = [SortKey(name, reverse) for name, reverse in criteria]
        uids = _in_view(sel, await s.store.sort(sel.id, keys, key))
    if not cmd.uid:
        values = order.numbers() if order is not None and order.synced is sel.uids else [sel.seq_of(u) for u in uids]
    else:
        values = uids
    modseq = await highest_modseq(s, sel, uids) if args.modseq and uids else 0
    if returns is None:
        tail = b" (MODSEQ %d)" % modseq if modseq else b""
        s.out += b"* SORT" + (" " + " ".join(map(str, values))).encode() * bool(values) + tail + b"\r\n"
        return f"{cmd.name} completed"
    if not returns:
        returns = frozenset({"ALL"})
    if "SAVE" in returns:
        sel.saved = sorted(uids)  # RFC 5267 §3.1 / RFC 5182: "$" is a set, not an order
        if returns == {"SAVE"}:
            return f"{cmd.name} completed"
    # RFC 5267 §3.2: MIN and MAX are the first and last in sort order; ALL keeps the order.
    s.out += esearch(cmd, values, returns, modseq)
    return f"{cmd.name} completed"


async def _whole_mailbox(s: Session, sel: Selected, key: SearchKey, criteria: Criteria) -> SortOrder | None:
    """The shared index's cached order when the whole mailbox is sorted (SEARCH ALL)."""
    if not isinstance(key, All) or not sel.index.valid:
        return None
    return await ordered(s.store, sel.index, criteria)


def _in_view(sel: Selected, uids: Sequence[int]) -> list[int]:
    """The UIDs, in their order, that this session knows: as :func:`known` (a message
    added since is announced later), for UIDs in any order."""
    if not uids or (max(uids) <= sel.last_uid and not sel.gone):
        return list(uids)
    if len(uids) > 64:
        view = set(sel.uids)
        return list(compress(uids, map(view.__contains__, uids)))
    return [u for u in uids if sel.seq_of(u)]


async def thread(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, Thread)
    sel = selected(s)
    check_charset(args.charset)
    key = await to_store_key(s, sel, args.key)
    uids = known(sel, await s.store.search(sel.id, key))
    msgs: list[Msg] = []
    for i in range(0, len(uids), BATCH):
        for rec in await s.store.get_records(sel.id, uids[i : i + BATCH]):
            subject = rec.subject or ""
            base = base_subject(subject).casefold()
            date = rec.sent_date or rec.info.internal_date
            refs = tuple(rec.references.split()) if rec.references else ()
            if not refs and rec.in_reply_to:
                refs = (rec.in_reply_to.split()[0],)
            number = rec.info.uid if cmd.uid else sel.seq_of(rec.info.uid)
            msgs.append(Msg(number, rec.info.uid, date.timestamp(), base,
                            _is_reply(subject, base), rec.message_id, refs))  # fmt: skip
    roots = ALGORITHMS[args.algorithm](msgs)
    s.out += b"* THREAD " + render(roots) + b"\r\n"
    return f"{cmd.name} completed"


def _is_reply(subject: str, base: str) -> bool:
    """RFC 5256 §2.2 (5): the base subject was extracted from a reply or forward (a "Re:",
    "Fwd:", "[fwd: ...]" or "(fwd)" was removed)."""
    head = " ".join(subject.split()).casefold()
    return head != base and any(mark in head for mark in ("re", "fw"))
