"""Changing messages: mark read or unread, flag, move, delete (to Trash; in Trash, for good).

One endpoint, ``POST /mail/action`` with ``mailbox``, one or more ``uid`` or ``thread`` (a
conversation row: every message of that thread in the folder), ``op`` and, for ``move``,
``target``; forms post it and redirect back, the script posts it with fetch.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from courriel.store.api import Flag, FlagMode
from courriel.webmail.common import WebError, Webmail, number, safe_next, wants_json
from courriel.webmail.sessions import Session
from courriel.webmail.threads import MAX_THREADS, thread_uids

FLAG_OPS = {
    "read": (FlagMode.ADD, Flag.SEEN),
    "unread": (FlagMode.REMOVE, Flag.SEEN),
    "flag": (FlagMode.ADD, Flag.FLAGGED),
    "unflag": (FlagMode.REMOVE, Flag.FLAGGED),
}
OPS = (*FLAG_OPS, "move", "delete")
MAX_UIDS = 1000
#: RFC 8474 THREADID as the store makes them (courriel.store.content.thread_id).
THREAD_ID = re.compile(r"T[0-9a-f]{20}|TC[0-9]{1,19}")


async def action(wm: Webmail, request: Request, session: Session) -> Response:
    form = await request.form()
    op = str(form.get("op") or "")
    if op not in OPS:
        raise WebError(400, "Unknown action")
    mailbox_id = number(form.get("mailbox"))
    if mailbox_id is None:
        raise WebError(400, "Which folder?")
    mailbox = await wm.mailbox(session, mailbox_id)
    chosen = {n for n in map(number, form.getlist("uid")) if n is not None and n < 1 << 32}
    # A conversation row names its thread: the action applies to all its messages here.
    threads = [str(t) for t in form.getlist("thread")]
    if len(threads) > MAX_THREADS or any(not THREAD_ID.fullmatch(t) for t in threads):
        raise WebError(400, "Bad conversation")
    chosen |= await thread_uids(wm, mailbox, threads)
    uids = sorted(chosen)
    if not uids or len(uids) > MAX_UIDS:
        raise WebError(400, f"Choose between 1 and {MAX_UIDS} messages")
    back = f"/mail/box/{mailbox.id}"
    if op in FLAG_OPS:
        mode, flag = FLAG_OPS[op]
        await wm.store.store_flags(mailbox.id, uids, mode, flag)
        back = safe_next(str(form.get("next") or ""), back)
        notice = ""
    elif op == "move":
        target_id = number(form.get("target"))
        if target_id is None:
            raise WebError(400, "Move to which folder?")
        target = await wm.mailbox(session, target_id)
        if target.noselect:
            raise WebError(400, "That folder cannot hold messages")
        if target.id != mailbox.id:
            await wm.store.move(mailbox.id, uids, target.id)
        notice = f"Moved to {target.name}"
    else:
        trash = await wm.special(session, "\\Trash")
        if mailbox.id == trash.id:
            await wm.store.delete_messages(mailbox.id, uids)
            notice = "Deleted"
        else:
            await wm.store.move(mailbox.id, uids, trash.id)
            notice = "Moved to Trash"
    if wants_json(request):
        return JSONResponse({"ok": True, "notice": notice})
    if notice:
        back += ("&" if "?" in back else "?") + "notice=" + notice.replace(" ", "+")
    return RedirectResponse(back, status_code=303)
