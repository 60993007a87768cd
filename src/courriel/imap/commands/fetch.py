"""FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY).

FLAGS / UID / RFC822.SIZE / INTERNALDATE come from the message rows alone; ENVELOPE and
BODYSTRUCTURE from the JSON stored at delivery; body sections are slices of the stored
bytes at the offsets the body structure records. Responses are built into the session's
buffer and written in large chunks.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from courriel.imap.commands.common import resolve, selected
from courriel.imap.errors import Bad, No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.sections import UnknownEncoding, binary_section, body_section
from courriel.imap.protocol.types import Command, Fetch, FetchAtt, Section, SeqSet
from courriel.imap.rendered import (
    cached_bodystructure,
    cached_bodystructures,
    cached_envelope,
    cached_envelopes,
    rendered_bodystructure,
    rendered_envelope,
    thread_id,
)
from courriel.imap.selected import Selected
from courriel.imap.session import Session
from courriel.mime.structure import BodyPart, body_from_json
from courriel.store.api import Flag, FlagMode, MessageInfo, MessageRecord

_INFO_ONLY = frozenset({"FLAGS", "UID", "RFC822.SIZE", "INTERNALDATE", "MODSEQ"})
#: What the shared mailbox index answers without a query.
_INDEX_ONLY = frozenset({"FLAGS", "UID", "MODSEQ"})
#: What message rows plus the process-wide rendered ENVELOPE / BODYSTRUCTURE answer.
_INFO_RENDERED = _INFO_ONLY | {"ENVELOPE", "BODYSTRUCTURE", "EMAILID"}
#: What the index (with sizes and content ids) plus the rendered bytes answer: no query.
_INDEX_RENDERED = _INFO_RENDERED - {"INTERNALDATE"}
_SETS_SEEN = frozenset({"RFC822", "RFC822.TEXT"})
BATCH = 1000
FIRST_BATCH = 500
_HEADER = Section(text="HEADER")
_TEXT = Section(text="TEXT")
_MODSEQ = FetchAtt("MODSEQ", label=b"MODSEQ")


def _sets_seen(att: FetchAtt) -> bool:
    return att.name in _SETS_SEEN or (att.name in ("BODY[]", "BINARY[]") and not att.peek)


def _retrieves(att: FetchAtt) -> bool:
    """A retrieval for the message events: the message, its text or one of its parts
    (BODY[], BODY.PEEK[TEXT], BINARY[2], RFC822...), not a header section alone."""
    if att.name in ("RFC822", "RFC822.TEXT"):
        return True
    return att.name in ("BODY[]", "BINARY[]") and att.section is not None and att.section.text in ("", "TEXT")


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
        for modseq in {info.modseq for info in result.changed}:  # one per store_flags call
            sel.note_own(modseq)
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
    if names <= _INDEX_RENDERED and sel.aligned and sel.index.content_ids is not None:
        await _from_index_rendered(s, sel, uids, atts)
        return f"{cmd.name} completed"
    if names <= _INFO_RENDERED:
        await _from_infos(s, sel, uids, atts)
        return f"{cmd.name} completed"
    with_body = any(_needs_body(a) for a in atts)
    retrieval = [a for a in atts if _retrieves(a)] if s.retrievals is not None else []
    peek = all(a.peek for a in retrieval)
    for i in range(0, len(uids), BATCH):
        records = await s.store.get_records(sel.id, uids[i : i + BATCH])
        for rec in records:
            seq = sel.seq_of(rec.info.uid)
            if not seq:
                continue
            data = await s.store.read_message(rec.blob) if with_body else b""
            s.out += b"* %d FETCH (%s)\r\n" % (seq, _record_items(sel, rec, atts, data))
            if retrieval and s.retrievals is not None:
                s.retrievals.note(s.user_id, rec.info.content_id, peek)
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
    if names == ["UID", "FLAGS"]:  # UID FETCH n:* (FLAGS), the sync tools' poll
        for f in set(flags):
            rendered[f] = encoder.flag_list(Flag(f))
        # messages with keywords or \Recent (few) are rendered one by one
        special = keywords.keys() | recent if recent else keywords
        step = 4096
        if contiguous:  # the whole span: formatted by map() over the packed arrays
            line = b"* %d FETCH (UID %d FLAGS %s)\r\n".__mod__
            lo_uid, hi_uid = all_uids[first], all_uids[last]
            special_at = sorted(index.position(u) for u in special if lo_uid <= u <= hi_uid)
            lo = first
            while lo <= last:
                # the first chunk small and each sent at once: the client parses while
                # the rest is formatted
                hi = min(lo + (step if lo > first else FIRST_BATCH), last + 1)
                rendered_flags = list(map(rendered.__getitem__, flags[lo:hi]))
                for i in special_at[bisect_left(special_at, lo) : bisect_left(special_at, hi)]:
                    uid = all_uids[i]
                    rendered_flags[i - lo] = encoder.flag_list(Flag(flags[i]), keywords.get(uid, ()), uid in recent)
                s.out += b"".join(map(line, zip(range(lo + 1, hi + 1), all_uids[lo:hi], rendered_flags)))
                lo = hi
                if lo <= last:
                    await s.flush()
            return
        pos = list(positions)
        for start in range(0, len(pos), step):
            chunk = pos[start : start + step]
            s.out += b"".join([
                b"* %d FETCH (UID %d FLAGS %s)\r\n" % (
                    i + 1, all_uids[i],
                    rendered[flags[i]] if all_uids[i] not in special
                    else encoder.flag_list(
                        Flag(flags[i]), keywords.get(all_uids[i], ()), all_uids[i] in recent
                    ),
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


async def _from_index_rendered(s: Session, sel: Selected, uids: list[int], atts: Sequence[FetchAtt]) -> None:
    """FETCH of UID FLAGS RFC822.SIZE MODSEQ ENVELOPE BODYSTRUCTURE EMAILID while the view is
    the shared index's: positions, flags, sizes and contents from the index, the rendered
    bytes from the cache; a query only for contents not rendered yet."""
    index = sel.index
    # The index's current arrays: appends extend them in place (positions stay), an expunge
    # replaces them (these keep the state of the positions computed here).
    all_uids, flags, modseqs, keywords = index.uids, index.flags, index.modseqs, index.keywords
    sizes, contents = index.sizes, index.content_ids
    assert sizes is not None and contents is not None
    names = [a.name for a in atts]
    want_env, want_body = "ENVELOPE" in names, "BODYSTRUCTURE" in names
    recent = sel.recent
    first, last = index.position(uids[0]), index.position(uids[-1])
    if first >= 0 and last - first + 1 == len(uids):
        positions: list[int] = list(range(first, last + 1))
    else:
        positions = [i for i in map(index.position, uids) if i >= 0]
    # One line template for the items asked, filled from columns of the batch (a C-level
    # map over zip: no per-message Python loop over the items).
    template = []
    for name in names:
        template.append({
            "UID": b"UID %d", "FLAGS": b"FLAGS %s", "RFC822.SIZE": b"RFC822.SIZE %d", "ENVELOPE": b"ENVELOPE %s",
            "BODYSTRUCTURE": b"BODYSTRUCTURE %s", "EMAILID": b"EMAILID (M%d)", "MODSEQ": b"MODSEQ (%d)",
        }[name])  # fmt: skip
    line = (b"* %d FETCH (" + b" ".join(template) + b")\r\n").__mod__
    rendered: dict[int, bytes] = {}
    start = 0
    while start < len(positions):
        size = BATCH if start else FIRST_BATCH
        batch = positions[start : start + size]
        start += size
        batch_uids = [all_uids[i] for i in batch]
        batch_cids = [contents[i] for i in batch]
        envs = cached_envelopes(batch_cids) if want_env else []
        bodies = cached_bodystructures(batch_cids) if want_body else []
        missing = [k for k in range(len(batch)) if (want_env and envs[k] is None) or (want_body and bodies[k] is None)]
        if missing:
            recs = {r.info.uid: r for r in await s.store.get_records(sel.id, [batch_uids[k] for k in missing])}
            for k in missing:
                rec = recs.get(batch_uids[k])
                if rec is None:
                    continue
                if want_env:
                    envs[k] = rendered_envelope(rec)
                if want_body:
                    bodies[k] = rendered_bodystructure(rec)
            gone = {k for k in missing if batch_uids[k] not in recs}  # expunged meanwhile: left out
            if gone:
                keep = [k for k in range(len(batch)) if k not in gone]
                batch = [batch[k] for k in keep]
                batch_uids = [batch_uids[k] for k in keep]
                batch_cids = [batch_cids[k] for k in keep]
                envs = [envs[k] for k in keep] if want_env else envs
                bodies = [bodies[k] for k in keep] if want_body else bodies
        columns: list[Sequence[object]] = [[i + 1 for i in batch]]
        for name in names:
            if name == "UID":
                columns.append(batch_uids)
            elif name == "FLAGS":
                batch_flags = [flags[i] for i in batch]
                for f in set(batch_flags) - rendered.keys():
                    rendered[f] = encoder.flag_list(Flag(f))
                column = list(map(rendered.__getitem__, batch_flags))
                for k, uid in enumerate(batch_uids):
                    if uid in keywords or uid in recent:
                        column[k] = encoder.flag_list(Flag(batch_flags[k]), keywords.get(uid, ()), uid in recent)
                columns.append(column)
            elif name == "RFC822.SIZE":
                columns.append([sizes[i] for i in batch])
            elif name == "ENVELOPE":
                columns.append(envs)
            elif name == "BODYSTRUCTURE":
                columns.append(bodies)
            elif name == "EMAILID":
                columns.append(batch_cids)
            else:
                columns.append([modseqs[i] for i in batch])
        s.out += b"".join(map(line, zip(*columns)))
        if start < len(positions) or len(s.out) >= 256 * 1024:
            await s.flush()


async def _from_infos(s: Session, sel: Selected, uids: list[int], atts: Sequence[FetchAtt]) -> None:
    """FETCH of row attributes, ENVELOPE and BODYSTRUCTURE: the message rows (no contents
    read) and the rendered bytes cached per content; only the contents missing from the
    cache are read (and rendered) with get_records."""
    names = [a.name for a in atts]
    want_env, want_body = "ENVELOPE" in names, "BODYSTRUCTURE" in names
    recent = sel.recent
    start = 0
    while start < len(uids):
        # a small first batch: the client starts reading while the rest is prepared
        size = BATCH if start else FIRST_BATCH
        batch = await s.store.list_messages(sel.id, uids[start : start + size])
        start += size
        envs: dict[int, bytes] = {}
        bodies: dict[int, bytes] = {}
        missing = []
        for info in batch:
            cid = info.content_id
            env = cached_envelope(cid) if want_env else b""
            body = cached_bodystructure(cid) if want_body else b""
            if env is None or body is None:
                missing.append(info.uid)
            else:
                envs[cid], bodies[cid] = env, body
        if missing:
            for rec in await s.store.get_records(sel.id, missing):
                cid = rec.info.content_id
                envs[cid] = rendered_envelope(rec) if want_env else b""
                bodies[cid] = rendered_bodystructure(rec) if want_body else b""
        for info in batch:
            seq = sel.seq_of(info.uid)
            cid = info.content_id
            if not seq or cid not in envs:
                continue
            parts = []
            for name in names:
                if name == "UID":
                    parts.append(b"UID %d" % info.uid)
                elif name == "FLAGS":
                    parts.append(b"FLAGS " + encoder.flag_list(info.flags, info.keywords, info.uid in recent))
                elif name == "RFC822.SIZE":
                    parts.append(b"RFC822.SIZE %d" % info.size)
                elif name == "ENVELOPE":
                    parts.append(b"ENVELOPE " + envs[cid])
                elif name == "BODYSTRUCTURE":
                    parts.append(b"BODYSTRUCTURE " + bodies[cid])
                elif name == "EMAILID":  # RFC 8474 §5.1
                    parts.append(b"EMAILID (M%d)" % cid)
                elif name == "MODSEQ":
                    parts.append(b"MODSEQ (%d)" % info.modseq)
                else:
                    parts.append(b"INTERNALDATE " + encoder.internal_date(info.internal_date))
            s.out += b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))
            if len(s.out) >= 256 * 1024:
                await s.flush()
        if start < len(uids):
            await s.flush()


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
