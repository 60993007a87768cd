"""Email/set and Email/import (RFC 8621 §4.6, §4.8).

An Email is a content with copies in mailboxes: ``mailboxIds`` changes copy into new
mailboxes and remove copies from the others (a move when one replaces another);
``keywords`` are set on every copy (IMAP ``\\Deleted`` is kept as it was); destroy removes
every copy. Create composes the message (RFC 5322 + MIME) from the JMAP properties and
stores it once in all its mailboxes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from courriel.jmap import blob as blobs
from courriel.jmap.args import set_counts, set_error
from courriel.jmap.core import MAIL, Call, MethodError, method
from courriel.jmap.index import Account, EmailEntry, box_of, content_of, split_keywords
from courriel.mime.compose import Attachment, compose_message
from courriel.store.api import AppendTarget, Flag, FlagMode, QuotaExceeded, StoreError

_CREATE_PROPS = frozenset({
    "mailboxIds", "keywords", "receivedAt", "from", "to", "cc", "bcc", "replyTo", "sender", "subject", "sentAt",
    "messageId", "inReplyTo", "references", "textBody", "htmlBody", "attachments", "bodyValues", "headers",
    "bodyStructure",
})  # fmt: skip


class Invalid(Exception):
    def __init__(self, description: str, properties: list[str], kind: str = "invalidProperties") -> None:
        super().__init__(description)
        self.properties = properties
        self.kind = kind


def _mailbox_set(call: Call, value: object, boxes: set[int]) -> set[int]:
    if not isinstance(value, dict) or not value or not all(v is True for v in value.values()):
        raise Invalid("mailboxIds must map at least one mailbox id to true", ["mailboxIds"])
    out = set()
    for key in value:
        box = box_of(call.resolve_id(key))
        if box is None or box not in boxes:
            raise Invalid(f"no mailbox {key}", ["mailboxIds"])
        out.add(box)
    return out


def _keywords(value: object) -> dict[str, bool]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(v is True and isinstance(k, str) for k, v in value.items()):
        raise Invalid("keywords must map keywords to true", ["keywords"])
    for k in value:
        if not k or len(k) > 255 or any(c in k for c in "()[]{}%*\"\\ ") or not k.isascii() or not k.isprintable():
            raise Invalid(f"bad keyword {k!r}", ["keywords"])  # RFC 8621 §4.1.1: IMAP atom chars
    return {k.lower(): True for k in value}


def _date(value: object, prop: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{prop} must be a date", [prop])
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{prop} must be an RFC 3339 date", [prop]) from None


def _addresses(value: object, prop: str) -> list[tuple[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise Invalid(f"{prop} must be an array of EmailAddress", [prop])
    out = []
    for a in value:
        if not isinstance(a, dict) or not isinstance(a.get("email"), str) or "\r" in a["email"] or "\n" in a["email"]:
            raise Invalid(f"{prop} must be an array of EmailAddress", [prop])
        name = a.get("name") or ""
        if not isinstance(name, str):
            raise Invalid(f"{prop}: name must be a string", [prop])
        out.append((name, a["email"]))
    return out


def _text_of(obj: dict[str, Any], key: str) -> str | None:
    parts = obj.get(key)
    if parts is None:
        return None
    values = obj.get("bodyValues") or {}
    if not isinstance(parts, list) or len(parts) != 1 or not isinstance(parts[0], dict):
        raise Invalid(f"{key} must hold one part", [key])
    pid = parts[0].get("partId")
    value = values.get(pid) if isinstance(values, dict) else None
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        raise Invalid(f"{key}: partId must name a bodyValues entry", [key, "bodyValues"])
    return str(value["value"])


def _from_structure(obj: dict[str, Any]) -> dict[str, Any]:
    """A ``bodyStructure`` (§4.6) as textBody/htmlBody/attachments: its first text/plain and
    text/html leaves with a partId are the bodies, leaves with a blobId the attachments. The
    multipart nesting is the one compose writes (mixed > alternative > related)."""
    if any(k in obj for k in ("textBody", "htmlBody", "attachments")):
        raise Invalid("bodyStructure excludes textBody, htmlBody and attachments", ["bodyStructure"])
    out = {k: v for k, v in obj.items() if k != "bodyStructure"}
    stack, depth = [(obj["bodyStructure"], 0)], 0
    attachments: list[Any] = []
    while stack:
        part, depth = stack.pop()
        if not isinstance(part, dict) or depth > 10:
            raise Invalid("bodyStructure must be an EmailBodyPart tree", ["bodyStructure"])
        sub = part.get("subParts")
        if isinstance(sub, list) and sub:
            stack.extend((p, depth + 1) for p in reversed(sub))
            continue
        ptype = str(part.get("type") or "text/plain").lower()
        if isinstance(part.get("partId"), str) and ptype in ("text/plain", "text/html"):
            key = "textBody" if ptype == "text/plain" else "htmlBody"
            if key in out:
                raise Invalid(f"more than one {ptype} body part", ["bodyStructure"])
            out[key] = [part]
        elif isinstance(part.get("blobId"), str):
            attachments.append(part)
        else:
            raise Invalid("each leaf needs a partId (text) or a blobId", ["bodyStructure"])
    if attachments:
        out["attachments"] = attachments
    return out


async def compose(acct: Account, obj: dict[str, Any]) -> bytes:
    """The raw message for an Email/set create (§4.6)."""
    bad = [k for k in obj if k not in _CREATE_PROPS and not k.startswith("header:")]
    if bad:
        raise Invalid("properties that cannot be set", bad)
    if "bodyStructure" in obj:
        obj = _from_structure(obj)
    attachments = []
    for att in obj.get("attachments") or []:
        if not isinstance(att, dict) or not isinstance(att.get("blobId"), str):
            raise Invalid("attachments need a blobId", ["attachments"])
        try:
            data, ctype = await blobs.read_blob(acct, att["blobId"])
        except LookupError:
            raise Invalid(f"blob {att['blobId']} not found", ["attachments"], "blobNotFound") from None
        name = str(att["name"]) if isinstance(att.get("name"), str) else "attachment"
        ctype = str(att["type"]) if isinstance(att.get("type"), str) else ctype
        cid = str(att["cid"]) if isinstance(att.get("cid"), str) else None
        attachments.append(Attachment(name, data, ctype, cid, att.get("disposition") == "inline"))
    extra: list[tuple[str, str]] = []
    for key, value in obj.items():
        if key.startswith("header:"):
            name = key.split(":")[1]
            if not isinstance(value, str) or key.count(":") != 1:
                raise Invalid("only header:Name (raw form, a string) can be set", [key])
            extra.append((name, value.strip()))
    ids = {k: obj.get(k) for k in ("messageId", "inReplyTo", "references")}
    for k, v in ids.items():
        if v is not None and (not isinstance(v, list) or not all(isinstance(i, str) for i in v)):
            raise Invalid(f"{k} must be an array of message ids", [k])
    subject = obj.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise Invalid("subject must be a string", ["subject"])
    from_ = _addresses(obj.get("from"), "from") or [("", acct.address)]
    try:
        return compose_message(
            from_=from_,
            to=_addresses(obj.get("to"), "to"),
            cc=_addresses(obj.get("cc"), "cc"),
            bcc=_addresses(obj.get("bcc"), "bcc"),
            reply_to=_addresses(obj.get("replyTo"), "replyTo"),
            subject=subject,
            text=_text_of(obj, "textBody"),
            html=_text_of(obj, "htmlBody"),
            attachments=[a for a in attachments if not a.inline],
            inline=[a for a in attachments if a.inline],
            message_id=(ids["messageId"] or [None])[0],
            in_reply_to=(ids["inReplyTo"] or [None])[0],
            references=ids["references"] or (),
            headers=extra,
            date=_date(obj.get("sentAt"), "sentAt"),
            keep_bcc=True,
        )
    except ValueError as exc:
        raise Invalid(str(exc), ["from"]) from None


async def _create(call: Call, obj: dict[str, Any], boxes: set[int]) -> dict[str, Any]:
    acct = call.account
    targets = _mailbox_set(call, obj.get("mailboxIds"), boxes)
    flags, kws = split_keywords(_keywords(obj.get("keywords")))
    received = _date(obj.get("receivedAt"), "receivedAt")
    data = await compose(acct, obj)
    return await _store(acct, data, targets, flags, kws, received)


async def _store(acct: Account, data: bytes, targets: set[int], flags: Flag, kws: frozenset[str], received: datetime | None) -> dict[str, Any]:
    appended = await acct.store.deliver(data, [AppendTarget(b, flags, kws) for b in sorted(targets)], received)
    content = appended[0].content_id
    entry = (await acct.index()).emails.get(content)
    return {"id": f"M{content}", "blobId": blobs.message_blob_id(content), "threadId": entry.thread if entry else None, "size": len(data)}


def _patched(current: dict[str, bool], patch: dict[str, Any], prop: str) -> dict[str, bool] | None:
    """Apply ``prop`` (whole value) or ``prop/key`` patches (RFC 8620 §5.3 PatchObject)."""
    if prop in patch:
        value = patch[prop]
        if any(k.startswith(prop + "/") for k in patch):
            raise Invalid(f"{prop} both replaced and patched", [prop])
        return dict(value) if isinstance(value, dict) else value
    keys = [k for k in patch if k.startswith(prop + "/")]
    if not keys:
        return None
    out = dict(current)
    for k in keys:
        name = k[len(prop) + 1 :].replace("~1", "/").replace("~0", "~")
        if patch[k] is True:
            out[name] = True
        elif patch[k] is None:
            out.pop(name, None)
        else:
            raise Invalid(f"{k} must be true or null", [prop])
    return out


async def _update(call: Call, entry: EmailEntry, patch: dict[str, Any], boxes: set[int]) -> None:
    store = call.account.store
    bad = [k for k in patch if k.split("/")[0] not in ("keywords", "mailboxIds")]
    if bad:
        raise Invalid("only keywords and mailboxIds can change", bad)
    current_boxes = {f"B{b}": True for b in entry.mailbox_ids}
    new_boxes = _patched(current_boxes, patch, "mailboxIds")
    new_kw = _patched(entry.jmap_keywords(), patch, "keywords")
    if new_kw is not None:
        new_kw = _keywords(new_kw)
    copies = list(entry.copies)
    if new_boxes is not None:
        target = _mailbox_set(call, new_boxes, boxes)
        have = {b for b, _ in copies}
        add = sorted(target - have)
        drop = [(b, u) for b, u in copies if b not in target]
        src_box, src_uid = copies[0]
        for dst in add:
            if drop:  # a move keeps it one operation (RFC 6851), flags and all
                b, u = drop.pop()
                pairs = await store.move(b, [u], dst)
                copies = [c for c in copies if c != (b, u)]
                src_box, src_uid = dst, pairs[0][1] if pairs else src_uid
            else:
                pairs = await store.copy(src_box, [src_uid], dst)
            copies.extend((dst, new) for _, new in pairs)
        for b, u in drop:
            await store.delete_messages(b, [u])
            copies = [c for c in copies if c != (b, u)]
    if new_kw is not None:
        flags, kws = split_keywords(new_kw)
        for b, u in copies:
            deleted = Flag(0)
            for info in await store.list_messages(b, [u]):
                deleted = info.flags & Flag.DELETED
            await store.store_flags(b, [u], FlagMode.REPLACE, flags | deleted, kws)


@method("Email/set", MAIL)
async def email_set(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    create, update, destroy = set_counts(args, acct.ctx.cfg.jmap.max_objects_in_set)
    old_state = await acct.check_state(args.get("ifInState"))
    boxes = {b for b, m in (await acct.mailboxes()).items() if not m.noselect}
    out: dict[str, Any] = {"accountId": acct.id, "oldState": old_state}
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    for cid, obj in create.items():
        try:
            created[cid] = await _create(call, obj, boxes)
            call.created_ids[cid] = created[cid]["id"]
        except Invalid as exc:
            not_created[cid] = set_error(exc.kind, str(exc), properties=exc.properties)
        except QuotaExceeded as exc:
            not_created[cid] = set_error("overQuota", str(exc))
        except (MethodError, StoreError) as exc:
            not_created[cid] = set_error("invalidProperties", str(exc))
    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    for eid, patch in update.items():
        entry = (await acct.index()).emails.get(content_of(call.resolve_id(eid)) or -1)
        if entry is None:
            not_updated[eid] = set_error("notFound")
            continue
        try:
            await _update(call, entry, patch, boxes)
            updated[eid] = None
        except Invalid as exc:
            not_updated[eid] = set_error(exc.kind, str(exc), properties=exc.properties)
        except QuotaExceeded as exc:
            not_updated[eid] = set_error("overQuota", str(exc))
        except (MethodError, StoreError) as exc:
            not_updated[eid] = set_error("invalidProperties", str(exc))
    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}
    for eid in destroy:
        entry = (await acct.index()).emails.get(content_of(call.resolve_id(eid)) or -1)
        if entry is None:
            not_destroyed[eid] = set_error("notFound")
            continue
        for b, u in entry.copies:
            await acct.store.delete_messages(b, [u])
        destroyed.append(eid)
    out["newState"] = await acct.state()
    out.update(created=created or None, updated=updated or None, destroyed=destroyed or None)
    out.update(notCreated=not_created or None, notUpdated=not_updated or None, notDestroyed=not_destroyed or None)
    return out


@method("Email/import", MAIL)
async def email_import(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    emails = args.get("emails")
    if not isinstance(emails, dict) or not all(isinstance(v, dict) for v in emails.values()):
        raise MethodError("invalidArguments", "emails must map creation ids to EmailImport objects")
    if len(emails) > acct.ctx.cfg.jmap.max_objects_in_set:
        raise MethodError("requestTooLarge", "too many emails")
    old_state = await acct.check_state(args.get("ifInState"))
    boxes = {b for b, m in (await acct.mailboxes()).items() if not m.noselect}
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    for cid, obj in emails.items():
        try:
            if not isinstance(obj.get("blobId"), str):
                raise Invalid("blobId is required", ["blobId"])
            try:
                data, _ = await blobs.read_blob(acct, call.resolve_id(obj["blobId"]))
            except LookupError:
                raise Invalid(f"blob {obj['blobId']} not found", ["blobId"], "blobNotFound") from None
            if not data:
                raise Invalid("an empty blob is not a message", ["blobId"])
            targets = _mailbox_set(call, obj.get("mailboxIds"), boxes)
            flags, kws = split_keywords(_keywords(obj.get("keywords")))
            created[cid] = await _store(acct, data, targets, flags, kws, _date(obj.get("receivedAt"), "receivedAt"))
            call.created_ids[cid] = created[cid]["id"]
        except Invalid as exc:
            not_created[cid] = set_error(exc.kind, str(exc), properties=exc.properties)
        except QuotaExceeded as exc:
            not_created[cid] = set_error("overQuota", str(exc))
        except (MethodError, StoreError) as exc:
            not_created[cid] = set_error("invalidProperties", str(exc))
    return {
        "accountId": acct.id, "oldState": old_state, "newState": await acct.state(),
        "created": created or None, "notCreated": not_created or None,
    }  # fmt: skip


@method("Email/copy", MAIL)
async def email_copy(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """RFC 8620 §5.4 / RFC 8621 §4.7: copy between two accounts. A user has one account here,
    and fromAccountId "MUST be different to the accountId", so no copy can succeed: the same
    account is invalidArguments, any other is fromAccountNotFound (within one account,
    Email/set on mailboxIds is the way)."""
    source = args.get("fromAccountId")
    if not isinstance(source, str):
        raise MethodError("invalidArguments", "fromAccountId is required")
    if source == call.account.id:
        raise MethodError("invalidArguments", "fromAccountId must differ from accountId (RFC 8620 §5.4)")
    raise MethodError("fromAccountNotFound", "this server has one account per user")
