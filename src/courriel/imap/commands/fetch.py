"""FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY).

FLAGS / UID / RFC822.SIZE / INTERNALDATE come from the message rows alone; ENVELOPE and
BODYSTRUCTURE from the JSON stored at delivery; body sections are slices of the stored
bytes at the offsets the body structure records. Responses are built into the session's
buffer and written in large chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

from courriel.imap.commands.common import resolve, selected
from courriel.imap.errors import Bad, No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.sections import UnknownEncoding, binary_section, body_section
from courriel.imap.protocol.types import Command, Fetch, FetchAtt, Section, SeqSet
from courriel.imap.rendered import rendered_bodystructure, rendered_envelope, thread_id
from courriel.imap.selected import Selected
from courriel.imap.session import Session
from courriel.mime.structure import BodyPart, body_from_json
from courriel.store.api import Flag, FlagMode, MessageInfo, MessageRecord

_INFO_ONLY = frozenset({"FLAGS", "UID", "RFC822.SIZE", "INTERNALDATE", "MODSEQ"})
#: What the shared mailbox index answers without a query.
_INDEX_ONLY = frozenset({"FLAGS", "UID", "MODSEQ"})
_SETS_SEEN = frozenset({"RFC822", "RFC822.TEXT"})
BATCH = 1000
_HEADER = Section(text="HEADER")
_TEXT = Section(text="TEXT")
_MODSEQ = FetchAtt("MODSEQ", label=b"MODSEQ")


def _sets_seen(att: FetchAtt) -> bool:
    return att.name in _SETS_SEEN or (att.name in ("BODY[]", "BINARY[]") and not att.peek)


def _needs_body(att: FetchAtt) -> bool:
    return att.name.startswith(("RFC822", "BODY[", "BINARY")) and att.name != "RFC822.SIZE"


async def fetch(s: Session, cmd: Command) -> str:
    args = cmd.args
    assert isinstance(args, Fetch)
    sel = selected(s)
    uids = resolve(sel, args.seqset, cmd.uid)
    atts = list(args.atts)
    if cmd.uid and not any(a.name == "UID" for a in atts):
        atts.insert(0, FetchAtt("UID", label=b"UID"))  # RFC 9051 §6.4.9
    if args.changedsince is not None or any(a.name == "MODSEQ" for a in atts):
        s.enable_condstore()  # RFC 7162 §3.1
        if not any(a.name == "MODSEQ" for a in atts):
            atts.append(_MODSEQ)  # RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ
    if args.vanished:
        if not cmd.uid or not s.qresync:
            raise Bad("VANISHED needs UID FETCH and QRESYNC enabled")  # RFC 7162 §3.2.6
        assert args.changedsince is not None
        await _vanished(s, args.seqset, args.changedsince)
    if args.changedsince is not None and uids:
        uids = await _changed_since(s, uids, args.changedsince)
    if not uids:
        return f"{cmd.name} completed"
    seen_now: set[int] = set()
    if not sel.readonly and any(_sets_seen(a) for a in atts):
        result = await s.store.store_flags(sel.id, uids, FlagMode.ADD, Flag.SEEN)
        for info in result.changed:
            sel.note_own(info.modseq)
        seen_now = {i.uid for i in result.changed}
        if seen_now and not any(a.name == "FLAGS" for a in atts):
            atts.append(FetchAtt("FLAGS", label=b"FLAGS"))  # RFC 9051 §6.4.5: report \Seen
            if s.condstore and not any(a.name == "MODSEQ" for a in atts):
                atts.append(_MODSEQ)
    names = {a.name for a in atts}
    if names <= _INDEX_ONLY and sel.aligned:
        await _from_index(s, sel, uids, atts)
        return f"{cmd.name} completed"
    if names <= _INFO_ONLY:
        infos = await s.store.list_messages(sel.id, None if len(uids) * 2 > sel.exists else uids)
        wanted = set(uids) if len(infos) != len(uids) else None
        for info in infos:
            if wanted is not None and info.uid not in wanted:
                continue
            seq = sel.seq_of(info.uid)
            if seq:
                s.out += b"* %d FETCH (%s)\r\n" % (seq, _info_items(sel, info, atts))
                if len(s.out) >= 256 * 1024:
                    await s.flush()
        return f"{cmd.name} completed"
    with_body = any(_needs_body(a) for a in atts)
    for i in range(0, len(uids), BATCH):
        records = await s.store.get_records(sel.id, uids[i : i + BATCH])
        for rec in records:
            seq = sel.seq_of(rec.info.uid)
            if not seq:
                continue
            data = await s.store.read_message(rec.blob) if with_body else b""
            s.out += b"* %d FETCH (%s)\r\n" % (seq, _record_items(sel, rec, atts, data))
            await s.maybe_flush()
    return f"{cmd.name} completed"


async def _vanished(s: Session, seqset: SeqSet, modseq: int) -> None:
    """RFC 7162 §3.2.6: UIDs of the set expunged since ``modseq``, as VANISHED (EARLIER)."""
    sel = selected(s)
    _changed, gone = await s.store.changed_since(sel.id, modseq)
    if seqset.saved:
        wanted = set(sel.saved)
        gone = [u for u in gone if u in wanted]
    else:
        ranges = seqset.resolve(max(sel.uidnext - 1, 1))
        gone = [u for u in gone if any(lo <= u <= hi for lo, hi in ranges)]
    gone = [u for u in gone if not sel.seq_of(u)]  # still in the view: announced later
    if gone:
        s.out += b"* VANISHED (EARLIER) " + encoder.seqset(gone) + b"\r\n"


async def _changed_since(s: Session, uids: list[int], modseq: int) -> list[int]:
    sel = selected(s)
    if sel.aligned:
        index = sel.index
        mods = index.modseqs
        out = []
        for uid in uids:
            i = index.position(uid)
            if i >= 0 and mods[i] > modseq:
                out.append(uid)
        return out
    changed, _gone = await s.store.changed_since(sel.id, modseq)
    wanted = set(uids)
    return [i.uid for i in changed if i.uid in wanted]


async def _from_index(s: Session, sel: Selected, uids: list[int], atts: Sequence[FetchAtt]) -> None:
    """FLAGS / UID / MODSEQ from the shared index: no query, one formatted line per message."""
    index = sel.index
    flags, modseqs, keywords = index.flags, index.modseqs, index.keywords
    recent = sel.recent
    rendered: dict[int, bytes] = {}
    names = [a.name for a in atts]
    out = s.out
    # Positions: message number n is index position n-1 while the view is aligned.
    # ``uids`` is an ascending subset of the index's UIDs: when as many as the span between
    # the first and the last, it is the whole span.
    first, last = index.position(uids[0]), index.position(uids[-1])
    contiguous = first >= 0 and last - first + 1 == len(uids)
    positions = range(first, last + 1) if contiguous else [index.position(u) for u in uids]
    all_uids = index.uids
    if names == ["UID", "FLAGS"] and not recent:  # UID FETCH n:* (FLAGS), the sync tools' poll
        for f in set(flags):
            rendered[f] = encoder.flag_list(Flag(f))
        step = 4096
        pos = list(positions)
        for start in range(0, len(pos), step):
            chunk = pos[start : start + step]
            s.out += b"".join([
                b"* %d FETCH (UID %d FLAGS %s)\r\n" % (
                    i + 1, all_uids[i],
                    rendered[flags[i]] if all_uids[i] not in keywords
                    else encoder.flag_list(Flag(flags[i]), keywords[all_uids[i]]),
                )
                for i in chunk if i >= 0
            ])  # fmt: skip
            if len(s.out) >= 256 * 1024:
                await s.flush()
        return
    for i in positions:
        if i < 0:
            continue
        uid = all_uids[i]
        parts = []
        for name in names:
            if name == "FLAGS":
                f = flags[i]
                if uid in keywords or recent:
                    parts.append(b"FLAGS " + encoder.flag_list(Flag(f), keywords.get(uid, ()), uid in recent))
                else:
                    fl = rendered.get(f)
                    if fl is None:
                        fl = rendered[f] = b"FLAGS " + encoder.flag_list(Flag(f))
                    parts.append(fl)
            elif name == "UID":
                parts.append(b"UID %d" % uid)
            else:
                parts.append(b"MODSEQ (%d)" % modseqs[i])
        out += b"* %d FETCH (%s)\r\n" % (i + 1, b" ".join(parts))
        if len(out) >= 256 * 1024:
            await s.flush()
            out = s.out


def _info_items(sel: Selected, info: MessageInfo, atts: Sequence[FetchAtt]) -> bytes:
    out = []
    for att in atts:
        name = att.name
        if name == "FLAGS":
            out.append(b"FLAGS " + encoder.flag_list(info.flags, info.keywords, info.uid in sel.recent))
        elif name == "UID":
            out.append(b"UID %d" % info.uid)
        elif name == "RFC822.SIZE":
            out.append(b"RFC822.SIZE %d" % info.size)
        elif name == "MODSEQ":
            out.append(b"MODSEQ (%d)" % info.modseq)
        else:
            out.append(b"INTERNALDATE " + encoder.internal_date(info.internal_date))
    return b" ".join(out)


def _record_items(sel: Selected, rec: MessageRecord, atts: Sequence[FetchAtt], data: bytes) -> bytes:
    info = rec.info
    out = []
    body: BodyPart | None = None
    for att in atts:
        name = att.name
        if name in _INFO_ONLY:
            out.append(_info_items(sel, info, (att,)))
        elif name == "ENVELOPE":
            out.append(b"ENVELOPE " + rendered_envelope(rec))
        elif name == "SAVEDATE":  # RFC 8514 §4.1
            out.append(b"SAVEDATE " + encoder.internal_date(rec.savedate))
        elif name == "EMAILID":  # RFC 8474 §5.1: the content row, shared by copies
            out.append(b"EMAILID (M%d)" % info.content_id)
        elif name == "THREADID":
            out.append(b"THREADID (" + thread_id(rec) + b")")
        elif name == "PREVIEW":  # RFC 8970: computed at delivery, at most 256 characters
            out.append(b"PREVIEW " + encoder.nstring(rec.preview[:256] if rec.preview else None))
        elif name == "BODYSTRUCTURE":
            out.append(b"BODYSTRUCTURE " + rendered_bodystructure(rec))
        elif name == "BODY":
            body = body or body_from_json(rec.body_json)
            out.append(att.label + b" " + encoder.body(body, extensible=False))
        elif name == "RFC822":
            out.append(b"RFC822 " + encoder.literal(data))
        elif name in ("RFC822.HEADER", "RFC822.TEXT"):
            body = body or body_from_json(rec.body_json)
            value = body_section(data, body, _HEADER if name == "RFC822.HEADER" else _TEXT) or b""
            out.append(name.encode() + b" " + encoder.literal(value))
        else:
            body = body or body_from_json(rec.body_json)
            out.append(att.label + b" " + _section(att, data, body))
    return b" ".join(out)


def _section(att: FetchAtt, data: bytes, body: BodyPart) -> bytes:
    assert att.section is not None
    binary = att.name == "BINARY[]"
    if att.name == "BINARY.SIZE[]":
        try:
            value = binary_section(data, body, att.section)
        except UnknownEncoding as exc:
            raise No(f"unknown content transfer encoding {exc}", "UNKNOWN-CTE") from None
        return b"%d" % len(value) if value is not None else b"0"
    if binary:
        try:
            value = binary_section(data, body, att.section)
        except UnknownEncoding as exc:
            raise No(f"unknown content transfer encoding {exc}", "UNKNOWN-CTE") from None
    else:
        value = body_section(data, body, att.section)
    if value is None:
        return encoder.NIL
    if att.partial is not None:
        origin, count = att.partial
        value = value[origin : origin + count]
    return encoder.literal(value, binary=binary)
