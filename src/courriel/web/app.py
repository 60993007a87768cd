"""Assemble the ASGI application of the ``http`` listener from its parts.

A part is a module function ``part(ctx) -> WebPart`` registered in :data:`PARTS` as a
``module:function`` string; a module that is not present is left out (like the services of
``courriel.server``). Parts own URL prefixes and must not overlap:

- ``courriel.jmap``: ``/.well-known/jmap``, ``/jmap/...`` (RFC 8620)
- ``courriel.webmail``: ``/`` and ``/mail/...``, ``/static/...``
- ``courriel.metrics``: ``/metrics``
- ``courriel.autoconfig``: ``/.well-known/autoconfig/...``, ``/mail/config-v1.1.xml``,
  ``/autodiscover/...``, ``/.well-known/mta-sts.txt``
- ``courriel.acme``: ``/.well-known/acme-challenge/...``
- ``courriel.trace``: ``/journey/...`` (a message's journey and its transcripts)
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from courriel.server import Context

log = logging.getLogger("courriel.http")

#: Parts of the http application, in routing order (the webmail's catch-all comes last).
PARTS: tuple[str, ...] = (
    "courriel.metrics.http:part",
    "courriel.autoconfig.http:part",
    "courriel.acme.http:part",
    "courriel.jmap.http:part",
    "courriel.webmail.app:part",
    "courriel.trace.web:part",
)


@dataclass
class WebPart:
    """What a part contributes: routes, ASGI middleware, and start/stop hooks."""

    name: str
    routes: Sequence[BaseRoute] = ()
    middleware: Sequence[Middleware] = ()
    on_startup: Sequence[Callable[[], Awaitable[None]]] = ()
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = ()
    extra: dict[str, object] = field(default_factory=dict)


def _present(spec: str) -> bool:
    module = spec.partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def load_parts(ctx: Context, specs: Sequence[str] = PARTS) -> list[WebPart]:
    parts = []
    for spec in specs:
        if not _present(spec):
            continue
        module, _, func = spec.partition(":")
        factory: Callable[[Context], WebPart] = getattr(importlib.import_module(module), func)
        parts.append(factory(ctx))
    return parts


class BodyLimit:
    """Refuse request bodies larger than ``[http] max_request_size`` with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _plain(send, 413, b"request body too large\n")
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _plain(send, 413, b"request body too large\n")


class _TooLarge(Exception):
    pass


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_app(ctx: Context, parts: list[WebPart] | None = None) -> Starlette:
    parts = load_parts(ctx) if parts is None else parts

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for part in parts:
            for hook in part.on_startup:
                await hook()
        try:
            yield
        finally:
            for part in reversed(parts):
                for hook in part.on_shutdown:
                    try:
                        await hook()
                    except Exception:
                        log.exception("http: stopping %s", part.name)

    routes = [route for part in parts for route in part.routes]
    middleware = [Middleware(BodyLimit, limit=ctx.cfg.http.max_request_size)]
    middleware += [m for part in parts for m in part.middleware]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.ctx = ctx
    app.state.parts = {part.name: part for part in parts}
    return app
