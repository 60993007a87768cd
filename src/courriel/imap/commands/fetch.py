"""FETCH and UID FETCH (RFC 9051 §6.4.5, RFC 3516 BINARY).

FLAGS / UID / RFC822.SIZE / INTERNALDATE come from the message rows alone; ENVELOPE and
BODYSTRUCTURE from the JSON stored at delivery; body sections are slices of the stored
bytes at the offsets the body structure records. Responses are built into the session's
buffer and written in large chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

from courriel.imap.commands.common import resolve, selected
from courriel.imap.errors import No
from courriel.imap.protocol import encoder
from courriel.imap.protocol.sections import UnknownEncoding, binary_section, body_section
from courriel.imap.protocol.types import Command, Fetch, FetchAtt, Section
from courriel.imap.selected import Selected
from courriel.imap.session import Session
from courriel.mime.structure import BodyPart, body_from_json, envelope_from_json
from courriel.store.api import Flag, FlagMode, MessageInfo, MessageRecord

_INFO_ONLY = frozenset({"FLAGS", "UID", "RFC822.SIZE", "INTERNALDATE"})
_SETS_SEEN = frozenset({"RFC822", "RFC822.TEXT"})
BATCH = 1000
_HEADER = Section(text="HEADER")
_TEXT = Section(text="TEXT")


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
    if all(a.name in _INFO_ONLY for a in atts):
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
            out.append(b"ENVELOPE " + encoder.envelope(envelope_from_json(rec.envelope_json)))
        elif name in ("BODYSTRUCTURE", "BODY"):
            body = body or body_from_json(rec.body_json)
            out.append(att.label + b" " + encoder.body(body, extensible=name == "BODYSTRUCTURE"))
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
