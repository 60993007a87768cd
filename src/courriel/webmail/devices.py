"""The user's sessions (devices): where and when each logged in, when it was last seen,
from which address and browser; any of them, or all but this one, can be ended here.

``GET /mail/sessions`` lists them (:meth:`SessionTable.sessions_of`, from the store: the
sessions of every node); ``POST /mail/sessions/end`` with ``id`` (one of the user's own
sessions, never another user's) or ``others=1`` ends them in the store; other nodes see it
within ``sessions.RECHECK`` seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from courriel.webmail.common import WebError, Webmail, number
from courriel.webmail.sessions import Session


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def sessions_page(wm: Webmail, request: Request, session: Session) -> Response:
    rows = [
        {"id": r.id, "current": r.id == session.id, "created": _when(r.created), "last_seen": _when(r.last_seen),
         "client_ip": r.client_ip or "unknown", "user_agent": r.user_agent or "unknown"}
        for r in await wm.sessions.sessions_of(session.user_id)
    ]  # fmt: skip
    return wm.render("sessions.html", **await wm.chrome(session), rows=rows,
                     notice=request.query_params.get("notice", "")[:100])  # fmt: skip


async def end_sessions(wm: Webmail, request: Request, session: Session) -> Response:
    form = await request.form()
    if form.get("others") == "1":
        ended = 0
        for row in await wm.sessions.sessions_of(session.user_id):
            if row.id != session.id and await wm.sessions.end(session.user_id, row.id):
                ended += 1
        notice = f"Ended {ended} other session{'' if ended == 1 else 's'}"
    else:
        target = number(form.get("id"))
        if target is None or target == session.id:
            raise WebError(400, "Which session? (Log out ends this one.)")
        if not await wm.sessions.end(session.user_id, target):
            raise WebError(404, "No such session")
        notice = "Session ended"
    return RedirectResponse("/mail/sessions?notice=" + notice.replace(" ", "+"), status_code=303)
