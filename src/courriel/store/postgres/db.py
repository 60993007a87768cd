"""PostgreSQL plumbing: the connection pool, transactions with retries, publishing changes.

Mutations go through ``Database.write``: those waiting together run in one transaction, each
in its own SAVEPOINT (a failing one is rolled back alone), with one COMMIT (group commit, as
the SQLite backend's writer does; the savepoints are taken only when a first try of the
batch without them, two round trips fewer per operation, saw one fail); alone, or after a
deadlock, an operation runs in its own transaction with retries. Row locks give the ordering the store's invariants need: an operation first takes the rows of
the users it changes (``UPDATE users SET modseq = modseq + 1``, in ascending id order), then
the mailbox rows whose UIDNEXT it advances (ascending id). Both are held until COMMIT, so
two operations on one mailbox commit in UID order and MODSEQ order: a client that sees
UID n committed can never later see a smaller UID appear. A deadlock or serialization
failure (possible only across users taken in different statements) retries the whole
operation.

Changes: the operation's typed changes are sent with ``pg_notify`` inside the transaction
(PostgreSQL delivers notifications at commit, in commit order, to every node's listener;
see :mod:`.feed`). The batch is registered in :attr:`Database.unpublished` before COMMIT and
published to this process's :class:`ChangeHub` by the listener when its notification comes
back, in the order the listener receives them (so own and other nodes' batches interleave
in commit order); the writer waits for that (``barrier``) and publishes the batch itself
only when the listener is down or late (:meth:`Database.publish_own`).
To keep the local feed in commit order per user, an asyncio lock per user (striped) is
taken just before COMMIT and released after the publish: a second operation on the same
user cannot commit before the first published, since it waits on the first one's row lock
until that COMMIT and then on the asyncio lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from courriel.store.changes import Change, ChangeHub
from courriel.store.postgres import feed

log = logging.getLogger(__name__)
T = TypeVar("T")
Row = tuple[Any, ...]
Conn = psycopg.AsyncConnection[Row]

RETRIES = 8
STRIPES = 256
MAX_BATCH = 64


@dataclass
class Tx:
    """What one operation sees: its connection, and what to do after the commit."""

    conn: Conn
    bytea: bool  # message bytes in the blob_data table (else files in blob_dir)
    changes: list[Change] = field(default_factory=list)
    dead_blobs: list[str] = field(default_factory=list)  # files to unlink after commit

    async def one(self, sql: str, args: tuple[Any, ...] | list[Any] | dict[str, Any] = ()) -> Row | None:
        cur = await self.conn.execute(sql.encode(), args)
        return await cur.fetchone()

    async def all(self, sql: str, args: tuple[Any, ...] | list[Any] | dict[str, Any] = ()) -> list[Row]:
        cur = await self.conn.execute(sql.encode(), args)
        return await cur.fetchall()

    async def run(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> int:
        cur = await self.conn.execute(sql.encode(), args)
        return cur.rowcount

    async def release_blob(self, blob: str) -> None:
        if self.bytea:
            await self.run("DELETE FROM blob_data WHERE blob = %s", (blob,))
        else:
            self.dead_blobs.append(blob)


Op = Callable[[Tx], Awaitable[T]]


async def _rollback(conn: Conn) -> None:
    """End a failed transaction (a broken connection is left to the pool to discard)."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not conn.closed:
        with contextlib.suppress(psycopg.Error):
            await conn.execute(b"ROLLBACK")


class _Redo(Exception):
    """An operation failed in a batch run without savepoints: run the batch with them."""


