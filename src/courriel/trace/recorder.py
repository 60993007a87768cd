"""Session recording: tracing stream proxies, the per-session recorder, the tracing policy.

A traced connection's reader and writer are replaced by proxies that hand every octet to the
session's :class:`Recorder` (protocol code is untouched). The recorder runs the protocol's
redaction machine (:mod:`courriel.trace.redact`) and writes the kept lines to
DATA/traces/YYYY-MM-DD/<session-id>.jsonl, one JSON object a line: ``t`` (Unix time),
``dir`` ("c" client, "s" server, "event") and ``text``.

Whether to record is decided at accept (listener, client network) and again when the user is
known (authentication, or an SMTP recipient): until then the lines wait in a bounded memory
buffer, kept when the user is traced, dropped otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

from courriel.config import TraceSection
from courriel.proxy import parse_networks
from courriel.trace.redact import machine_for

log = logging.getLogger(__name__)

#: Seconds before buffered transcript lines reach the file.
FLUSH_DELAY = 0.5
#: Lines kept in memory while waiting to learn the user (then dropped, oldest first).
MAX_BUFFERED = 2000
Entry = dict[str, Any]


def new_session_id(listener: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{listener}-{secrets.token_hex(4)}"


class Recorder:
    """The transcript of one session."""

    def __init__(self, tracer: Tracer, listener: str, peer: str, recording: bool) -> None:
        self.tracer = tracer
        self.id = new_session_id(listener)
        self.listener = listener
        self.peer = peer
        self.machine = machine_for(listener)
        #: Users the machine noticed during the current feed (handled after its lines).
        self.noticed: list[tuple[str, bool]] = []
        self.machine.on_user = lambda user, authenticated: self.noticed.append((user, authenticated))
        self.recording = recording
        self.buffer: list[Entry] = []
        self.dropped = 0
        self.user: str | None = None
        self.watchers: list[Callable[[Entry], None]] = []
        self.file: IO[str] | None = None
        self.path: Path | None = None
        self.size = 0
        self.truncated = False
        self.closed = False
        self.flush_timer: asyncio.TimerHandle | None = None

    # --- input ---------------------------------------------------------------------------
    def data(self, d: str, data: bytes) -> None:
        if self.closed or not data:
            return
        try:
            records = self.machine.feed(d, data)
        except Exception:  # a transcript must never break the session
            log.exception("trace %s: redaction failed; transcript stopped", self.id)
            self.machine.stopped = True
            self.event("transcript stopped (internal error)")
            return
        now = round(time.time(), 6)
        for direction, text in records:
            self._add({"t": now, "dir": direction, "text": text})
        if records:
            self._flush_soon()
        while self.noticed:
            self._user(*self.noticed.pop(0))

    def event(self, text: str) -> None:
        if not self.closed:
            self._add({"t": round(time.time(), 6), "dir": "event", "text": text})
            self._flush_soon()

    def _add(self, entry: Entry) -> None:
        for watch in self.watchers:
            watch(self._tagged(entry))
        if self.recording:
            self._write(entry)
        elif not self.closed:
            self.buffer.append(entry)
            if len(self.buffer) > MAX_BUFFERED:
                del self.buffer[0]
                self.dropped += 1

    def _user(self, user: str, authenticated: bool) -> None:
        """The machine learnt who the session is about: keep the transcript if they are traced."""
        watchers = [w for w in self.tracer.watchers_of(user) if w not in self.watchers]
        if self.recording:
            if authenticated:
                self.user = self.user or user
                self.event(f"authenticated as {user}")
            for watch in watchers:
                watch(self._tagged({"t": round(time.time(), 6), "dir": "event",
                                    "text": f"live trace of {user} joins this session"}))  # fmt: skip
                self.watchers.append(watch)
            return
        if not (watchers or self.tracer.user_traced(user)):
            return
        self.user = user
        self.recording = True
        why = f"authenticated as {user}" if authenticated else f"recipient {user}"
        start = {"t": round(time.time(), 6), "dir": "event", "text": f"{why}: session traced from its start"}
        backlog = self.buffer
        self.buffer = []
        if self.dropped:
            backlog.insert(0, {"t": backlog[0]["t"] if backlog else start["t"], "dir": "event",
                               "text": f"{self.dropped} earlier lines not kept"})  # fmt: skip
        for watch in watchers:
            for entry in backlog:
                watch(self._tagged(entry))
            self.watchers.append(watch)
        for entry in backlog:
            self._write(entry)
        self._add(start)

    def _tagged(self, entry: Entry) -> Entry:
        return {**entry, "session": self.id, "listener": self.listener, "peer": self.peer, "user": self.user}

    # --- output --------------------------------------------------------------------------
    def _write(self, entry: Entry) -> None:
        if self.truncated:
            return
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        if self.file is None:
            self.path = self.tracer.path_for(self.id)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.file = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                log.warning("trace %s: cannot write %s: %s", self.id, self.path, exc)
                self.truncated = True
                return
            log.info("trace %s: %s session of %s recorded in %s", self.id, self.listener, self.peer, self.path)
        if self.size + len(line) > self.tracer.cfg.max_bytes_per_session:
            self.truncated = True
            line = json.dumps({"t": entry["t"], "dir": "event", "text": "transcript truncated (size limit)"}) + "\n"
        self.size += len(line)
        self.file.write(line)

    def _flush_soon(self) -> None:
        """Flush the file within FLUSH_DELAY seconds: one write(2) per burst, not per line."""
        if self.file is None or self.flush_timer is not None:
            return
        try:
            self.flush_timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._flush)
        except RuntimeError:  # no loop (direct use): flush now
            self.file.flush()

    def _flush(self) -> None:
        self.flush_timer = None
        if self.file is not None and not self.file.closed:
            try:
                self.file.flush()
            except OSError as exc:
                log.warning("trace %s: %s", self.id, exc)

    def close(self) -> None:
        if self.closed:
            return
        self.event("connection closed")
        self.closed = True
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        if self.file is not None:
            self.file.close()
        self.buffer.clear()
        self.tracer.sessions.discard(self)


class Tracer:
    """The process-wide policy: which sessions to record, and live watchers by user."""

    def __init__(self, cfg: TraceSection, root: Path) -> None:
        self.cfg = cfg
        self.root = root
        self.listeners = {name.lower() for name in cfg.enabled_listeners}
        self.users = {u.lower() for u in cfg.users}
        self.networks = parse_networks(cfg.networks, "trace.networks")
        self.live: dict[str, list[Callable[[Entry], None]]] = {}
        self.sessions: set[Recorder] = set()

    def path_for(self, session_id: str) -> Path:
        return self.root / time.strftime("%Y-%m-%d", time.gmtime()) / f"{session_id}.jsonl"

    def user_traced(self, user: str) -> bool:
        return user.lower() in self.users

    def watchers_of(self, user: str) -> list[Callable[[Entry], None]]:
        return list(self.live.get(user.lower(), []))

    def watch(self, user: str, callback: Callable[[Entry], None]) -> None:
        self.live.setdefault(user.lower(), []).append(callback)

    def unwatch(self, user: str, callback: Callable[[Entry], None]) -> None:
        callbacks = self.live.get(user.lower(), [])
        if callback in callbacks:
            callbacks.remove(callback)
        if not callbacks:
            self.live.pop(user.lower(), None)
        for session in self.sessions:
            if callback in session.watchers:
                session.watchers.remove(callback)

    def _network_traced(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        return any(addr.version == net.version and addr in net for net in self.networks)

    def start(self, listener: str, peer: str, local: str = "", peer_port: int = 0) -> Recorder | None:
        """A recorder for a new session, or None when it cannot be traced."""
        recording = listener.lower() in self.listeners or self._network_traced(peer)
        if not (recording or self.users or self.live):
            return None
        rec = Recorder(self, listener, peer, recording)
        self.sessions.add(rec)
        if listener == "outbound":
            rec.event(f"outbound session {rec.id}: to server {local}, from local port {peer_port}")
        else:
            client = f"[{peer}]:{peer_port}" if ":" in peer else f"{peer}:{peer_port}"
            rec.event(f"{listener} session {rec.id}: client {client if peer_port else peer}"
                      + (f", server {local}" if local else ""))  # fmt: skip
        return rec

    def attach(self, conn: Any) -> None:
        """The accept hook (net.ACCEPT_HOOKS): wrap a connection's streams when traced."""
        rec = self.start(conn.listener, conn.peer_ip, f"{conn.local_ip}:{conn.local_port}", conn.peer_port)
        if rec is None:
            return
        if conn.tls:
            info = conn.tls_info()
            rec.event(f"TLS (implicit): {info[0]} {info[1]}" if info else "TLS (implicit)")
        conn.reader = cast(asyncio.StreamReader, TracingReader(conn.reader, rec, "c"))
        conn.writer = cast(asyncio.StreamWriter, TracingWriter(conn.writer, rec, "s"))
        conn.trace = rec


