"""Mailbox/get, /changes, /query, /set (RFC 8621 §2) over the store's IMAP mailboxes.

A Mailbox's ``name`` is the last component of the store's hierarchical name (delimiter
``/``), ``parentId`` the mailbox of the name before it; ``role`` comes from the RFC 6154
special-use attribute (INBOX is ``inbox``).
"""

from __future__ import annotations

from typing import Any

from courriel.jmap.args import bool_arg, ids_arg, properties_arg, set_counts, set_error
from courriel.jmap.core import MAIL, Call, MethodError, invalid, method
from courriel.jmap.index import AccountIndex, box_of, mailbox_id, parse_state
from courriel.jmap.sync import Life, compute, parse_max_changes
from courriel.store.api import DELIMITER, INBOX, MAX_MAILBOX_NAME, Mailbox, StoreError

PROPERTIES = (
    "id", "name", "parentId", "role", "sortOrder", "totalEmails", "unreadEmails", "totalThreads",
    "unreadThreads", "myRights", "isSubscribed",
)  # fmt: skip
ROLES = {"inbox": None, "sent": "\\Sent", "drafts": "\\Drafts", "trash": "\\Trash", "junk": "\\Junk", "archive": "\\Archive"}
_RIGHTS = ("mayReadItems", "mayAddItems", "mayRemoveItems", "maySetSeen", "maySetKeywords", "mayCreateChild", "mayRename", "mayDelete", "maySubmit")


def role_of(box: Mailbox) -> str | None:
    if box.name == INBOX:
        return "inbox"
    if box.special_use:
        return box.special_use.lstrip("\\").lower()
    return None


def to_jmap(box: Mailbox, by_name: dict[str, Mailbox], idx: AccountIndex, subscribed: set[str]) -> dict[str, Any]:
    parent_name, _, leaf = box.name.rpartition(DELIMITER)
    parent = by_name.get(parent_name) if parent_name else None
    threads, unread_threads = idx.box_threads().get(box.id, (0, 0))
    selectable = not box.noselect
    rights = dict.fromkeys(_RIGHTS, True)
    rights["mayAddItems"] = rights["mayReadItems"] = selectable
    rights["mayDelete"] = rights["mayRename"] = box.name != INBOX
    role = role_of(box)
    return {
        "id": mailbox_id(box.id),
        "name": leaf,
        "parentId": mailbox_id(parent.id) if parent else None,
        "role": role,
        "sortOrder": 1 if role == "inbox" else 10 if role else 100,
        "totalEmails": box.messages,
        "unreadEmails": box.unseen,
        "totalThreads": threads,
        "unreadThreads": unread_threads,
        "myRights": rights,
        "isSubscribed": box.name in subscribed,
    }


