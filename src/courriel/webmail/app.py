"""The webmail part of the http listener: routes, security headers, static files.

URLs: ``/`` (to the login page or the mail), ``/login``, ``/logout``, ``/mail/...`` (the
application), ``/static/...`` (our own CSS, script and images: no third-party code). Every
response of these paths gets the security headers below unless the handler set its own
(the sandboxed message frame does: :mod:`courriel.webmail.reader`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from courriel.web.app import WebPart
from courriel.webmail import actions, compose, devices, listing, live, login, reader
from courriel.webmail.common import WebError, Webmail, error_response, ids_in_range, route

if TYPE_CHECKING:
    from courriel.server import Context

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
#: Paths of this part (autoconfig owns /mail/config-v1.1.xml).
PREFIXES = ("/mail/", "/static/")
EXACT = ("/", "/login", "/logout", "/mail")


def ours(path: str) -> bool:
    return (path in EXACT or path.startswith(PREFIXES)) and path != "/mail/config-v1.1.xml"


class SecurityHeaders:
    """Adds :data:`HEADERS` (those not already set) to every response of the webmail."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not ours(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in HEADERS if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _plain(wm: Webmail, fn: Callable[[Webmail, Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        if not ids_in_range(request):
            return error_response(request, WebError(404, "Not found"))
        return await fn(wm, request)

    return endpoint


def routes(wm: Webmail) -> list[BaseRoute]:
    static = resources.files("courriel.webmail") / "static"
    box = "/mail/box/{mailbox_id:int}"
    return [
        Route("/", _plain(wm, login.root)),
        Route("/login", _plain(wm, login.login_page), methods=["GET", "POST"]),
        route(wm, "/logout", login.logout, ("POST",)),
        route(wm, "/mail/", listing.inbox),
        route(wm, "/mail/search", listing.search_redirect),
        route(wm, "/mail/folders", listing.folders),
        route(wm, box, listing.mailbox_page),
        route(wm, box + "/{uid:int}", reader.message_page),
        Route(box + "/{uid:int}/body", _plain(wm, reader.frame)),
        Route(box + "/{uid:int}/part/{section}", _plain(wm, reader.part)),
        route(wm, box + "/{uid:int}/raw", reader.raw),
        route(wm, "/mail/compose", compose.compose_page),
        route(wm, "/mail/send", compose.send, ("POST",)),
        route(wm, "/mail/draft", compose.save_draft, ("POST",)),
        route(wm, "/mail/upload", compose.upload, ("POST",)),
        route(wm, "/mail/upload/delete", compose.drop_upload, ("POST",)),
        route(wm, "/mail/action", actions.action, ("POST",)),
        route(wm, "/mail/events", live.events),
        route(wm, "/mail/sessions", devices.sessions_page),
        route(wm, "/mail/sessions/end", devices.end_sessions, ("POST",)),
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]


def part(ctx: Context) -> WebPart:
    wm = Webmail(ctx)
    return WebPart(name="webmail", routes=routes(wm), middleware=[Middleware(SecurityHeaders)],
                   on_startup=[wm.start], on_shutdown=[wm.stop], extra={"webmail": wm})  # fmt: skip