class Database:
    def __init__(self, dsn: str, hub: ChangeHub, bytea: bool, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.hub = hub
        self.bytea = bytea
        self.node = feed.node_id()
        self.seq = 0  # batch numbers of this node's notifications
        #: set by the store: wait until a batch's notification came back (feed.Listener.barrier)
        self.barrier: Callable[[int], Awaitable[None]] | None = None
        #: this node's batches committed (or committing) and not yet published, by number
        self.unpublished: dict[int, list[Change]] = {}
        self.pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            dsn,
            min_size=min(2, pool_size),
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True},
            name="courriel-store",
        )
        self._stripes = [asyncio.Lock() for _ in range(STRIPES)]
        self.batching = True
        self._pending: list[tuple[Op[Any], asyncio.Future[Any]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.on_dead_blobs: Callable[[list[str]], None] | None = None

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)

    async def close(self) -> None:
        if self._runner is not None and not self._runner.done():
            await asyncio.wait({self._runner}, timeout=30)  # let queued writes finish
        await self.pool.close()

    # --- reads -----------------------------------------------------------------------------
    async def one(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> Row | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql.encode(), args)
            return await cur.fetchone()

    async def all(self, sql: str, args: tuple[Any, ...] | list[Any] = (), binary: bool = False) -> list[Row]:
        """Rows of one statement; ``binary`` fetches in binary format (bytea without hex)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql.encode(), args, binary=binary)
            return await cur.fetchall()

    async def read(self, fn: Callable[[Tx], Awaitable[T]], snapshot: bool = False) -> T:
        """Run ``fn`` in one read-only transaction (REPEATABLE READ when ``snapshot``)."""
        async with self.pool.connection() as conn:
            level = "REPEATABLE READ" if snapshot else "READ COMMITTED"
            await conn.execute(f"BEGIN ISOLATION LEVEL {level} READ ONLY".encode())
            try:
                return await fn(Tx(conn, self.bytea))
            finally:
                await conn.execute(b"COMMIT")

    # --- writes ----------------------------------------------------------------------------
    async def write(self, op: Op[T]) -> T:
        """Run a mutation; durable and published when it returns.

        Operations waiting together run in one transaction, each in its own SAVEPOINT (one
        that fails is rolled back alone), with one COMMIT: concurrent writers share the
        commit's WAL flush (group commit), and one user's operations, which its row lock
        serialises anyway, do not each pay a commit while holding that lock."""
        if not self.batching:
            return await self._write_alone(op)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((op, fut))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain(), name="courriel-store-writer")
        result: T = await fut
        return result

    async def _drain(self) -> None:
        while self._pending:
            batch = [job for job in self._pending[:MAX_BATCH] if not job[1].cancelled()]
            del self._pending[:MAX_BATCH]
            if len(batch) == 1:
                await self._resolve_alone(*batch[0])
            # Optimistic first: no SAVEPOINT round trips; if any operation fails, the whole
            # transaction is rolled back and the batch runs again with savepoints.
            elif batch and not await self._run_batch(batch, savepoints=False):
                await self._run_batch(batch, savepoints=True)

    async def _resolve_alone(self, op: Op[Any], fut: asyncio.Future[Any]) -> None:
        try:
            result = await self._write_alone(op)
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
        else:
            if not fut.done():
                fut.set_result(result)

    async def _run_batch(self, batch: list[tuple[Op[Any], asyncio.Future[Any]]], savepoints: bool) -> bool:
        """Run ``batch`` in one transaction; False (nothing committed, nothing resolved) when
        without ``savepoints`` an operation failed: the caller runs it again with them."""
        outcomes: list[tuple[asyncio.Future[Any], bool, Any, Tx]] = []
        alone: list[tuple[Op[Any], asyncio.Future[Any]]] = []
        seq = 0
        try:
            async with self.pool.connection() as conn, contextlib.AsyncExitStack() as locks:
                all_changes: list[Change] = []
                await conn.execute(b"BEGIN")
                try:
                    for op, fut in batch:
                        tx = Tx(conn, self.bytea)
                        if not savepoints:
                            try:
                                result = await op(tx)
                            except Exception as exc:
                                raise _Redo from exc  # rolls the transaction back
                            outcomes.append((fut, True, result, tx))
                            all_changes.extend(tx.changes)
                            continue
                        try:
                            async with conn.transaction():  # SAVEPOINT
                                result = await op(tx)
                        except (errors.DeadlockDetected, errors.SerializationFailure):
                            alone.append((op, fut))  # retried on its own after this batch
                            continue
                        except Exception as exc:
                            outcomes.append((fut, False, exc, tx))
                            continue
                        outcomes.append((fut, True, result, tx))
                        all_changes.extend(tx.changes)
                    seq = await self._commit(conn, all_changes, locks)
                except BaseException:
                    await _rollback(conn)
                    raise
                # committed
                if seq:
                    await self._published(seq)
        except _Redo:
            return False
        except Exception as exc:  # the batch did not commit: run each operation on its own
            log.debug("store batch failed (%s): retrying its operations alone", exc)
            for op, fut in batch:
                await self._resolve_alone(op, fut)
            return True
        for fut, ok, value, tx in outcomes:
            if ok and tx.dead_blobs and self.on_dead_blobs is not None:
                self.on_dead_blobs(tx.dead_blobs)
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
        for op, fut in alone:
            await self._resolve_alone(op, fut)
        return True

    async def _commit(self, conn: Conn, changes: list[Change], locks: contextlib.AsyncExitStack) -> int:
        """COMMIT the open transaction; with ``changes``, their notification is sent in the
        same round trip (one simple query), the users' stripes are taken before and the batch
        registered as unpublished. Returns the batch number (0: no changes)."""
        if not changes:
            await conn.execute(b"COMMIT", prepare=False)
            return 0
        self.seq += 1
        seq = self.seq
        notify = await feed.notify_sql(Tx(conn, self.bytea, changes), self.node, seq)
        for stripe in sorted({c.user_id % STRIPES for c in changes}):
            await locks.enter_async_context(self._stripes[stripe])
        self.unpublished[seq] = changes
        try:
            await conn.execute(f"{notify}; COMMIT".encode(), prepare=False)
        except BaseException:
            self.unpublished.pop(seq, None)
            raise
        return seq

    def publish_own(self, seq: int) -> None:
        """Publish this node's batch ``seq`` locally, once: called by the listener when its
        notification comes back, or by the writer when the listener is down or late."""
        changes = self.unpublished.pop(seq, None)
        if changes is not None:
            self.hub.publish(changes)

    async def _published(self, seq: int) -> None:
        """After COMMIT: wait until the listener published batch ``seq`` (in the global commit
        order); publish it here if the listener is down or did not see it in time."""
        if self.barrier is not None and seq in self.unpublished:
            await self.barrier(seq)
        self.publish_own(seq)

    async def _write_alone(self, op: Op[T]) -> T:
        for attempt in range(RETRIES):
            try:
                return await self._attempt(op)
            except (errors.DeadlockDetected, errors.SerializationFailure) as exc:
                if attempt == RETRIES - 1:
                    raise
                log.debug("store transaction retried: %s", exc)
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    async def _attempt(self, op: Op[T]) -> T:
        async with self.pool.connection() as conn:
            tx = Tx(conn, self.bytea)
            async with contextlib.AsyncExitStack() as locks:
                await conn.execute(b"BEGIN")
                try:
                    result = await op(tx)
                    seq = await self._commit(conn, tx.changes, locks)
                except BaseException:
                    await _rollback(conn)
                    raise
                # committed
                if seq:
                    await self._published(seq)
            if tx.dead_blobs and self.on_dead_blobs is not None:
                self.on_dead_blobs(tx.dead_blobs)
            return result