@method("Mailbox/get", MAIL)
async def mailbox_get(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    ids = ids_arg(args, acct.ctx.cfg.jmap.max_objects_in_get)
    props = properties_arg(args, PROPERTIES, PROPERTIES)
    state = await acct.state()
    idx = await acct.index()
    boxes = await acct.mailboxes()
    by_name = {b.name: b for b in boxes.values()}
    subscribed = set(await acct.store.list_subscriptions(acct.user_id))
    found, not_found = [], []
    for mid in ids if ids is not None else [mailbox_id(b) for b in sorted(boxes)]:
        box = boxes.get(box_of(mid) or -1)
        if box is None:
            not_found.append(mid)
            continue
        full = to_jmap(box, by_name, idx, subscribed)
        found.append({k: full[k] for k in ["id", *props] if k in full})
    return {"accountId": acct.id, "state": state, "list": found, "notFound": not_found}


@method("Mailbox/changes", MAIL)
async def mailbox_changes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    since = parse_state(args.get("sinceState"))
    max_changes = parse_max_changes(args.get("maxChanges"))
    current = await acct.modseq()
    if since > current:
        raise MethodError("cannotCalculateChanges", "state from the future")
    objects = {
        mailbox_id(c.mailbox_id): [Life(c.created_modseq if not c.removed else 0, c.modseq, c.removed)]
        for c in await acct.store.mailbox_changes(acct.user_id, since)
    }
    ch = compute(objects, since, current, max_changes)
    return {
        "accountId": acct.id, "oldState": str(since), "newState": str(ch.new_state), "hasMoreChanges": ch.has_more,
        "created": ch.created, "updated": ch.updated, "destroyed": ch.destroyed, "updatedProperties": None,
    }  # fmt: skip


@method("Mailbox/query", MAIL)
async def mailbox_query(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """RFC 8621 §2.3: filter on parentId, name, role, hasAnyRole, isSubscribed; sort by name/sortOrder."""
    acct = call.account
    state = await acct.state()
    boxes = await acct.mailboxes()
    by_name = {b.name: b for b in boxes.values()}
    subscribed = set(await acct.store.list_subscriptions(acct.user_id))
    idx = await acct.index()
    items = [to_jmap(b, by_name, idx, subscribed) for b in boxes.values()]
    flt = args.get("filter") or {}
    if not isinstance(flt, dict):
        raise invalid("filter must be an object")
    for key, want in flt.items():
        if key == "parentId":
            items = [i for i in items if i["parentId"] == want]
        elif key == "name" and isinstance(want, str):
            items = [i for i in items if want.lower() in i["name"].lower()]
        elif key == "role":
            items = [i for i in items if i["role"] == want]
        elif key == "hasAnyRole" and isinstance(want, bool):
            items = [i for i in items if (i["role"] is not None) == want]
        elif key == "isSubscribed" and isinstance(want, bool):
            items = [i for i in items if i["isSubscribed"] == want]
        else:
            raise MethodError("unsupportedFilter", f"filter {key}")
    sort = args.get("sort") or [{"property": "sortOrder"}, {"property": "name"}]
    if not isinstance(sort, list):
        raise invalid("sort must be an array")
    for comp in reversed(sort):
        prop = comp.get("property") if isinstance(comp, dict) else None
        if prop not in ("name", "sortOrder"):
            raise MethodError("unsupportedSort", f"sort on {prop}")
        if prop == "name":
            items.sort(key=lambda i: str(i["name"]).lower(), reverse=not comp.get("isAscending", True))
        else:
            items.sort(key=lambda i: int(i["sortOrder"]), reverse=not comp.get("isAscending", True))
    ids = [i["id"] for i in items]
    position = args.get("position") or 0
    if not isinstance(position, int):
        raise invalid("position must be an integer")
    start = max(0, len(ids) + position) if position < 0 else position
    limit = args.get("limit")
    window = ids[start:] if not isinstance(limit, int) else ids[start : start + limit]
    return {
        "accountId": acct.id, "queryState": state, "canCalculateChanges": False, "position": start,
        "ids": window, "total": len(ids),
    }  # fmt: skip


def _full_name(boxes: dict[int, Mailbox], parent: object, name: object) -> str:
    if not isinstance(name, str) or not name or DELIMITER in name or len(name) > MAX_MAILBOX_NAME:
        raise ValueError("name must be non-empty, without '/'")
    if parent is None:
        return name
    box = boxes.get(box_of(parent) or -1)
    if box is None:
        raise LookupError("parentId not found")
    return box.name + DELIMITER + name


@method("Mailbox/set", MAIL)
async def mailbox_set(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    store = acct.store
    create, update, destroy = set_counts(args, acct.ctx.cfg.jmap.max_objects_in_set)
    old_state = await acct.check_state(args.get("ifInState"))
    remove_emails = bool_arg(args, "onDestroyRemoveEmails")
    out: dict[str, Any] = {"accountId": acct.id, "oldState": old_state}
    created: dict[str, Any] = {}
    not_created: dict[str, Any] = {}
    for cid, obj in create.items():
        boxes = await acct.mailboxes()
        bad = [k for k in obj if k not in ("name", "parentId", "role", "isSubscribed", "sortOrder")]
        role = obj.get("role")
        if bad or (role is not None and (role not in ROLES or role == "inbox")):
            not_created[cid] = set_error("invalidProperties", properties=bad or ["role"])
            continue
        try:
            full = _full_name(boxes, call.resolve_id(obj["parentId"]) if obj.get("parentId") else None, obj.get("name"))
            box = await store.create_mailbox(acct.user_id, full, ROLES[role] if role else None)
            if obj.get("isSubscribed"):
                await store.subscribe(acct.user_id, full)
        except (ValueError, LookupError) as exc:
            not_created[cid] = set_error("invalidProperties", str(exc), properties=["name", "parentId"])
            continue
        except MethodError as exc:
            not_created[cid] = set_error("invalidProperties", exc.description, properties=["parentId"])
            continue
        except StoreError as exc:
            not_created[cid] = set_error("invalidProperties", str(exc), properties=["name"])
            continue
        call.created_ids[cid] = mailbox_id(box.id)
        created[cid] = {"id": mailbox_id(box.id), "totalEmails": 0, "unreadEmails": 0, "totalThreads": 0, "unreadThreads": 0}
    updated: dict[str, Any] = {}
    not_updated: dict[str, Any] = {}
    for mid, patch in update.items():
        boxes = await acct.mailboxes()
        target = boxes.get(box_of(call.resolve_id(mid)) or -1)
        if target is None:
            not_updated[mid] = set_error("notFound")
            continue
        box = target
        bad = [k for k in patch if k not in ("name", "parentId", "isSubscribed", "sortOrder", "role")]
        if bad or ("role" in patch and patch["role"] != role_of(box)):
            not_updated[mid] = set_error("invalidProperties", "only name, parentId, isSubscribed may change", properties=bad or ["role"])
            continue
        try:
            if "name" in patch or "parentId" in patch:
                parent_name, _, leaf = box.name.rpartition(DELIMITER)
                by_name = {b.name: b for b in boxes.values()}
                parent: object = mailbox_id(by_name[parent_name].id) if parent_name in by_name else None
                if "parentId" in patch:
                    parent = call.resolve_id(patch["parentId"]) if patch["parentId"] else None
                full = _full_name(boxes, parent, patch.get("name", leaf))
                if full != box.name:
                    if full.startswith(box.name + DELIMITER):
                        raise ValueError("a mailbox cannot move under itself")
                    await store.rename_mailbox(acct.user_id, box.name, full)
                    box_name = full
                else:
                    box_name = box.name
            else:
                box_name = box.name
            if "isSubscribed" in patch:
                if patch["isSubscribed"]:
                    await store.subscribe(acct.user_id, box_name)
                else:
                    await store.unsubscribe(acct.user_id, box_name)
        except (ValueError, LookupError, MethodError, StoreError) as exc:
            not_updated[mid] = set_error("invalidProperties", str(exc), properties=["name", "parentId"])
            continue
        updated[mid] = None
    destroyed: list[str] = []
    not_destroyed: dict[str, Any] = {}
    for mid in destroy:
        boxes = await acct.mailboxes()
        target = boxes.get(box_of(call.resolve_id(mid)) or -1)
        if target is None:
            not_destroyed[mid] = set_error("notFound")
            continue
        box = target
        if box.name == INBOX:
            not_destroyed[mid] = set_error("forbidden", "INBOX cannot be destroyed")
            continue
        if any(b.name.startswith(box.name + DELIMITER) for b in boxes.values()):
            not_destroyed[mid] = set_error("mailboxHasChild")  # RFC 8621 §2.5
            continue
        if box.messages and not remove_emails:
            not_destroyed[mid] = set_error("mailboxHasEmail")
            continue
        try:
            await store.delete_mailbox(acct.user_id, box.name)
            await store.unsubscribe(acct.user_id, box.name)
        except StoreError as exc:
            not_destroyed[mid] = set_error("forbidden", str(exc))
            continue
        destroyed.append(mid)
    out["newState"] = await acct.state()
    out.update(created=created or None, updated=updated or None, destroyed=destroyed or None)
    out.update(notCreated=not_created or None, notUpdated=not_updated or None, notDestroyed=not_destroyed or None)
    return out
