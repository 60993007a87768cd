"""Live updates: a Server-Sent Events stream per open page, fed by the store's change feed.

Each stream subscribes to its user's changes (``store.changes.subscribe``) and sends one
``change`` event naming the mailboxes touched (the page then reloads its folder tree and,
when it shows one of them, its list) at most every ``COALESCE`` seconds; a comment line
every ``PING`` seconds keeps proxies from closing it. A stream ends after ``LIFETIME``
seconds (the browser's EventSource reconnects at once, see ``retry``), which bounds how long
an open page can hold a server that is stopping.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from courriel.store.changes import Change
from courriel.webmail.common import Webmail
from courriel.webmail.sessions import Session

PING = 15.0
LIFETIME = 8.0 * 60
COALESCE = 0.3
MAX_STREAMS_PER_USER = 20


async def events(wm: Webmail, request: Request, session: Session) -> Response:
    streams = wm.live_streams  # per user, bounded: a page left open in many tabs
    if streams.get(session.user_id, 0) >= MAX_STREAMS_PER_USER:
        return Response("too many live streams\n", status_code=429, media_type="text/plain")
    return StreamingResponse(_stream(wm, request, session), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip


async def _stream(wm: Webmail, request: Request, session: Session) -> AsyncIterator[bytes]:
    streams = wm.live_streams
    pending: set[int] = set()
    wake = asyncio.Event()

    def on_change(changes: Sequence[Change]) -> None:
        for change in changes:
            mailbox_id = getattr(change, "mailbox_id", None)
            pending.add(mailbox_id if isinstance(mailbox_id, int) else 0)
        wake.set()

    sub = wm.store.changes.subscribe(session.user_id, on_change)
    streams[session.user_id] = streams.get(session.user_id, 0) + 1
    end = time.monotonic() + LIFETIME
    try:
        yield b"retry: 2000\n: hello\n\n"
        while time.monotonic() < end and await wm.sessions.alive(session):
            try:
                await asyncio.wait_for(wake.wait(), PING)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": ping\n\n"
                continue
            await asyncio.sleep(COALESCE)  # a burst of deliveries makes one event
            wake.clear()
            touched = sorted(pending)
            pending.clear()
            yield f"event: change\ndata: {json.dumps({'mailboxes': touched})}\n\n".encode()
    finally:
        sub.close()
        left = streams.get(session.user_id, 1) - 1
        if left > 0:
            streams[session.user_id] = left
        else:
            streams.pop(session.user_id, None)
