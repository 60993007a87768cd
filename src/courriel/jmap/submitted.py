"""EmailSubmission/get, /changes, /query, /queryChanges (RFC 8621 §7.1-7.4): the submissions
made over JMAP, remembered in the store (:class:`EmailSubmissionRecord`).

Submissions are final at once (no delayed send): ``undoStatus`` is always "final". The
deliveryStatus of each recipient starts as "yes" (delivered locally) or "queued" (handed to
the outbound queue); while some recipient is "queued", reading a submission looks at the
outbound queue (the recipient's state and last reply) and, once the queue has let the
message go, at the "relayed" message events of the user (which MX took it, its reply):
a changed status is written back, which moves the state string, so /changes reports it.

The state string of EmailSubmission is the user's largest submission change number (see
:meth:`Store.add_email_submission`); destroyed submissions stay as tombstones for /changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from courriel.jmap.args import bool_arg, ids_arg, int_arg, properties_arg
from courriel.jmap.core import SUBMISSION, Call, MethodError, invalid, method
from courriel.jmap.headers import utc_date
from courriel.jmap.index import Account
from courriel.jmap.sync import Life, compute, parse_max_changes
from courriel.store.api import EmailSubmissionRecord, MessageEvent, NotFound, QueuedMessage

PROPERTIES = (
    "id", "identityId", "emailId", "threadId", "envelope", "sendAt", "undoStatus", "deliveryStatus",
    "dsnBlobIds", "mdnBlobIds",
)  # fmt: skip
#: The reply a recipient shows while its status is not known better.
QUEUED_REPLY = "250 2.0.0 Queued for delivery"
LOCAL_REPLY = "250 2.0.0 Delivered to the local mailbox"
FAILED_REPLY = "550 5.0.0 Delivery failed (a delivery status notification was sent)"


def initial_status(recipients: Sequence[str], local: Sequence[str]) -> dict[str, Any]:
    """deliveryStatus right after the submission (§7: DeliveryStatus per rcptTo address)."""
    here = {a.lower() for a in local}
    out: dict[str, Any] = {}
    for rcpt in recipients:
        if rcpt.lower() in here:
            out[rcpt] = {"smtpReply": LOCAL_REPLY, "delivered": "yes", "displayed": "unknown"}
        else:
            out[rcpt] = {"smtpReply": QUEUED_REPLY, "delivered": "queued", "displayed": "unknown"}
    return out


def current_status(
    status: dict[str, Any], queued: QueuedMessage | None, relayed: Sequence[MessageEvent]
) -> dict[str, Any]:
    """deliveryStatus updated from the outbound queue entry of the submission (None: the
    queue has let it go) and the "relayed" events naming its queue id. Pure."""
    out = {}
    accepted: dict[str, str] = {}
    for e in relayed:
        for rcpt in e.details.get("recipients") or []:
            if isinstance(rcpt, str):
                accepted.setdefault(rcpt.lower(), str(e.details.get("reply") or "250 2.0.0 OK"))
    rows = {r.address.lower(): r for r in queued.recipients} if queued is not None else {}
    for rcpt, st in status.items():
        st = dict(st)
        if st.get("delivered") == "queued":
            row = rows.get(rcpt.lower())
            if rcpt.lower() in accepted:
                st.update(delivered="yes", smtpReply=accepted[rcpt.lower()])
            elif row is not None:
                if row.state == "delivered":
                    st.update(delivered="yes", smtpReply=row.last_error or "250 2.0.0 Delivered")
                elif row.state == "failed":
                    st.update(delivered="no", smtpReply=row.last_error or FAILED_REPLY)
                elif row.last_error:  # deferred: the last temporary failure
                    st["smtpReply"] = row.last_error
            elif queued is None and relayed:
                # Gone from the queue, and the relayed events of that queue entry do not name
                # it: it failed (a final state; the queue keeps nothing after the last one).
                st.update(delivered="no", smtpReply=FAILED_REPLY)
            elif queued is None:
                st["delivered"] = "unknown"  # let go without a record of how (events off)
        out[rcpt] = st
    return out


async def refresh(acct: Account, records: list[EmailSubmissionRecord]) -> list[EmailSubmissionRecord]:
    """Records whose queued recipients have moved on are written back (their state moves)."""
    pending = [
        r for r in records
        if not r.destroyed and r.queue_id is not None
        and any(s.get("delivered") == "queued" for s in r.delivery.values())
    ]  # fmt: skip
    if not pending:
        return records
    queue = {m.id: m for m in await acct.store.list_queue()}
    relayed = [e for e in await acct.store.message_events(acct.user_id, 0) if e.kind == "relayed"]
    changed: dict[str, EmailSubmissionRecord] = {}
    for r in pending:
        mine = [e for e in relayed if e.details.get("queue_id") == r.queue_id]
        status = current_status(r.delivery, queue.get(r.queue_id or 0), mine)
        if status != r.delivery:
            try:
                n = await acct.store.update_email_submission(acct.user_id, r.id, status)
            except NotFound:  # destroyed meanwhile
                continue
            changed[r.id] = EmailSubmissionRecord(
                r.id, r.user_id, r.identity_id, r.email_id, r.thread_id, r.envelope, r.send_at, r.queue_id,
                status, r.created, n, r.destroyed,
            )  # fmt: skip
    return [changed.get(r.id, r) for r in records]


async def records(acct: Account, tombstones: bool = False) -> tuple[list[EmailSubmissionRecord], int]:
    """The user's submissions (refreshed) and the EmailSubmission state."""
    found = await refresh(acct, await acct.store.email_submissions(acct.user_id, tombstones=True))
    state = max((r.changed for r in found), default=0)
    return (found if tombstones else [r for r in found if not r.destroyed]), state


