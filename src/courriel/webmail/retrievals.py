"""Webmail retrievals as message events: "retrieved", protocol "webmail", the client's
address, for the journey (``courriel journey``, courriel.trace.journey).

A message opened, one of its parts or the whole message downloaded: each once per session
(``Session.retrieved``), buffered here and written by the webmail's background task in one
batch every ``FLUSH_SECONDS`` (and at shutdown, or as soon as ``MAX_PENDING`` wait), never
on the request's path. Like the other message events they are informative: a failed write
is logged and changes nothing else (courriel.trace.events).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from courriel.store.api import MessageEvent
from courriel.trace import events
from courriel.web.auth import client_ip

if TYPE_CHECKING:
    from courriel.server import Context
    from courriel.webmail.sessions import Session

PROTOCOL = "webmail"
FLUSH_SECONDS = 2.0
MAX_PENDING = 5_000
#: What one session remembers having recorded (beyond it, repeats are recorded again).
MAX_REMEMBERED = 10_000


class WebRetrievals:
    def __init__(self, ctx: Context) -> None:
        self.store = ctx.store
        self.enabled = events.enabled(ctx)
        self._pending: list[MessageEvent] = []

    def note(self, session: Session, request: Request, content_id: int, part: str = "") -> None:
        """The client of ``session`` got message ``content_id`` (or its part ``part``;
        ``"raw"`` for the whole message as a file)."""
        key = (content_id, part)
        if not self.enabled or not content_id or key in session.retrieved:
            return
        if len(session.retrieved) < MAX_REMEMBERED:
            session.retrieved.add(key)
        details: dict[str, Any] = {"peek": False}
        if part:
            details["part"] = part
        client = events.client_text(client_ip(request), request.client.port if request.client else 0)
        self._pending.append(
            MessageEvent(session.user_id, content_id, time.time(), "retrieved", PROTOCOL, client, details)
        )
        if len(self._pending) >= MAX_PENDING:
            self.flush_later()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush_later(self) -> None:
        """Hand what is buffered to a background write."""
        batch, self._pending = self._pending, []
        events.write_later(self.store, batch)

    async def flush(self) -> None:
        """Write what is buffered now (at shutdown)."""
        batch, self._pending = self._pending, []
        await events.write(self.store, batch)
