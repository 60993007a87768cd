"""Message events: the facts of a stored message's journey, kept for any message (no
transcript needed). ``delivered`` (local delivery: mailboxes, Sieve actions, junk verdict),
``retrieved`` (POP3 RETR/TOP, IMAP FETCH of the message or of its body: client address,
protocol, whether it was a peek), ``relayed`` (the outbound queue delivered it).

They are informative, not acknowledged data: written after the fact, in batches, without an
fsync of their own (the store's ``add_message_events``); a failure to write them is logged
and changes nothing else. A session records each (user, message) once, buffers its
retrievals and writes them in one batch at close, or when ``FLUSH_SECONDS`` have passed or
``MAX_PENDING`` are waiting: a client fetching 10,000 messages costs one insert, not 10,000.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from courriel.store.api import MessageEvent, Store

if TYPE_CHECKING:
    from courriel.net import Connection
    from courriel.server import Context

log = logging.getLogger(__name__)

FLUSH_SECONDS = 30.0
MAX_PENDING = 10_000

#: Background writes still running (kept referenced until done).
_TASKS: set[asyncio.Task[None]] = set()

#: Whether deliveries record their events (``[trace] message_events``, set by ``serve``).
RECORD = True


def client_text(ip: str, port: int) -> str:
    """The client as transcripts name it (``192.0.2.7:5123``, ``[2001:db8::7]:5123``)."""
    if not port:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def message_id_of(data: bytes) -> str:
    """The Message-ID of a message's header (without <>), or ""."""
    from courriel.mime.headers import scan_header

    end = data.find(b"\r\n\r\n")
    header = data[: end + 2] if end >= 0 else data[:65536]
    fields, _ = scan_header(header, 0, len(header))
    for name, value in fields:
        if name.lower() == "message-id":
            return value.strip().strip("<>").strip()
    return ""


async def journey_events(store: Store, user_id: int, content_id: int, message_id: str) -> list[MessageEvent]:
    """A stored message's events, and the "relayed" events of mail the user sent with the
    same Message-ID (they are kept under content id 0: the queued copy is not stored)."""
    found = await store.message_events(user_id, content_id)
    wanted = message_id.strip().strip("<>")
    if wanted:
        found += [
            e for e in await store.message_events(user_id, 0)
            if e.kind == "relayed" and e.details.get("message_id") == wanted
        ]  # fmt: skip
    return found


def enabled(ctx: Context) -> bool:
    return bool(ctx.cfg.trace.message_events)


async def write(store: Store, events: Sequence[MessageEvent]) -> None:
    """Write events now; a failure is logged, never raised (they are informative)."""
    if not events:
        return
    try:
        await store.add_message_events(events)
    except Exception as exc:
        log.warning("events: %d message events not recorded: %s", len(events), exc)


def write_later(store: Store, events: Sequence[MessageEvent]) -> None:
    """Write events in the background (after an acknowledged delivery, at a session's close)."""
    if not events:
        return
    try:
        task = asyncio.get_running_loop().create_task(write(store, list(events)))
    except RuntimeError:  # no running loop: the process is ending
        return
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def write_later_from(store: Store, making: Coroutine[Any, Any, list[MessageEvent]]) -> None:
    """Make events (e.g. looking up mailbox names) and write them, in the background."""

    async def run() -> None:
        try:
            made = await making
        except Exception as exc:
            log.warning("events: message events not recorded: %s", exc)
            return
        await write(store, made)

    try:
        task = asyncio.get_running_loop().create_task(run())
    except RuntimeError:
        making.close()
        return
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def drain() -> None:
    """Wait for the background writes (before the store closes)."""
    while _TASKS:
        await asyncio.gather(*list(_TASKS), return_exceptions=True)


def delivered(
    user_id: int,
    content_id: int,
    *,
    protocol: str,
    client: str,
    mailboxes: Sequence[str],
    actions: Sequence[str],
    junk: bool | None = None,
    details: dict[str, Any] | None = None,
) -> MessageEvent:
    """The "delivered" event of one recipient's copy (or copies, with fileinto)."""
    out: dict[str, Any] = {"mailboxes": list(mailboxes), "actions": list(actions)}
    if junk is not None:
        out["junk"] = junk
    if details:
        out.update(details)
    return MessageEvent(user_id, content_id, time.time(), "delivered", protocol, client, out)


class Retrievals:
    """The retrievals of one POP3 or IMAP session, buffered (see the module comment)."""

    __slots__ = ("_last", "_pending", "_seen", "client", "protocol", "store")

    def __init__(self, store: Store, protocol: str, client: str) -> None:
        self.store = store
        self.protocol = protocol
        self.client = client
        self._pending: list[MessageEvent] = []
        self._seen: set[tuple[int, int]] = set()
        self._last = time.monotonic()

    @classmethod
    def for_session(cls, ctx: Context, protocol: str, conn: Connection) -> Retrievals | None:
        return cls(ctx.store, protocol, client_text(conn.peer_ip, conn.peer_port)) if enabled(ctx) else None

    def note(self, user_id: int, content_id: int, peek: bool = False) -> None:
        """Message ``content_id`` of ``user_id`` was sent to the client (once per session)."""
        key = (user_id, content_id)
        if key in self._seen:
            return
        self._seen.add(key)
        self._pending.append(
            MessageEvent(user_id, content_id, time.time(), "retrieved", self.protocol, self.client, {"peek": peek})
        )
        if len(self._pending) >= MAX_PENDING or time.monotonic() - self._last >= FLUSH_SECONDS:
            self.flush_later()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush_later(self) -> None:
        """Hand what is buffered to a background write (the session does not wait)."""
        batch, self._pending = self._pending, []
        self._last = time.monotonic()
        write_later(self.store, batch)

    close = flush_later
