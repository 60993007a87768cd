"""Email/query, Email/queryChanges, Email/changes (RFC 8621 §4.3-4.5) and SearchSnippet/get (§5).

Filters: conditions on mailboxes, dates, sizes and keywords are checked on the account
index; text conditions (text, from, to, cc, bcc, subject, body, header) compile to the
store's search keys (the same SQL as IMAP SEARCH, full-text index included), run once per
mailbox. Sorting runs on the index's sort fields (RFC 5256 base subject, sort addresses).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, overload

from courriel.jmap.args import bool_arg, ids_arg, int_arg
from courriel.jmap.core import MAIL, Call, MethodError, invalid, method
from courriel.jmap.index import AccountIndex, EmailEntry, box_of, content_of, email_id, parse_state
from courriel.jmap.sync import Changes, Life, compute, parse_max_changes
from courriel.mime.content import full_text
from courriel.mime.structure import body_from_json
from courriel.store.api import BodyContains, HeaderContains, SearchKey

_TEXT_CONDITIONS = ("text", "from", "to", "cc", "bcc", "subject", "body", "header")
_CONDITIONS = frozenset({
    "inMailbox", "inMailboxOtherThan", "before", "after", "minSize", "maxSize", "allInThreadHaveKeyword",
    "someInThreadHaveKeyword", "noneInThreadHaveKeyword", "hasKeyword", "notKeyword", "hasAttachment", *_TEXT_CONDITIONS,
})  # fmt: skip
SORTS = ("receivedAt", "size", "from", "to", "subject", "sentAt", "hasKeyword", "allInThreadHaveKeyword", "someInThreadHaveKeyword")
MAX_DEPTH = 16
MAX_TEXT_CONDITIONS = 16
_CACHED_QUERIES = 16
_CONTENT_SORTS = frozenset({"receivedAt", "size", "from", "to", "subject", "sentAt"})


def _date(value: object) -> datetime:
    if not isinstance(value, str):
        raise invalid("dates must be UTCDate strings")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"bad date {value[:40]}") from None


def _store_key(name: str, value: object) -> SearchKey:
    if name == "header":
        if not isinstance(value, list) or not 1 <= len(value) <= 2 or not all(isinstance(v, str) for v in value):
            raise invalid("header must be [name] or [name, value]")
        return HeaderContains(value[0], value[1] if len(value) == 2 else "")
    if not isinstance(value, str):
        raise invalid(f"{name} must be a string")
    if name == "text":
        return BodyContains(value, whole=True)  # IMAP TEXT: the header fields and the text
    if name == "body":
        return BodyContains(value)
    return HeaderContains({"from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc", "subject": "Subject"}[name], value)


class Filter:
    """A compiled FilterOperator/FilterCondition tree (§4.4.1), evaluated per Email."""

    def __init__(self, acct_index: AccountIndex, raw: object) -> None:
        self.idx = acct_index
        self.text_keys: list[SearchKey] = []
        self.matches: list[set[int]] = []  # content ids per text key, filled by prepare()
        self.attachment_ids: set[int] | None = None
        self.wants_attachments = False
        self.narrow: list[int] = []  # text slots (>= 0), or -1 - mailbox id
        self.pred = self._compile(raw, 0) if raw is not None else (lambda e: True)
        # A condition object with inMailbox: only that mailbox needs searching.
        box = box_of(raw.get("inMailbox")) if isinstance(raw, dict) and "operator" not in raw else None
        self.scope = {box} if box is not None else None

    def _compile(self, raw: object, depth: int) -> Callable[[EmailEntry], bool]:
        if not isinstance(raw, dict) or depth > MAX_DEPTH:
            raise invalid("filter must be a FilterOperator or FilterCondition object")
        if "operator" in raw:
            op, conds = raw.get("operator"), raw.get("conditions")
            if op not in ("AND", "OR", "NOT") or not isinstance(conds, list) or set(raw) - {"operator", "conditions"}:
                raise invalid("bad FilterOperator")
            subs = [self._compile(c, depth + 1) for c in conds]
            if op == "AND":
                return lambda e: all(s(e) for s in subs)
            if op == "OR":
                return lambda e: any(s(e) for s in subs)
            return lambda e: not any(s(e) for s in subs)
        narrowing = [k for k in raw if k in ("inMailbox", *_TEXT_CONDITIONS)] if depth == 0 else []
        preds = [self._condition(k, v) for k, v in raw.items() if k not in narrowing]
        for k in narrowing:  # checked as sets of content ids (see candidates), not per Email
            self._condition(k, raw[k])
            self.narrow.append(len(self.text_keys) - 1 if k != "inMailbox" else -1 - (box_of(raw[k]) or 0))
        if not preds:
            return lambda e: True
        return lambda e: all(p(e) for p in preds)

    def candidates(self) -> set[int] | None:
        """The Emails the top-level inMailbox and text conditions allow (after prepare)."""
        sets: list[set[int]] = [self.matches[n] if n >= 0 else self.idx.members(-1 - n) for n in self.narrow]
        if not sets:
            return None
        sets.sort(key=len)
        out = set(sets[0])
        for other in sets[1:]:
            out &= other
        return out

    def _condition(self, name: str, value: Any) -> Callable[[EmailEntry], bool]:
        if name not in _CONDITIONS:
            raise MethodError("unsupportedFilter", f"unknown filter condition {name}")
        threads = self.idx.threads
        emails = self.idx.emails
        if name == "inMailbox":
            box = box_of(value)
            return lambda e: box in e.mailbox_ids
        if name == "inMailboxOtherThan":
            if not isinstance(value, list):
                raise invalid("inMailboxOtherThan must be an array")
            others = {box_of(v) for v in value}
            return lambda e: bool(e.mailbox_ids - others)
        if name in ("before", "after"):
            when = _date(value)
            return (lambda e: e.received_at < when) if name == "before" else (lambda e: e.received_at >= when)
        if name in ("minSize", "maxSize"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise invalid(f"{name} must be an integer")
            return (lambda e: e.size >= value) if name == "minSize" else (lambda e: e.size < value)
        if name in ("hasKeyword", "notKeyword"):
            if not isinstance(value, str):
                raise invalid(f"{name} must be a keyword")
            return (lambda e: e.has_keyword(value)) if name == "hasKeyword" else (lambda e: not e.has_keyword(value))
        if name.endswith("InThreadHaveKeyword"):
            if not isinstance(value, str):
                raise invalid(f"{name} must be a keyword")
            mode = name[: -len("InThreadHaveKeyword")]

            def in_thread(e: EmailEntry) -> bool:
                have = [emails[c].has_keyword(value) for c in threads.get(e.thread, [e.content_id])]
                return all(have) if mode == "all" else any(have) if mode == "some" else not any(have)

            return in_thread
        if name == "hasAttachment":
            if not isinstance(value, bool):
                raise invalid("hasAttachment must be a boolean")
            self.wants_attachments = True
            return lambda e: (e.content_id in (self.attachment_ids or set())) == value
        slot = len(self.text_keys)
        if slot >= MAX_TEXT_CONDITIONS:  # each one is a store search per mailbox
            raise MethodError("unsupportedFilter", f"more than {MAX_TEXT_CONDITIONS} text conditions")
        self.text_keys.append(_store_key(name, value))
        self.matches.append(set())
        return lambda e: e.content_id in self.matches[slot]

    async def prepare(self, call: Call) -> None:
        """Run the text conditions and hasAttachment through the store, mailbox by mailbox."""
        if not self.text_keys and not self.wants_attachments:
            return
        store = call.account.store
        boxes = self.scope if self.scope is not None else {b for e in self.idx.emails.values() for b in e.boxes}
        for box in sorted(boxes):
            by_uid = self.idx.uids(box)
            for slot, key in enumerate(self.text_keys):
                for uid in await store.search(box, key):
                    content = by_uid.get(uid)
                    if content is not None:
                        self.matches[slot].add(content)
        if self.wants_attachments:
            self.attachment_ids = set()
            for box in sorted(boxes):
                uids = sorted(self.idx.uids(box))
                for start in range(0, len(uids), 1000):
                    for rec in await store.get_records(box, uids[start : start + 1000]):
                        if rec.has_attachment:
                            self.attachment_ids.add(rec.info.content_id)


def _sort_key(idx: AccountIndex, comp: object) -> tuple[Callable[[EmailEntry], Any], bool]:
    if not isinstance(comp, dict) or comp.get("property") not in SORTS:
        prop = comp.get("property") if isinstance(comp, dict) else comp
        raise MethodError("unsupportedSort", f"cannot sort on {prop}")
    prop = comp["property"]
    asc = comp.get("isAscending", True)
    if not isinstance(asc, bool):
        raise invalid("isAscending must be a boolean")
    kw = comp.get("keyword")
    if prop.endswith("Keyword") and not isinstance(kw, str):
        raise invalid(f"sort on {prop} needs a keyword")
    fields: dict[str, Callable[[EmailEntry], Any]] = {
        "receivedAt": lambda e: e.received_at,
        "size": lambda e: e.size,
        "from": lambda e: e.sort_from,
        "to": lambda e: e.sort_to,
        "subject": lambda e: e.base_subject,
        "sentAt": lambda e: e.sent_at or e.received_at,
        "hasKeyword": lambda e: e.has_keyword(kw or ""),
        "allInThreadHaveKeyword": lambda e: all(idx.emails[c].has_keyword(kw or "") for c in idx.threads[e.thread]),
        "someInThreadHaveKeyword": lambda e: any(idx.emails[c].has_keyword(kw or "") for c in idx.threads[e.thread]),
    }
    return fields[prop], asc


async def run_query(call: Call, args: dict[str, Any]) -> tuple[AccountIndex, list[str]]:
    """Every matching Email id in order (before position/limit)."""
    idx = await call.account.index()
    cache_key = json.dumps([args.get("filter"), args.get("sort"), args.get("collapseThreads")], sort_keys=True)
    cached = idx.queries.get(cache_key)
    if cached is not None:
        idx.queries.move_to_end(cache_key)
        return idx, cached
    flt = Filter(idx, args.get("filter"))
    await flt.prepare(call)
    sort = args.get("sort")
    if sort is None:
        sort = [{"property": "receivedAt", "isAscending": False}]
    if not isinstance(sort, list):
        raise invalid("sort must be an array")
    keys = [_sort_key(idx, c) for c in sort]
    allowed = flt.candidates()
    if all(c["property"] in _CONTENT_SORTS for c in sort):
        # The order of all Emails by content fields is kept with the index (flag changes keep it).
        order_key = json.dumps(sort, sort_keys=True)
        order = idx.orders.get(order_key)
        if order is None:
            entries = sorted(idx.emails.values(), key=lambda e: -e.content_id)
            for key, asc in reversed(keys):
                entries.sort(key=key, reverse=not asc)
            order = idx.orders[order_key] = [e.content_id for e in entries]
        if allowed is None:
            found = [e for e in (idx.emails[c] for c in order) if flt.pred(e)]
        elif len(allowed) < len(order) // 64:
            found = sorted((idx.emails[c] for c in allowed if flt.pred(idx.emails[c])), key=lambda e: -e.content_id)
            for key, asc in reversed(keys):  # few: sorting them beats walking the whole order
                found.sort(key=key, reverse=not asc)
        else:
            found = [e for e in (idx.emails[c] for c in order if c in allowed) if flt.pred(e)]
    else:
        pool = idx.emails.values() if allowed is None else (idx.emails[c] for c in allowed)
        found = sorted((e for e in pool if flt.pred(e)), key=lambda e: -e.content_id)
        for key, asc in reversed(keys):
            found.sort(key=key, reverse=not asc)
    if bool_arg(args, "collapseThreads"):
        seen: set[str] = set()
        collapsed = []
        for e in found:
            if e.thread not in seen:
                seen.add(e.thread)
                collapsed.append(e)
        found = collapsed
    ids = [e.id for e in found]
    idx.queries[cache_key] = ids
    while len(idx.queries) > _CACHED_QUERIES:
        idx.queries.popitem(last=False)
    return idx, ids


def _quick_form(args: dict[str, Any]) -> tuple[int | None, bool] | None:
    """(mailbox or None for all, ascending) when the query is a plain listing: no filter or
    only inMailbox, sorted by receivedAt alone (or by default), threads not collapsed."""
    flt, sort = args.get("filter"), args.get("sort")
    box = None
    if flt is not None and (
        not isinstance(flt, dict) or set(flt) != {"inMailbox"} or (box := box_of(flt["inMailbox"])) is None
    ):
        return None
    asc = False
    if sort is not None:
        if not isinstance(sort, list) or len(sort) != 1 or not isinstance(sort[0], dict):
            return None
        comp = sort[0]
        if comp.get("property") != "receivedAt" or set(comp) - {"property", "isAscending", "collation"}:
            return None
        if not isinstance(asc := comp.get("isAscending", True), bool):
            return None
    if args.get("collapseThreads") not in (None, False):
        return None
    return box, asc


class EmailIds(Sequence[str]):
    """Email ids over a list of content ids, made only for the slice a response shows (a
    first listing of a large mailbox spares a string per Email)."""

    def __init__(self, contents: list[int]) -> None:
        self.contents = contents

    def __len__(self) -> int:
        return len(self.contents)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [email_id(c) for c in self.contents[i]]
        return email_id(self.contents[i])

    def __contains__(self, value: object) -> bool:
        return (content_of(value) or -1) in self.contents

    def index(self, value: object, start: int = 0, stop: int | None = None) -> int:
        content = content_of(value)
        if content is None:
            raise ValueError(f"{value!r} is not in the list")
        return self.contents.index(content, start, len(self.contents) if stop is None else stop)


async def quick_query(call: Call, args: dict[str, Any]) -> EmailIds | None:
    """A plain listing answered from the store while the account index is not built yet (the
    first request after a start on a large account): one grouped SQL read of the copies'
    internal dates, in the order :func:`run_query` gives (ties: higher content id first).
    None when the index is ready or the query needs it."""
    form = _quick_form(args)
    if form is None or await call.account.ready_index() is not None:
        return None
    box, asc = form
    rows = await call.account.store.account_received(call.account.user_id, box)
    if asc:
        rows.sort(key=lambda r: (r[1], -r[0]))
    else:
        rows.reverse()  # (received, content id) descending
    return EmailIds([c for c, _ in rows])


#: Deepest page end (position + limit) read with :meth:`Store.received_page`; beyond it the
#: whole mailbox's dates are cheaper (:meth:`Store.account_received`).
QUICK_PAGE_END = 2000


async def quick_page(call: Call, args: dict[str, Any]) -> dict[str, Any] | None:
    """Email/query's answer for a first page of one mailbox by receivedAt descending, from the
    newest rows of the mailbox alone (:meth:`Store.received_page`), while the account index is
    not built: the same answer as the whole listing gives. None when the query is not such a
    page (another form, an anchor, a position from the end, a deep page, an argument to reject)
    or the index is ready."""
    form = _quick_form(args)
    if form is None or form[0] is None or form[1] or args.get("anchor") is not None:
        return None
    acct = call.account
    position, limit = args.get("position", 0) or 0, args.get("limit")
    cap = acct.ctx.cfg.jmap.max_objects_in_get
    given = (position, limit if limit is not None else 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in given):
        return None  # the full path rejects it
    count = cap if limit is None else min(limit, cap)
    if position + count > QUICK_PAGE_END or await acct.ready_index() is not None:
        return None
    state = await acct.state()
    rows, total = await acct.store.received_page(acct.user_id, form[0], position + count, bool_arg(args, "calculateTotal"))
    out: dict[str, Any] = {
        "accountId": acct.id, "queryState": state, "canCalculateChanges": True, "position": position,
        "ids": [email_id(c) for c, _ in rows[position:]],
    }  # fmt: skip
    if total is not None:
        out["total"] = total
    if limit is not None and count != limit:
        out["limit"] = count
    return out


@method("Email/query", MAIL)
async def email_query(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    page = await quick_page(call, args)
    if page is not None:
        return page
    state = await acct.state()
    ids: Sequence[str] | None = await quick_query(call, args)
    if ids is None:
        _, ids = await run_query(call, args)
    position = args.get("position", 0) or 0
    if not isinstance(position, int) or isinstance(position, bool):
        raise invalid("position must be an integer")
    limit = int_arg(args, "limit", None, 0)
    anchor = args.get("anchor")
    if anchor is not None:  # RFC 8620 §5.5: anchor and anchorOffset replace position
        if anchor not in ids:
            raise MethodError("anchorNotFound")
        offset = args.get("anchorOffset", 0) or 0
        if not isinstance(offset, int):
            raise invalid("anchorOffset must be an integer")
        start = max(0, ids.index(anchor) + offset)
    elif position < 0:
        start = max(0, len(ids) + position)
    else:
        start = position
    cap = acct.ctx.cfg.jmap.max_objects_in_get
    limit = cap if limit is None else min(limit, cap)
    out: dict[str, Any] = {
        "accountId": acct.id, "queryState": state, "canCalculateChanges": True, "position": start,
        "ids": ids[start : start + limit],
    }  # fmt: skip
    if bool_arg(args, "calculateTotal"):
        out["total"] = len(ids)
    if limit != int_arg(args, "limit", limit, 0):
        out["limit"] = limit
    return out


async def email_changes_since(call: Call, since: int, max_changes: int | None) -> Changes[str]:
    acct = call.account
    current = await acct.modseq()
    if since > current:
        raise MethodError("cannotCalculateChanges", "state from the future")
    copies, complete = await acct.store.message_changes(acct.user_id, since)
    if not complete:
        raise MethodError("cannotCalculateChanges", "a mailbox was deleted since that state")
    objects: dict[str, list[Life]] = {}
    for c in copies:
        objects.setdefault(email_id(c.content_id), []).append(Life(c.created_modseq, c.modseq, c.removed))
    return compute(objects, since, current, max_changes)


@method("Email/changes", MAIL)
async def email_changes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    since = parse_state(args.get("sinceState"))
    ch = await email_changes_since(call, since, parse_max_changes(args.get("maxChanges")))
    return {
        "accountId": call.account.id, "oldState": str(since), "newState": str(ch.new_state),
        "hasMoreChanges": ch.has_more, "created": ch.created, "updated": ch.updated, "destroyed": ch.destroyed,
    }  # fmt: skip


@method("Email/queryChanges", MAIL)
async def email_query_changes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """RFC 8620 §5.6, without remembering old results: every Email changed since the state is
    removed, and re-added at its current index when it still matches (allowed: removed may
    name ids that were not in the old results)."""
    since = parse_state(args.get("sinceQueryState"))
    max_changes = parse_max_changes(args.get("maxChanges"))
    ch = await email_changes_since(call, since, None)
    idx, ids = await run_query(call, args)
    changed = set(ch.created) | set(ch.updated) | set(ch.destroyed)
    if bool_arg(args, "collapseThreads"):  # a thread's representative may have changed
        threads = {idx.emails[c].thread for i in changed if (c := content_of(i) or -1) in idx.emails}
        changed |= {email_id(c) for t in threads for c in idx.threads.get(t, [])}
    removed = sorted(changed)
    added = [{"id": i, "index": n} for n, i in enumerate(ids) if i in changed]
    if max_changes is not None and len(removed) + len(added) > max_changes:
        raise MethodError("tooManyChanges")
    out: dict[str, Any] = {
        "accountId": call.account.id, "oldQueryState": str(since), "newQueryState": str(ch.new_state),
        "removed": removed, "added": added,
    }  # fmt: skip
    if bool_arg(args, "calculateTotal"):
        out["total"] = len(ids)
    return out


# --- SearchSnippet/get (RFC 8621 §5) ----------------------------------------------------------


def _terms(raw: object, depth: int = 0) -> list[str]:
    if not isinstance(raw, dict) or depth > MAX_DEPTH:
        return []
    if "conditions" in raw and isinstance(raw["conditions"], list):
        if raw.get("operator") == "NOT":
            return []
        return [t for c in raw["conditions"] for t in _terms(c, depth + 1)]
    return [v for k, v in raw.items() if k in ("text", "subject", "body") and isinstance(v, str) and v.strip()]


def _mark(text: str, terms: list[str]) -> str | None:
    """HTML-escaped ``text`` with each term in <mark>; None when no term occurs."""
    if not terms:
        return None
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
    if not pattern.search(text):
        return None
    out, last = [], 0
    for m in pattern.finditer(text):
        out.append(html.escape(text[last : m.start()]) + "<mark>" + html.escape(m.group(0)) + "</mark>")
        last = m.end()
    return "".join(out) + html.escape(text[last:])


@method("SearchSnippet/get", MAIL)
async def search_snippet_get(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    ids = ids_arg(args, acct.ctx.cfg.jmap.max_objects_in_get, "emailIds") or []
    Filter(await acct.index(), args.get("filter"))  # validates
    terms = _terms(args.get("filter"))
    idx = await acct.index()
    found, not_found = [], []
    for eid in ids:
        entry = idx.emails.get(content_of(eid) or -1)
        if entry is None:
            not_found.append(eid)
            continue
        box, uid = entry.copies[0]
        recs = await acct.store.get_records(box, [uid])
        if not recs:
            not_found.append(eid)
            continue
        rec = recs[0]
        preview = None
        if terms:
            try:
                data = await acct.store.read_message(rec.blob)
                text = " ".join(full_text(data, body_from_json(rec.body_json)).split())
            except FileNotFoundError:
                text = ""
            lower = text.lower()
            hits = [lower.find(t.lower()) for t in terms if t.lower() in lower]
            if hits:
                start = max(0, min(hits) - 60)
                preview = _mark(text[start : start + 255], terms)  # §5.1: at most 255 octets of text
        found.append({"emailId": eid, "subject": _mark(rec.subject, terms), "preview": preview})
    return {"accountId": acct.id, "list": found, "notFound": not_found or None}
