"""What every webmail handler shares: the session check, CSRF, typed errors, templates.

Handlers are ``async def h(wm, request, session) -> Response``; :func:`route` wraps them so
that the session cookie is checked (GET without a session redirects to the login page,
other requests get 401), every POST carries the session's CSRF token (form field ``csrf``
or header ``X-CSRF-Token``) and a same-origin ``Origin`` when the browser sends one, and the
typed errors (:class:`WebError`, store errors) become responses in this one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from courriel.store.api import Mailbox, NotFound, QuotaExceeded, StoreError
from courriel.webmail.sessions import COOKIE, Session, SessionTable

if TYPE_CHECKING:
    from courriel.server import Context

log = logging.getLogger("courriel.webmail")

PAGE_SIZE = 50
#: Seconds between two removals of expired sessions from the store.
PRUNE_SECONDS = 3600.0
#: Order of the folder tree: INBOX, then the special-use mailboxes, then the rest by name.
SPECIAL_ORDER = ("\\Drafts", "\\Sent", "\\Archive", "\\Junk", "\\Trash")


class WebError(Exception):
    """A request refused with an HTTP status and a message safe to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Webmail:
    """The webmail's state: the server context, the session table and the templates."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        http = ctx.cfg.http
        self.sessions = SessionTable(ctx.store, http.webmail_session_timeout, http.webmail_session_max_age)
        from courriel.webmail.retrievals import WebRetrievals

        self.retrievals = WebRetrievals(ctx)
        self._task: asyncio.Task[None] | None = None
        self.live_streams: dict[int, int] = {}  # user id -> open event streams
        from courriel.webmail.threads import ThreadCache  # it builds on this module

        self.threads: ThreadCache = ThreadCache()
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("courriel.webmail", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["urlquote"] = lambda v: quote(str(v), safe="")
        self.env.filters["short_date"] = short_date
        self.env.filters["size"] = human_size

    # --- the background task: batched writes (last-seen times, retrievals), pruning -----
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._background())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.sessions.flush()
        await self.retrievals.flush()

    async def _background(self) -> None:
        from courriel.webmail.retrievals import FLUSH_SECONDS
        from courriel.webmail.sessions import TOUCH_SECONDS

        touched = time.monotonic()
        pruned = touched - PRUNE_SECONDS  # the first round also removes what expired while stopped
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            self.retrievals.flush_later()
            now = time.monotonic()
            try:
                if now - touched >= TOUCH_SECONDS:
                    touched = now
                    await self.sessions.flush()
                if now - pruned >= PRUNE_SECONDS:
                    pruned = now
                    if n := await self.sessions.prune():
                        log.info("webmail: %d expired sessions removed", n)
            except Exception as exc:  # the next round tries again
                log.warning("webmail: session upkeep failed: %s", exc)

    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        return HTMLResponse(self.env.get_template(name).render(**values), status_code=status)

    async def mailbox(self, session: Session, mailbox_id: int) -> Mailbox:
        mailbox = await self.store.get_mailbox_by_id(mailbox_id)
        if mailbox is None or mailbox.user_id != session.user_id:
            raise WebError(404, "No such folder")
        return mailbox

    async def mailboxes(self, session: Session) -> list[Mailbox]:
        return sort_mailboxes(await self.store.list_mailboxes(session.user_id))

    async def chrome(self, session: Session, current: int | None = None) -> dict[str, Any]:
        """What every page around a view needs: the folder tree and the clock."""
        from courriel.webmail.listing import folder_tree

        mailboxes = await self.mailboxes(session)
        return {"session": session, "folders": folder_tree(mailboxes, current), "mailboxes": mailboxes,
                "now": datetime.now(UTC)}  # fmt: skip

    async def special(self, session: Session, use: str) -> Mailbox:
        for mailbox in await self.store.list_mailboxes(session.user_id):
            if mailbox.special_use == use:
                return mailbox
        name = use.lstrip("\\")
        found = await self.store.get_mailbox(session.user_id, name)
        return found if found is not None else await self.store.create_mailbox(session.user_id, name, use)


def sort_mailboxes(mailboxes: Sequence[Mailbox]) -> list[Mailbox]:
    def key(m: Mailbox) -> tuple[int, str]:
        if m.name.upper() == "INBOX":
            return (0, "")
        if m.special_use in SPECIAL_ORDER and "/" not in m.name:
            return (1 + SPECIAL_ORDER.index(m.special_use), "")
        return (10, m.name.casefold())

    return sorted(mailboxes, key=key)


def wants_json(request: Request) -> bool:
    return request.headers.get("x-requested-with") == "fetch"


def same_origin(request: Request) -> bool:
    """A browser's Origin header, when it names an origin, must name this server. ("null"
    is what Referrer-Policy: no-referrer makes browsers send for our own POSTs; the CSRF
    token and the SameSite=Strict cookie are the protection, this is one more fence.)"""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return True
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme == request.url.scheme


def safe_next(value: str | None, default: str = "/mail/") -> str:
    """A redirect target inside the webmail only (no scheme, no host, no //)."""
    if value and value.startswith("/mail/") and "//" not in value and "\\" not in value:
        return value
    return default


Handler = Callable[[Webmail, Request, Session], Awaitable[Response]]


def route(wm: Webmail, path: str, handler: Handler, methods: Sequence[str] = ("GET",)) -> Route:
    async def endpoint(request: Request) -> Response:
        if not ids_in_range(request):
            return error_response(request, WebError(404, "Not found"))
        session = await wm.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            if request.method == "GET" and not wants_json(request):
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
            return error_response(request, WebError(401, "Not logged in"))
        try:
            if request.method == "POST":
                if not same_origin(request):
                    raise WebError(403, "Cross-origin request refused")
                token = request.headers.get("x-csrf-token")
                if token is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")
                ):
                    token = str((await request.form()).get("csrf") or "")
                if not session.check_csrf(token):
                    raise WebError(403, "Missing or wrong CSRF token; reload the page")
            return await handler(wm, request, session)
        except WebError as exc:
            return error_response(request, exc)
        except NotFound as exc:
            return error_response(request, WebError(404, str(exc) or "Not found"))
        except QuotaExceeded as exc:
            return error_response(request, WebError(507, str(exc) or "Over quota"))
        except StoreError as exc:
            return error_response(request, WebError(400, str(exc)))

    return Route(path, endpoint, methods=list(methods))