#: The serve process's tracer while the trace service runs (for the outbound SMTP client).
ACTIVE: list[Tracer] = []


def trace_outbound(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ip: str, port: int, tls: bool
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The outbound SMTP client's streams, traced when [trace] asks for it (listener name
    "outbound", the remote server's network, or the sender/recipient as a traced user)."""
    if not ACTIVE:
        return reader, writer
    local = writer.get_extra_info("sockname") or ("", 0)
    rec = ACTIVE[0].start("outbound", ip, f"{ip}:{port}", int(local[1]))
    if rec is None:
        return reader, writer
    if tls:
        rec.event("TLS (implicit)")
    return (
        cast(asyncio.StreamReader, TracingReader(reader, rec, "s")),
        cast(asyncio.StreamWriter, TracingWriter(writer, rec, "c")),
    )


class TracingReader:
    """A StreamReader that shows what it reads to a recorder (direction ``d``)."""

    def __init__(self, inner: asyncio.StreamReader, rec: Recorder, d: str) -> None:
        self._inner = inner
        self._rec = rec
        self._d = d

    async def read(self, n: int = -1) -> bytes:
        data = await self._inner.read(n)
        self._rec.data(self._d, data)
        return data

    async def readline(self) -> bytes:
        data = await self._inner.readline()
        self._rec.data(self._d, data)
        return data

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        try:
            data = await self._inner.readuntil(separator)
        except asyncio.IncompleteReadError as exc:
            self._rec.data(self._d, exc.partial)
            raise
        self._rec.data(self._d, data)
        return data

    async def readexactly(self, n: int) -> bytes:
        try:
            data = await self._inner.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            self._rec.data(self._d, exc.partial)
            raise
        self._rec.data(self._d, data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TracingWriter:
    """A StreamWriter that shows what it writes to a recorder, and TLS starting."""

    def __init__(self, inner: asyncio.StreamWriter, rec: Recorder, d: str) -> None:
        self._inner = inner
        self._rec = rec
        self._d = d

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._rec.data(self._d, bytes(data))
        self._inner.write(data)

    def writelines(self, data: Any) -> None:
        for item in data:
            self.write(item)

    async def start_tls(self, sslcontext: Any, **kwargs: Any) -> None:
        self._rec.event("TLS handshake")
        await self._inner.start_tls(sslcontext, **kwargs)
        obj: Any = self._inner.get_extra_info("ssl_object")
        cipher = obj.cipher() if obj is not None else None
        self._rec.event(f"TLS started: {obj.version() if obj else 'TLS'} {cipher[0] if cipher else ''}".rstrip())

    def close(self) -> None:
        self._rec.close()
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
