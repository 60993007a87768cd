"""Thread/get and Thread/changes (RFC 8621 §3).

A Thread is IMAP's THREADID (RFC 8474 §5.2): Emails whose root Message-ID is the same.
Thread/changes derives from Email/changes; the thread of an Email destroyed since the state
is remembered by the process (see :func:`courriel.jmap.index.known_thread`); when it is not
known (e.g. after a restart), the answer is ``cannotCalculateChanges`` and the client
resynchronises.
"""

from __future__ import annotations

from typing import Any

from courriel.jmap.args import ids_arg
from courriel.jmap.core import MAIL, Call, MethodError, method
from courriel.jmap.index import content_of, email_id, known_thread, parse_state
from courriel.jmap.query import email_changes_since
from courriel.jmap.sync import parse_max_changes


@method("Thread/get", MAIL)
async def thread_get(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    ids = ids_arg(args, acct.ctx.cfg.jmap.max_objects_in_get)
    state = await acct.state()
    idx = await acct.index()
    found, not_found = [], []
    for tid in ids if ids is not None else sorted(idx.threads):
        members = idx.threads.get(tid)
        if members is None:
            not_found.append(tid)
        else:
            found.append({"id": tid, "emailIds": [email_id(c) for c in members]})
    return {"accountId": acct.id, "state": state, "list": found, "notFound": not_found}


@method("Thread/changes", MAIL)
async def thread_changes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    acct = call.account
    since = parse_state(args.get("sinceState"))
    ch = await email_changes_since(call, since, parse_max_changes(args.get("maxChanges")))
    idx = await acct.index()
    created = set(ch.created)
    touched: dict[str, bool] = {}  # thread -> had an Email at the old state
    for eid in [*ch.created, *ch.updated]:
        entry = idx.emails.get(content_of(eid) or -1)
        if entry is not None:
            touched.setdefault(entry.thread, False)
    for eid in ch.destroyed:
        thread = known_thread(acct.user_id, content_of(eid) or -1)
        if thread is None:
            raise MethodError("cannotCalculateChanges", "the thread of a destroyed Email is not known")
        touched[thread] = True
    out_created, out_updated, out_destroyed = [], [], []
    for thread, had_destroyed in touched.items():
        members = idx.threads.get(thread, [])
        existed = had_destroyed or any(email_id(c) not in created for c in members)
        if members and existed:
            out_updated.append(thread)
        elif members:
            out_created.append(thread)
        elif existed:
            out_destroyed.append(thread)
    return {
        "accountId": acct.id, "oldState": str(since), "newState": str(ch.new_state), "hasMoreChanges": ch.has_more,
        "created": out_created, "updated": out_updated, "destroyed": out_destroyed,
    }  # fmt: skip