def error_response(request: Request, exc: WebError) -> Response:
    if exc.status >= 500:
        log.warning("webmail: %s %s: %s", request.method, request.url.path, exc.message)
    if wants_json(request) or (request.method == "POST" and request.headers.get("x-csrf-token")):
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    body = (
        "<!doctype html><html><head><meta charset=utf-8><title>Error</title>"
        '<link rel="stylesheet" href="/static/app.css"></head><body class="error-page"><main>'
        f"<h1>{exc.status}</h1><p>{_escape(exc.message)}</p>"
        '<p><a href="/mail/">Back to the mail</a></p></main></body></html>'
    )
    return HTMLResponse(body, status_code=exc.status)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def short_date(when: datetime, now: datetime) -> str:
    when = when.astimezone(UTC)
    if when.date() == now.date():
        return when.strftime("%H:%M")
    if when.year == now.year:
        return when.strftime("%d %b")
    return when.strftime("%Y-%m-%d")


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


_NUMBER = re.compile(r"[0-9]{1,18}")


def number(value: object) -> int | None:
    """A form or query value that is a plain decimal id (ASCII digits, below 10**18), else None."""
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        return int(value)
    return None


def ids_in_range(request: Request) -> bool:
    """Path ids (``{name:int}``) small enough for the store (no 500 on a 30-digit id)."""
    return all(not isinstance(v, int) or v < 10**18 for v in request.path_params.values())


def int_param(value: str | None, default: int, low: int = 1, high: int = 1 << 31) -> int:
    n = number((value or "").strip())
    return default if n is None else max(low, min(high, n))
