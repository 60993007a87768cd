"""SQLite plumbing: connections, schema migrations, and the single writer thread.

All mutations go through one writer thread holding one connection. It takes whatever
operations are waiting, runs each inside a SAVEPOINT of one transaction (so one failing
operation does not fail the others), fsyncs the directories of new message files once,
commits (WAL with synchronous=FULL: the commit is on disk when COMMIT returns), then
publishes the changes and wakes the callers, in commit order. Concurrent deliveries thus
share fsyncs (group commit). Readers use their own connections in a small thread pool;
in WAL mode they never block the writer.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from courriel.store.blobs import BlobStore
from courriel.store.changes import Change, ChangeHub
from courriel.store.content import thread_key

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 512
#: Commits between two WAL checkpoints, and the longest wait for one (seconds) after a commit.
CHECKPOINT_COMMITS = 256
CHECKPOINT_INTERVAL = 1.0


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA cache_size = -32000")
    conn.execute("PRAGMA temp_store = MEMORY")
    if readonly:
        conn.execute("PRAGMA query_only = 1")
    return conn


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) for every migration shipped with the package, ascending."""
    out = []
    for entry in resources.files("courriel.store.sqlite").joinpath("migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            out.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(out)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Bring the database to the newest schema; returns the versions applied."""
    applied = []
    current = schema_version(conn)
    known = migrations()
    newest = known[-1][0] if known else 0
    if current > newest:
        raise RuntimeError(f"database schema {current} is newer than this courriel ({newest})")
    # Functions migrations may call (computed the same way as at delivery).
    conn.create_function("courriel_thread_key", 3, thread_key, deterministic=True)
    for version, sql in known:
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if schema_version(conn) >= version:  # another process got there first
                conn.execute("ROLLBACK")
                continue
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _split_sql(script: str) -> list[str]:
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


@dataclass
class Tx:
    """What one operation sees inside the writer: the connection and what to do after commit."""

    conn: sqlite3.Connection
    changes: list[Change] = field(default_factory=list)
    new_blobs: list[str] = field(default_factory=list)  # directory fsync before commit
    dead_blobs: list[str] = field(default_factory=list)  # unlink after commit

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(sql, args).fetchone()

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        return self.conn.execute(sql, args).fetchall()

    def run(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, args)


Op = Callable[[Tx], Any]


@dataclass
class _Job:
    op: Op
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    orphan_blobs: list[str]  # files written for this op, to remove if it fails
    durable: bool = True  # False: may be lost in a crash (derived data, redone at open)


class Checkpointer:
    """WAL checkpoints in a thread of their own, off the writer's path.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages: that
    commit (and every delivery waiting behind it) pays for copying the pages into the database
    and its fsync, tens of milliseconds on a large database. Here the writer's connection does
    not checkpoint; this thread runs a PASSIVE checkpoint (it never blocks the writer nor the
    readers) every CHECKPOINT_COMMITS commits or CHECKPOINT_INTERVAL seconds after one, from
    its own connection, synchronous=FULL like the writer: the WAL is fsynced before its pages
    are copied, the database file after. Spaced out like this, a page written by many commits
    (the end of an index, a mailbox's counters) is copied once.
    """

    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path
        self._wake = threading.Event()
        self._commits = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="courriel-store-checkpoint", daemon=True)
        self.checkpoints = 0

    def start(self) -> None:
        self._thread.start()

    def committed(self) -> None:
        """Called by the writer after each commit."""
        self._commits += 1
        if self._commits == 1 or self._commits >= CHECKPOINT_COMMITS:
            self._wake.set()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._closing = True
            self._wake.set()
            self._thread.join()

    def _run(self) -> None:
        conn = connect(self._db_path)
        try:
            while not self._closing:
                self._wake.wait()
                self._wake.clear()
                if self._commits < CHECKPOINT_COMMITS and not self._closing:
                    self._wake.wait(CHECKPOINT_INTERVAL)  # more commits may come meanwhile
                    self._wake.clear()
                if not self._commits:
                    continue
                self._commits = 0
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # retried after the next commits
                    log.warning("WAL checkpoint failed: %s", exc)
                self.checkpoints += 1
        finally:
            conn.close()