def to_jmap(r: EmailSubmissionRecord, props: Sequence[str]) -> dict[str, Any]:
    send_at = utc_date(datetime.fromtimestamp(r.send_at, UTC))
    full: dict[str, Any] = {
        "id": r.id, "identityId": r.identity_id, "emailId": r.email_id, "threadId": r.thread_id,
        "envelope": r.envelope, "sendAt": send_at, "undoStatus": "final", "deliveryStatus": r.delivery,
        "dsnBlobIds": [], "mdnBlobIds": [],
    }  # fmt: skip
    return {"id": r.id, **{p: full[p] for p in props}}


def parse_state(value: object, current: int) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 19 or int(value) > current:
        raise MethodError("cannotCalculateChanges", "not a state of this server")
    return int(value)


@method("EmailSubmission/get", SUBMISSION)
async def submission_get(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    ids = ids_arg(args, acct.ctx.cfg.jmap.max_objects_in_get)
    props = properties_arg(args, PROPERTIES, PROPERTIES)
    if any(p not in PROPERTIES for p in props):
        raise invalid("unknown property")
    found, state = await records(acct)
    by_id = {r.id: r for r in found}
    wanted = [call.resolve_id(i) for i in ids] if ids is not None else list(by_id)
    return {
        "accountId": acct.id, "state": str(state),
        "list": [to_jmap(by_id[i], props) for i in wanted if i in by_id],
        "notFound": [i for i in wanted if i not in by_id],
    }  # fmt: skip


@method("EmailSubmission/changes", SUBMISSION)
async def submission_changes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    found, state = await records(acct, tombstones=True)
    since = parse_state(args.get("sinceState"), state)
    lives = {r.id: [Life(r.created, r.changed, r.destroyed)] for r in found}
    ch = compute(lives, since, state, parse_max_changes(args.get("maxChanges")))
    return {
        "accountId": acct.id, "oldState": str(since), "newState": str(ch.new_state), "hasMoreChanges": ch.has_more,
        "created": ch.created, "updated": ch.updated, "destroyed": ch.destroyed,
    }  # fmt: skip


def _utc(value: object) -> float:
    if not isinstance(value, str):
        raise invalid("dates must be UTCDate strings")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise invalid(f"bad date {value[:40]}") from None


def _id_list(value: object, name: str) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{name} must be an array of ids")
    return set(value)


def compile_filter(raw: object, call: Call, depth: int = 0) -> Callable[[EmailSubmissionRecord], bool]:
    """§7.3 FilterCondition (identityIds, emailIds, threadIds, undoStatus, before, after) and
    FilterOperator (RFC 8620 §5.5)."""
    if raw is None:
        return lambda r: True
    if not isinstance(raw, dict) or depth > 16:
        raise invalid("filter must be an object")
    if "operator" in raw:
        op, conds = raw.get("operator"), raw.get("conditions")
        if op not in ("AND", "OR", "NOT") or not isinstance(conds, list):
            raise MethodError("unsupportedFilter", "bad FilterOperator")
        subs = [compile_filter(c, call, depth + 1) for c in conds]
        if op == "AND":
            return lambda r: all(f(r) for f in subs)
        if op == "OR":
            return lambda r: any(f(r) for f in subs)
        return lambda r: not any(f(r) for f in subs)
    tests: list[Callable[[EmailSubmissionRecord], bool]] = []
    for key, value in raw.items():
        if key == "identityIds":
            want = _id_list(value, key)
            tests.append(lambda r, w=want: r.identity_id in w)  # type: ignore[misc]
        elif key == "emailIds":
            want = {call.resolve_id(v) for v in _id_list(value, key)}
            tests.append(lambda r, w=want: r.email_id in w)  # type: ignore[misc]
        elif key == "threadIds":
            want = _id_list(value, key)
            tests.append(lambda r, w=want: r.thread_id in w)  # type: ignore[misc]
        elif key == "undoStatus":
            if value not in ("pending", "final", "canceled"):
                raise invalid("undoStatus must be pending, final or canceled")
            tests.append(lambda r, v=value: v == "final")  # type: ignore[misc]
        elif key == "before":
            t = _utc(value)
            tests.append(lambda r, t=t: r.send_at < t)  # type: ignore[misc]
        elif key == "after":
            t = _utc(value)
            tests.append(lambda r, t=t: r.send_at >= t)  # type: ignore[misc]
        else:
            raise MethodError("unsupportedFilter", f"filter {key[:100]}")
    return lambda r: all(f(r) for f in tests)


_SORTS: dict[str, Callable[[EmailSubmissionRecord], Any]] = {
    "emailId": lambda r: r.email_id, "threadId": lambda r: r.thread_id, "sentAt": lambda r: r.send_at,
}  # fmt: skip


def run_query(found: list[EmailSubmissionRecord], call: Call, args: dict[str, Any]) -> list[str]:
    keep = compile_filter(args.get("filter"), call)
    items = [r for r in found if keep(r)]  # by creation: the order when all else is equal
    sort = args.get("sort") or []
    if not isinstance(sort, list):
        raise invalid("sort must be an array")
    for comp in reversed(sort):
        prop = comp.get("property") if isinstance(comp, dict) else None
        if not isinstance(prop, str) or prop not in _SORTS:
            raise MethodError("unsupportedSort", f"sort on {str(prop)[:100]}")
        items.sort(key=_SORTS[prop], reverse=comp.get("isAscending", True) is False)
    return [r.id for r in items]


@method("EmailSubmission/query", SUBMISSION)
async def submission_query(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    found, state = await records(acct)
    ids = run_query(found, call, args)
    position = args.get("position", 0) or 0
    if not isinstance(position, int) or isinstance(position, bool):
        raise invalid("position must be an integer")
    anchor = args.get("anchor")
    if anchor is not None:  # RFC 8620 §5.5
        if anchor not in ids:
            raise MethodError("anchorNotFound")
        offset = args.get("anchorOffset", 0) or 0
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise invalid("anchorOffset must be an integer")
        start = max(0, ids.index(anchor) + offset)
    else:
        start = max(0, len(ids) + position) if position < 0 else position
    cap = acct.ctx.cfg.jmap.max_objects_in_get
    asked = int_arg(args, "limit", None, 0)
    limit = cap if asked is None else min(asked, cap)
    out: dict[str, Any] = {
        "accountId": acct.id, "queryState": str(state), "canCalculateChanges": True, "position": start,
        "ids": ids[start : start + limit],
    }  # fmt: skip
    if bool_arg(args, "calculateTotal"):
        out["total"] = len(ids)
    if asked is not None and asked > cap:
        out["limit"] = limit
    return out


@method("EmailSubmission/queryChanges", SUBMISSION)
async def submission_query_changes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """RFC 8620 §5.6 without remembering old results: every submission changed since the
    state is removed, and re-added at its index when it matches (sort and filter properties
    never change, so the others keep their relative order)."""
    acct = call.account
    everything, state = await records(acct, tombstones=True)
    since = parse_state(args.get("sinceQueryState"), state)
    max_changes = parse_max_changes(args.get("maxChanges"))
    ids = run_query([r for r in everything if not r.destroyed], call, args)
    changed = {r.id for r in everything if r.changed > since}
    removed = sorted(changed)
    added = [{"id": i, "index": n} for n, i in enumerate(ids) if i in changed]
    if max_changes is not None and len(removed) + len(added) > max_changes:
        raise MethodError("tooManyChanges")
    out: dict[str, Any] = {
        "accountId": acct.id, "oldQueryState": str(since), "newQueryState": str(state),
        "removed": removed, "added": added,
    }  # fmt: skip
    if bool_arg(args, "calculateTotal"):
        out["total"] = len(ids)
    return out
