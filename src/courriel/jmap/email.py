"""Email/get and Email/parse (RFC 8621 §4.2, §4.9): Email objects from stored messages.

Metadata (mailboxIds, keywords, receivedAt, threadId) comes from the account index; the
structure from the body structure computed at delivery (part offsets into the raw bytes);
header fields and body values from the raw bytes, read only when a property needs them.
Body parts are numbered like IMAP sections ("1", "2.1"); a part's blobId is
``P<content>_<partId>`` and the whole message's ``G<content>`` (see :mod:`.blob`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from courriel.jmap import blob as blobs
from courriel.jmap import contentcache
from courriel.jmap.args import bool_arg, ids_arg, int_arg, properties_arg
from courriel.jmap.core import MAIL, Call, MethodError, invalid, method
from courriel.jmap.headers import HeaderProperty as HP
from courriel.jmap.headers import (
    address_json,
    as_text,
    header_value,
    local_date,
    parse_property,
    raw_headers,
    utc_date,
)
from courriel.jmap.index import EmailEntry, content_of, mailbox_id
from courriel.mime.content import body_lists, decode_part, part_text
from courriel.mime.headers import parse_date, parse_msg_ids, scan_header
from courriel.mime.parse import parse_message
from courriel.mime.structure import Address, BodyPart, envelope_from_json
from courriel.store.api import MessageRecord

PROPERTIES = (
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "messageId", "inReplyTo",
    "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt", "hasAttachment",
    "preview", "bodyValues", "textBody", "htmlBody", "attachments", "headers", "bodyStructure",
)  # fmt: skip
DEFAULT = (
    "id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt", "messageId", "inReplyTo",
    "references", "sender", "from", "to", "cc", "bcc", "replyTo", "subject", "sentAt", "hasAttachment",
    "preview", "bodyValues", "textBody", "htmlBody", "attachments",
)  # fmt: skip
BODY_PROPERTIES = (
    "partId", "blobId", "size", "headers", "name", "type", "charset", "disposition", "cid", "language",
    "location", "subParts",
)  # fmt: skip
BODY_DEFAULT = ("partId", "blobId", "size", "name", "type", "charset", "disposition", "cid", "language", "location")
#: Convenience properties and the header:...:asForm they stand for (§4.1.3).
CONVENIENCE = {
    "messageId": HP("Message-ID", "MessageIds", False), "inReplyTo": HP("In-Reply-To", "MessageIds", False),
    "references": HP("References", "MessageIds", False), "sender": HP("Sender", "Addresses", False),
    "from": HP("From", "Addresses", False), "to": HP("To", "Addresses", False), "cc": HP("Cc", "Addresses", False),
    "bcc": HP("Bcc", "Addresses", False), "replyTo": HP("Reply-To", "Addresses", False),
    "subject": HP("Subject", "Text", False), "sentAt": HP("Date", "Date", False),
}  # fmt: skip
_METADATA = frozenset({"id", "blobId", "threadId", "mailboxIds", "keywords", "size", "receivedAt"})
#: Properties answered from what delivery stored (envelope, preview), without
#: reading the message: what a message list asks for. (Sender and Reply-To are not: IMAP's
#: envelope fills them from From when absent.)
_FROM_RECORD = frozenset({"from", "to", "cc", "bcc", "subject", "sentAt", "messageId", "inReplyTo", "preview",
                          "hasAttachment"})  # fmt: skip


@dataclass
class BodyOptions:
    properties: list[str]
    fetch_text: bool
    fetch_html: bool
    fetch_all: bool
    max_bytes: int | None


def body_options(args: dict[str, Any]) -> BodyOptions:
    props = properties_arg(args, BODY_PROPERTIES, BODY_DEFAULT, "bodyProperties")
    for p in props:
        if p.startswith("header:") and parse_property(p) is None:
            raise invalid(f"bad body property {p}")
    return BodyOptions(
        props,
        bool_arg(args, "fetchTextBodyValues"),
        bool_arg(args, "fetchHTMLBodyValues"),
        bool_arg(args, "fetchAllBodyValues"),
        int_arg(args, "maxBodyValueBytes", None, 1),
    )


def check_properties(props: list[str]) -> dict[str, HP]:
    out = {}
    for p in props:
        if p.startswith("header:"):
            hp = parse_property(p)
            if hp is None:
                raise invalid(f"bad header property {p}")
            out[p] = hp
    return out


def part_id(section: tuple[int, ...]) -> str:
    return ".".join(map(str, section)) if section else "1"


class Renderer:
    """Builds one Email's non-metadata properties from its bytes and structure."""

    def __init__(self, data: bytes, body: BodyPart, blob_prefix: str, opts: BodyOptions) -> None:
        self.data = data
        self.body = body
        self.prefix = blob_prefix
        self.opts = opts
        self.fields, _ = scan_header(data, 0, body.body_start or len(data))
        self.sections: dict[int, tuple[int, ...]] = {}
        for section, part in body.walk():
            self.sections.setdefault(id(part), section)
        self.text_body, self.html_body, self.attachments = body_lists(body)

    def _section(self, part: BodyPart) -> tuple[int, ...]:
        return self.sections.get(id(part), ())

    def part(self, part: BodyPart, section: tuple[int, ...] | None = None) -> dict[str, Any]:
        if section is None:
            section = self._section(part)
        leaf = not part.children
        pid = part_id(section) if leaf else None
        out: dict[str, Any] = {}
        for prop in self.opts.properties:
            if prop == "partId":
                out[prop] = pid
            elif prop == "blobId":
                out[prop] = blobs.part_blob_id(self.prefix, pid) if leaf and pid else None
            elif prop == "size":
                out[prop] = len(decode_part(self.data, part)) if leaf else 0
            elif prop == "headers":
                out[prop] = raw_headers(scan_header(self.data, part.header_start, part.body_start)[0])
            elif prop == "name":
                out[prop] = part.filename
            elif prop == "type":
                out[prop] = part.mime_type
            elif prop == "charset":
                out[prop] = part.charset or ("us-ascii" if part.type_lower == "text" else None)
            elif prop == "disposition":
                out[prop] = part.disposition_lower
            elif prop == "cid":
                out[prop] = part.id.strip().strip("<>") if part.id else None
            elif prop == "language":
                out[prop] = part.language
            elif prop == "location":
                out[prop] = part.location
            elif prop == "subParts":
                if not leaf:
                    out[prop] = [self.part(child, (*section, i)) for i, child in enumerate(part.children, 1)]
            elif prop.startswith("header:"):
                hp = parse_property(prop)
                assert hp is not None
                out[prop] = header_value(scan_header(self.data, part.header_start, part.body_start)[0], hp)
        return out

    def structure(self) -> dict[str, Any]:
        saved = self.opts.properties
        if "subParts" not in saved:
            self.opts.properties = [*saved, "subParts"]
        try:
            return self.part(self.body, ())
        finally:
            self.opts.properties = saved

    def body_values(self) -> dict[str, Any]:
        wanted: list[BodyPart] = []
        if self.opts.fetch_all:
            wanted = [p for _, p in self.body.walk() if not p.children and p.type_lower == "text"]
        else:
            if self.opts.fetch_text:
                wanted += self.text_body
            if self.opts.fetch_html:
                wanted += self.html_body
        out: dict[str, Any] = {}
        for part in wanted:
            if part.type_lower != "text":
                continue
            text = part_text(self.data, part)
            truncated = False
            limit = self.opts.max_bytes
            if limit is not None and len(text.encode()) > limit:
                text = text.encode()[:limit].decode("utf-8", "ignore")  # §4.2: on a UTF-8 boundary
                truncated = True
            out[part_id(self._section(part))] = {"value": text, "isEncodingProblem": False, "isTruncated": truncated}
        return out

    def properties(self, props: list[str], headers: dict[str, HP]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for prop in props:
            if prop in CONVENIENCE:
                out[prop] = header_value(self.fields, CONVENIENCE[prop])
            elif prop in headers:
                out[prop] = header_value(self.fields, headers[prop])
            elif prop == "headers":
                out[prop] = raw_headers(self.fields)
            elif prop == "bodyStructure":
                out[prop] = self.structure()
            elif prop == "textBody":
                out[prop] = [self.part(p) for p in self.text_body]
            elif prop == "htmlBody":
                out[prop] = [self.part(p) for p in self.html_body]
            elif prop == "attachments":
                out[prop] = [self.part(p) for p in self.attachments]
            elif prop == "bodyValues":
                out[prop] = self.body_values()
        return out


def metadata(e: EmailEntry, props: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prop in props:
        if prop == "id":
            out[prop] = e.id
        elif prop == "blobId":
            out[prop] = blobs.message_blob_id(e.content_id)
        elif prop == "threadId":
            out[prop] = e.thread
        elif prop == "mailboxIds":
            out[prop] = {mailbox_id(b): True for b in sorted(e.mailbox_ids)}
        elif prop == "keywords":
            out[prop] = e.jmap_keywords()
        elif prop == "size":
            out[prop] = e.size
        elif prop == "receivedAt":
            out[prop] = utc_date(e.received_at)
    return out


@method("Email/get", MAIL)
async def email_get(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    limit = acct.ctx.cfg.jmap.max_objects_in_get
    ids = ids_arg(args, limit)
    props = properties_arg(args, PROPERTIES, DEFAULT)
    headers = check_properties(props)
    opts = body_options(args)
    modseq = await acct.modseq()  # one read for the state and the index check
    state = str(modseq)
    if ids is None:  # §5.1: all, up to the limit
        emails = (await acct.index(modseq)).emails
        ids = [e.id for e in sorted(emails.values(), key=lambda e: e.content_id)][:limit]
    else:  # just these (read from the store while the account index is not built yet)
        emails = await acct.entries((c for eid in ids if (c := content_of(eid)) is not None), modseq)
    need_record = any(p not in _METADATA for p in props)
    need_bytes = any(p not in _METADATA and p not in _FROM_RECORD for p in props)
    records: dict[tuple[int, int], MessageRecord] = {}
    if need_record:  # one store read per mailbox for the whole list
        wanted: dict[int, list[int]] = {}
        for eid in ids:
            entry = emails.get(content_of(eid) or -1)
            if entry is not None:
                wanted.setdefault(entry.copies[0][0], []).append(entry.copies[0][1])
        for box, uids in wanted.items():
            records.update(((box, r.info.uid), r) for r in await acct.store.get_records(box, uids))
    found, not_found = [], []
    for eid in ids:
        entry = emails.get(content_of(eid) or -1)
        if entry is None:
            not_found.append(eid)
            continue
        obj = {"id": entry.id, **metadata(entry, props)}
        if need_record:
            rec = records.get(entry.copies[0])
            if rec is None:
                not_found.append(eid)  # expunged since the index was read
                continue
            if not need_bytes:
                obj.update(from_record(rec, props))
                found.append(obj)
                continue
            content = contentcache.contents.get(acct.user_id, rec.blob)
            if content is None:
                try:
                    data = await acct.store.read_message(rec.blob)
                except FileNotFoundError:
                    not_found.append(eid)
                    continue
                content = contentcache.contents.put(acct.user_id, rec.blob, data, rec.body_json)
            r = Renderer(content.data, content.body, blobs.part_prefix(entry.content_id), opts)
            obj.update(r.properties(props, headers))
            if "bodyValues" in props and obj.get("bodyValues"):
                acct.retrieved.add(entry.content_id)  # the body went to the client
            if "preview" in props:
                obj["preview"] = rec.preview
            if "hasAttachment" in props:
                obj["hasAttachment"] = rec.has_attachment
        found.append(obj)
    return {"accountId": acct.id, "state": state, "list": found, "notFound": not_found}


def _addresses(value: list[Address] | None) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    return [address_json(a.name, a.mailbox, a.host) for a in value if a.host is not None]


def from_record(rec: MessageRecord, props: list[str]) -> dict[str, Any]:
    """The header properties a message list needs, from the envelope stored at delivery."""
    env = envelope_from_json(rec.envelope_json)
    out: dict[str, Any] = {}
    for prop in props:
        if prop in ("from", "to", "cc", "bcc"):
            out[prop] = _addresses({"from": env.from_, "to": env.to, "cc": env.cc, "bcc": env.bcc}[prop])
        elif prop == "subject":
            out[prop] = as_text(env.subject) if env.subject is not None else None
        elif prop == "sentAt":
            out[prop] = local_date(parse_date(env.date))
        elif prop in ("messageId", "inReplyTo"):
            out[prop] = parse_msg_ids(env.message_id if prop == "messageId" else env.in_reply_to) or None
        elif prop == "preview":
            out[prop] = rec.preview
        elif prop == "hasAttachment":
            out[prop] = rec.has_attachment
    return out


def parsed_email(data: bytes, blob_id: str, props: list[str], headers: dict[str, HP], opts: BodyOptions) -> dict[str, Any]:
    """An Email object for bytes that are not stored as a message (Email/parse, §4.9)."""
    msg = parse_message(data)
    r = Renderer(data, msg.body, blobs.parsed_prefix(blob_id), opts)
    out: dict[str, Any] = {}
    for prop in props:
        if prop in ("id", "mailboxIds", "keywords", "receivedAt", "threadId"):
            out[prop] = None
        elif prop == "blobId":
            out[prop] = blob_id
        elif prop == "size":
            out[prop] = len(data)
        elif prop == "preview":
            out[prop] = msg.preview
        elif prop == "hasAttachment":
            out[prop] = msg.has_attachment
    out.update(r.properties(props, headers))
    return out


@method("Email/parse", MAIL)
async def email_parse(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    ids = ids_arg(args, acct.ctx.cfg.jmap.max_objects_in_get, "blobIds") or []
    default = [p for p in DEFAULT if p not in ("id", "mailboxIds", "keywords", "receivedAt", "threadId")]
    props = properties_arg(args, PROPERTIES, default)
    headers = check_properties(props)
    opts = body_options(args)
    parsed: dict[str, Any] = {}
    not_parsable: list[str] = []
    not_found: list[str] = []
    for bid in ids:
        try:
            data, ctype = await blobs.read_blob(acct, bid)
        except LookupError:
            not_found.append(bid)
            continue
        if ctype not in ("message/rfc822", "message/global", "application/octet-stream") or not data:
            not_parsable.append(bid)
            continue
        parsed[bid] = parsed_email(data, bid, props, headers, opts)
    return {
        "accountId": acct.id, "parsed": parsed or None, "notParsable": not_parsable or None, "notFound": not_found or None,
    }  # fmt: skip


def reject_unknown(props: list[str]) -> None:
    bad = [p for p in props if p not in PROPERTIES and not p.startswith("header:")]
    if bad:
        raise MethodError("invalidArguments", f"unknown property {bad[0]}")