class Writer:
    def __init__(self, db_path: Path, blobs: BlobStore, hub: ChangeHub) -> None:
        self._db_path = db_path
        self._blobs = blobs
        self._hub = hub
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="courriel-store-writer", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._checkpointer = Checkpointer(db_path)
        self._busy = False  # a batch under way
        self.batches = 0
        self.ops = 0

    def idle(self) -> bool:
        """No batch under way nor waiting (a hint: it may change at once)."""
        return not self._busy and self._queue.empty()

    def start(self) -> None:
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        self._checkpointer.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._checkpointer.stop()

    def submit(self, op: Op, orphan_blobs: list[str] | None = None, durable: bool = True) -> asyncio.Future[Any]:
        """Queue ``op``. A batch made only of ``durable=False`` operations (the deferred
        full-text index) commits without waiting for the disk (synchronous=NORMAL: a crash
        may lose it, never corrupt it; a later durable commit makes it durable too)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if not self._thread.is_alive():
            fut.set_exception(RuntimeError("store is closed"))
            return fut
        self._queue.put(_Job(op, fut, loop, orphan_blobs or [], durable))
        return fut

    def _run(self) -> None:
        try:
            conn = connect(self._db_path)
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # the Checkpointer's work
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            while True:
                job = self._queue.get()
                if job is None:
                    return
                batch = [job]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                self._busy = True
                try:
                    self._run_batch(conn, batch)
                finally:
                    self._busy = False
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        relaxed = not any(job.durable for job in batch)
        if relaxed:
            conn.execute("PRAGMA synchronous = NORMAL")
        try:
            self._run_transaction(conn, batch)
        finally:
            if relaxed:
                conn.execute("PRAGMA synchronous = FULL")

    def _run_transaction(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any, Tx]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._fail_all(batch, exc)
            return
        for job in batch:
            tx = Tx(conn)
            conn.execute("SAVEPOINT op")
            try:
                result = job.op(tx)
            except BaseException as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                outcomes.append((False, exc, tx))
                if not isinstance(exc, Exception):
                    raise
            else:
                conn.execute("RELEASE op")
                outcomes.append((True, result, tx))
        try:
            new_blobs = [b for ok, _, tx in outcomes if ok for b in tx.new_blobs]
            if new_blobs:
                self._blobs.sync(new_blobs)
            conn.execute("COMMIT")
        except BaseException as exc:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._fail_all(batch, exc)
            return
        self.batches += 1
        self.ops += len(batch)
        self._checkpointer.committed()
        changes = [c for ok, _, tx in outcomes if ok for c in tx.changes]
        self._hub.publish(changes)
        for job, (ok, value, tx) in zip(batch, outcomes):
            if ok:
                for blob in tx.dead_blobs:
                    self._blobs.delete(blob)
            else:
                for blob in job.orphan_blobs:
                    self._blobs.delete(blob)
            _resolve(job, ok, value)

    def _fail_all(self, batch: list[_Job], exc: BaseException) -> None:
        log.error("store commit failed: %s", exc)
        for job in batch:
            for blob in job.orphan_blobs:
                self._blobs.delete(blob)
            _resolve(job, False, exc)


def _resolve(job: _Job, ok: bool, value: Any) -> None:
    def done() -> None:
        if job.future.cancelled():
            return
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)

    try:
        job.loop.call_soon_threadsafe(done)
    except RuntimeError:  # the caller's loop is gone
        pass


class Readers:
    """Read-only connections, one per worker thread."""

    def __init__(
        self,
        db_path: Path,
        workers: int = 4,
        on_connect: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._db_path = db_path
        self._on_connect = on_connect
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="courriel-store-read")

    def conn(self) -> sqlite3.Connection:
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            c = connect(self._db_path, readonly=True)
            if self._on_connect is not None:
                self._on_connect(c)
            self._local.conn = c
            with self._lock:
                self._conns.append(c)
        return c

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(self.conn()))

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        with self._lock:
            for c in self._conns:
                c.close()
            self._conns.clear()
