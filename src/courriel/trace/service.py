"""The trace service of ``courriel serve``: the accept hook, retention, and DATA/trace.sock.

The control socket (mode 0600) speaks JSON lines: the client (``courriel trace --user``)
sends ``{"user": ADDRESS}``, gets ``{"ok": true}`` and then every transcript entry of that
user's sessions, each with its ``session`` id, for as long as it stays connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from courriel import net
from courriel.server import Context
from courriel.store.api import StoreError
from courriel.trace.recorder import ACTIVE, Entry, Tracer

log = logging.getLogger(__name__)

#: Entries queued for a slow watcher before later ones are dropped.
WATCH_QUEUE = 10_000
SOCKET_NAME = "trace.sock"


def traces_dir(data_dir: Path) -> Path:
    return data_dir / "traces"


def expire(root: Path, retention_days: int, max_total_bytes: int, now: float | None = None) -> int:
    """Delete day folders older than the retention, then the oldest transcripts over the
    total size limit. Returns how many files were removed."""
    now = time.time() if now is None else now
    cutoff = time.strftime("%Y-%m-%d", time.gmtime(now - retention_days * 86400))
    removed = 0
    if not root.is_dir():
        return 0
    days = sorted(p for p in root.iterdir() if p.is_dir())
    for day in days:
        if day.name < cutoff:
            removed += sum(1 for _ in day.glob("*.jsonl"))
            shutil.rmtree(day, ignore_errors=True)
    files = sorted(root.glob("*/*.jsonl"), key=lambda p: (p.parent.name, p.stat().st_mtime))
    total = sum(p.stat().st_size for p in files)
    for f in files:
        if total <= max_total_bytes:
            break
        total -= f.stat().st_size
        f.unlink(missing_ok=True)
        removed += 1
    return removed


class TraceService:
    name = "trace"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.root = traces_dir(ctx.cfg.data_dir)
        self.tracer = Tracer(ctx.cfg.trace, self.root)
        self.socket_path = ctx.cfg.data_dir / SOCKET_NAME
        self.server: asyncio.AbstractServer | None = None
        self.janitor: asyncio.Task[None] | None = None
        self.clients: set[asyncio.Task[Any]] = set()

    async def start(self) -> list[tuple[str, int]]:
        net.ACCEPT_HOOKS.append(self.tracer.attach)
        ACTIVE.append(self.tracer)
        self.socket_path.unlink(missing_ok=True)
        old = os.umask(0o077)
        try:
            self.server = await asyncio.start_unix_server(self._client, path=str(self.socket_path))
        except OSError as exc:  # e.g. a path longer than sun_path allows: tracing still works
            log.warning("trace: no control socket %s (courriel trace unavailable): %s", self.socket_path, exc)
        finally:
            os.umask(old)
        self.janitor = asyncio.create_task(self._expire_loop())
        return []

    async def stop(self) -> None:
        if self.tracer.attach in net.ACCEPT_HOOKS:
            net.ACCEPT_HOOKS.remove(self.tracer.attach)
        if self.tracer in ACTIVE:
            ACTIVE.remove(self.tracer)
        if self.janitor is not None:
            self.janitor.cancel()
        if self.server is not None:
            self.server.close()
            for task in list(self.clients):
                task.cancel()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 2)
        self.socket_path.unlink(missing_ok=True)

    async def _expire_loop(self) -> None:
        cfg = self.ctx.cfg.trace
        while True:
            try:
                removed = await asyncio.to_thread(expire, self.root, cfg.retention_days, cfg.max_total_bytes)
                if removed:
                    log.info("trace: %d expired transcripts removed", removed)
            except OSError as exc:
                log.warning("trace: expiring transcripts: %s", exc)
            if cfg.event_retention_days:
                try:
                    pruned = await self.ctx.store.prune_message_events(time.time() - cfg.event_retention_days * 86400)
                    if pruned:
                        log.info("trace: %d message events older than %d days removed", pruned, cfg.event_retention_days)
                except StoreError as exc:
                    log.warning("trace: pruning message events: %s", exc)
            await asyncio.sleep(3600)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.clients.add(task)
        queue: asyncio.Queue[Entry] = asyncio.Queue(WATCH_QUEUE)
        user = ""

        def deliver(entry: Entry) -> None:
            try:
                queue.put_nowait(entry)
            except asyncio.QueueFull:
                pass

        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            try:
                request = json.loads(line)
                user = str(request["user"]).strip()
            except (ValueError, KeyError, TypeError):
                writer.write(b'{"ok": false, "error": "expected {\\"user\\": ADDRESS}"}\n')
                await writer.drain()
                return
            if not user:
                return
            watch_all = deliver
            self.tracer.watch(user, watch_all)
            log.info("trace: live trace of %s started", user)
            writer.write(b'{"ok": true}\n')
            await writer.drain()
            closed = asyncio.create_task(reader.read(1))
            try:
                while True:
                    getter = asyncio.create_task(queue.get())
                    done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if closed in done:
                        getter.cancel()
                        break
                    entry = getter.result()
                    writer.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")
                    await writer.drain()
            finally:
                closed.cancel()
                self.tracer.unwatch(user, watch_all)
                log.info("trace: live trace of %s ended", user)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self.clients.discard(task)
            writer.close()


def trace_service(ctx: Context) -> TraceService:
    return TraceService(ctx)
