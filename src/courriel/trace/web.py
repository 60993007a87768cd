"""The journey page on the http listener: ``/journey/{mailbox_id}/{uid}`` (HTML timeline),
``.../json`` (the same as `courriel journey --json`) and ``.../transcript/{step}`` (the
transcript linked to one step: only transcripts of the user's own message are reachable).

Who is asking: the webmail's session cookie when the webmail part runs (its Webmail object
is in ``app.state.parts``), else HTTP Basic through courriel.web.auth. Pages carry their own
strict CSP (no script at all; our stylesheet only).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from courriel.trace.events import journey_events, message_id_of
from courriel.trace.journey import CIRCLED, build, duration_text, step_details
from courriel.trace.service import traces_dir
from courriel.web.app import WebPart
from courriel.web.auth import basic_user

if TYPE_CHECKING:
    from courriel.server import Context

CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
HEADERS = {"content-security-policy": CSP, "x-frame-options": "DENY", "referrer-policy": "no-referrer",
           "x-content-type-options": "nosniff", "cache-control": "no-store"}  # fmt: skip
MAX_ID = 1 << 31


class JourneyPages:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("courriel.trace", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["duration"] = duration_text
        self.css = resources.files("courriel.trace").joinpath("static/journey.css").read_bytes()

    async def user(self, request: Request) -> tuple[int, str] | None:
        """(user id, address) of the webmail session, else of valid Basic credentials."""
        parts = getattr(request.app.state, "parts", {})
        webmail = parts.get("webmail")
        if webmail is not None:
            from courriel.webmail.sessions import COOKIE

            session = await webmail.extra["webmail"].sessions.get(request.cookies.get(COOKIE))
            if session is not None:
                return session.user_id, session.address
        creds = await basic_user(self.ctx, request)
        return (creds.user_id, creds.address) if creds is not None else None

    async def journey(self, request: Request) -> tuple[dict[str, Any], Any] | Response:
        who = await self.user(request)
        if who is None:
            if "webmail" in getattr(request.app.state, "parts", {}):
                return RedirectResponse("/login?next=" + quote(request.url.path, safe=""), status_code=303)
            return PlainTextResponse("authentication required\n", 401,
                                     headers={"www-authenticate": 'Basic realm="courriel", charset="UTF-8"'})  # fmt: skip
        user_id, address = who
        mailbox_id, uid = int(request.path_params["mailbox_id"]), int(request.path_params["uid"])
        store = self.ctx.store
        mailbox = await store.get_mailbox_by_id(mailbox_id) if 0 < mailbox_id < MAX_ID else None
        if mailbox is None or mailbox.user_id != user_id or not 0 < uid < MAX_ID:
            return PlainTextResponse("no such message\n", 404, headers=HEADERS)
        infos = await store.list_messages(mailbox.id, [uid])
        data = (await store.read_messages(mailbox.id, [uid])).get(uid)
        if not infos or data is None:
            return PlainTextResponse("no such message\n", 404, headers=HEADERS)
        events = await journey_events(store, user_id, infos[0].content_id, message_id_of(data))
        found = build(data, address, mailbox.name, infos[0].internal_date, traces_dir(self.ctx.cfg.data_dir), events)
        return found, mailbox

    async def page(self, request: Request) -> Response:
        result = await self.journey(request)
        if isinstance(result, Response):
            return result
        found, mailbox = result
        steps = [{**s, "mark": CIRCLED[s["step"]], "details": step_details(s), "index": i}
                 for i, s in enumerate(found["steps"])]  # fmt: skip
        html = self.env.get_template("journey.html").render(
            journey=found, steps=steps, base=f"/journey/{mailbox.id}/{request.path_params['uid']}",
            back=f"/mail/box/{mailbox.id}/{request.path_params['uid']}",
        )  # fmt: skip
        return HTMLResponse(html, headers=HEADERS)

    async def json(self, request: Request) -> Response:
        result = await self.journey(request)
        if isinstance(result, Response):
            return result
        return JSONResponse(result[0], headers=HEADERS)

    async def transcript(self, request: Request) -> Response:
        result = await self.journey(request)
        if isinstance(result, Response):
            return result
        found, _ = result
        index = int(request.path_params["step"])
        steps = found["steps"]
        if not 0 <= index < len(steps) or not steps[index].get("transcript"):
            return PlainTextResponse("no transcript for this step\n", 404, headers=HEADERS)
        step = steps[index]
        root = traces_dir(self.ctx.cfg.data_dir).resolve()
        path = Path(step["transcript"]).resolve()
        if not path.is_relative_to(root):
            return PlainTextResponse("no transcript for this step\n", 404, headers=HEADERS)
        try:
            lines = path.read_text(encoding="utf-8")
            entries = [json.loads(line) for line in lines.splitlines() if line]
        except (OSError, ValueError):
            return PlainTextResponse("transcript expired\n", 404, headers=HEADERS)
        html = self.env.get_template("transcript.html").render(
            step={**step, "mark": CIRCLED[step["step"]]}, entries=entries,
            back=f"/journey/{request.path_params['mailbox_id']}/{request.path_params['uid']}",
        )  # fmt: skip
        return HTMLResponse(html, headers=HEADERS)

    async def stylesheet(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css", headers={**HEADERS, "cache-control": "max-age=3600"})


def part(ctx: Context) -> WebPart:
    pages = JourneyPages(ctx)
    return WebPart(
        name="journey",
        routes=[
            Route("/journey/static/journey.css", pages.stylesheet),
            Route("/journey/{mailbox_id:int}/{uid:int}", pages.page),
            Route("/journey/{mailbox_id:int}/{uid:int}/json", pages.json),
            Route("/journey/{mailbox_id:int}/{uid:int}/transcript/{step:int}", pages.transcript),
        ],
    )
