"""Changes between nodes: NOTIFY inside each transaction, one LISTEN connection per node.

A committed batch of typed changes travels as ``NOTIFY courriel_changes, '<node> <json>'``
(PostgreSQL delivers notifications at commit, in commit order). A payload too large for
NOTIFY (8000 bytes) is written to ``change_log`` in the same transaction and the
notification carries ``<node> @<id>``; listeners read the row. Each node skips its own
notifications and hands the others to its :class:`ChangeHub`, so IMAP IDLE on one node sees
mail delivered by another.

Order across nodes: a node's own batches are published locally by its listener too, when
their notification comes back (each payload carries the node's batch number; the writer
registered the batch before COMMIT and waits in :meth:`Listener.barrier`). The listener
handles notifications one at a time in the order PostgreSQL delivers them, so each node's
feed follows the global commit order — an IMAP session on node B never learns of UID 14
(committed on B) before UID 12 (committed earlier on A). Publishing own batches from the
writer after the barrier was not enough: the listener could go on to publish a later batch
of another node before the writer's coroutine ran again.

Gaps: if the listening connection drops, the listener reconnects, LISTENs again and only
then publishes a :class:`~courriel.store.changes.FeedGap` to every subscriber (with each
user's MODSEQ read after the LISTEN): what was committed while it was away is in what the
subscribers read from the store after the gap, and what is committed later comes as
notifications. IMAP sessions re-read their selected mailbox and announce the difference;
push streams announce a state change. A ``change_log`` row that is gone when its
notification is handled (older than :data:`LOG_KEEP_SECONDS`) is a gap too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from courriel.store.changes import Change, ChangeHub

if TYPE_CHECKING:
    from courriel.store.postgres.db import Tx

log = logging.getLogger(__name__)
CHANNEL = "courriel_changes"
MAX_PAYLOAD = 7900
LOG_KEEP_SECONDS = 600


def node_id() -> str:
    return f"{os.getpid():x}{secrets.token_hex(4)}"


def _registry() -> dict[str, type[Change]]:
    out: dict[str, type[Change]] = {}
    todo: list[type[Change]] = [Change]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            out[sub.__name__] = sub
            todo.append(sub)
    return out


def encode(items: list[Change]) -> str:
    out = []
    for c in items:
        d: dict[str, Any] = {"t": type(c).__name__}
        for f in dataclasses.fields(c):
            v = getattr(c, f.name)
            if isinstance(v, frozenset | set):
                v = sorted(v)
            elif isinstance(v, tuple):
                v = list(v)
            d[f.name] = v
        out.append(d)
    return json.dumps(out, separators=(",", ":"))


def decode(text: str) -> list[Change]:
    registry = _registry()
    out: list[Change] = []
    for d in json.loads(text):
        cls = registry.get(d.pop("t"))
        if cls is None:
            continue  # a newer node's change type: nothing here subscribes to it
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            v = d.get(f.name)
            kind = str(f.type)
            if isinstance(v, list):
                v = frozenset(v) if kind.startswith("frozenset") else tuple(v)
            kwargs[f.name] = v
        out.append(cls(**kwargs))
    return out


async def notify(tx: Tx, node: str, seq: int = 0) -> None:
    await tx.run(await notify_sql(tx, node, seq))


async def notify_sql(tx: Tx, node: str, seq: int = 0) -> str:
    """The ``pg_notify`` statement of ``tx.changes``, its arguments inlined (quoted by the
    connection), so that the caller can send it with its COMMIT in one round trip (a
    simple query, which takes no parameters). A payload too large for a notification is
    stored in ``change_log`` first (inside ``tx``) and sent as its row id."""
    payload = encode(tx.changes)
    if len(payload) + len(node) + 1 > MAX_PAYLOAD:
        now = int(time.time())
        row = await tx.one(
            "INSERT INTO change_log (created, payload) VALUES (%s, %s) RETURNING id", (now, payload)
        )
        assert row is not None
        await tx.run("DELETE FROM change_log WHERE created < %s", (now - LOG_KEEP_SECONDS,))
        payload = f"@{row[0]}"
    query = sql.SQL("SELECT pg_notify({}, {})").format(sql.Literal(CHANNEL), sql.Literal(f"{node}#{seq} {payload}"))
    return query.as_string(tx.conn)


class Listener:
    """The LISTEN side: a task holding one connection, publishing other nodes' changes."""

    def __init__(
        self,
        dsn: str,
        node: str,
        hub: ChangeHub,
        fetch: Callable[[int], Awaitable[str | None]],
        publish_own: Callable[[int], None] | None = None,
    ) -> None:
        self.dsn = dsn
        self.node = node
        self.hub = hub
        self.fetch = fetch  # a change_log row's payload, read on another connection
        self.publish_own = publish_own  # publishes this node's batch n (Database.publish_own)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.received = 0
        self.connected = False
        self.own = 0  # the highest batch number of this node seen come back
        self._moved = asyncio.Event()
        self.gaps = 0  # FeedGaps published (reconnections, lost change_log rows)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="courriel-store-listen")
        await asyncio.wait_for(self._ready.wait(), 30)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _run(self) -> None:
        delay = 0.1
        first = True  # the first attempt: nothing can have been missed before it
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.dsn, autocommit=True, application_name=f"courriel-listen {self.node}"
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}".encode())
                    if not first:
                        # After the LISTEN: a change committed from now on comes as a
                        # notification, one committed before is in what subscribers re-read.
                        await self._gap(conn)
                        log.warning("store change listener: reconnected; subscribers told to resync")
                    self.connected = True
                    self._ready.set()
                    delay = 0.1
                    async for note in conn.notifies():
                        await self._handle(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("store change listener: %s (reconnecting)", exc)
            first = False
            self.connected = False
            self._moved.set()  # waiters in barrier() stop waiting for a lost connection
            self._ready.set()  # start() must not hang on a database that is down
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def barrier(self, seq: int, timeout: float = 10.0) -> None:
        """Wait until this node's batch ``seq`` came back through LISTEN (so every batch
        committed before it has been published here); not when the listener is down."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.own < seq and self.connected:
            self._moved.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                log.warning("store change listener: own batch %d not back after %.0f s", seq, timeout)
                return
            try:
                await asyncio.wait_for(self._moved.wait(), left)
            except TimeoutError:
                continue

    async def _gap(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        """Publish a FeedGap with the MODSEQs of the users subscribed here, read on ``conn``
        (None: on a connection of its own, the listening one being busy)."""
        users = self.hub.users()
        modseqs: dict[int, int] = {}
        if users:
            sql = b"SELECT id, modseq FROM users WHERE id = ANY(%s)"
            try:
                if conn is not None:
                    rows = await (await conn.execute(sql, (users,))).fetchall()
                else:
                    async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as own:
                        rows = await (await own.execute(sql, (users,))).fetchall()
            except psycopg.Error as exc:
                if conn is not None:
                    raise  # the new connection failed already: reconnect, and try again
                log.warning("store change listener: MODSEQs for a gap: %s", exc)
                rows = []
            modseqs = {int(r[0]): int(r[1]) for r in rows}
        self.gaps += 1
        self.hub.gap(modseqs)

    async def _handle(self, payload: str) -> None:
        token, _, body = payload.partition(" ")
        node, _, seq = token.partition("#")
        if node == self.node:
            n = int(seq or 0)
            if self.publish_own is not None:
                self.publish_own(n)  # here, in LISTEN order (see the module's docstring)
            self.own = max(self.own, n)
            self._moved.set()
            return
        if body.startswith("@"):
            # Not on the listening connection: it is busy waiting for notifications.
            text = await self.fetch(int(body[1:]))
            if text is None:
                log.warning("store change listener: change batch %s is gone; subscribers told to resync", body)
                await self._gap(None)
                return
            body = text
        try:
            items = decode(body)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("store change listener: bad payload: %s", exc)
            return
        self.received += 1
        self.hub.publish(items)

