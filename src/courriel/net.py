"""TCP listeners shared by every protocol: implicit TLS, STARTTLS, connection limits, shutdown.

A protocol gives a handler ``async def handle(conn: Connection) -> None``; a
:class:`Listener` binds the configured addresses, enforces the connection limits (total and
per client address, across all listeners of the process through one
:class:`ConnectionLimiter`) and, on stop, calls each live connection's ``on_shutdown`` hook
(SMTP answers 421, IMAP says BYE) before closing it.

A listener named in the limiter's ``proxies`` (``proxy_protocol = true``) accepts only
trusted proxies and reads their PROXY protocol header first (:mod:`courriel.proxy`); its
connections then report the client's address as ``peer_ip``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from courriel import metrics
from courriel.privileges import take
from courriel.proxy import ProxyAcceptor, ProxyHeader, ProxyPolicy, bind

log = logging.getLogger(__name__)

#: StreamReader buffer limit: a line longer than this is a protocol error.
DEFAULT_READ_LIMIT = 64 * 1024


class ConnectionLimiter:
    def __init__(self, max_total: int, max_per_ip: int, proxies: dict[str, ProxyPolicy] | None = None) -> None:
        self.max_total = max_total
        #: Listener name -> PROXY protocol policy (who is admitted, and as what address).
        self.proxies = proxies or {}
        self.max_per_ip = max_per_ip
        self.total = 0
        self.per_ip: Counter[str] = Counter()

    def acquire(self, ip: str) -> str | None:
        """None when admitted, else the reason for refusing."""
        if self.total >= self.max_total:
            return "too many connections"
        if self.per_ip[ip] >= self.max_per_ip:
            return "too many connections from your address"
        self.total += 1
        self.per_ip[ip] += 1
        return None

    def release(self, ip: str) -> None:
        self.total -= 1
        self.per_ip[ip] -= 1
        if self.per_ip[ip] <= 0:
            del self.per_ip[ip]


class Connection:
    """One client connection: the streams, who is at the other end, and TLS state."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: str) -> None:
        self.reader = reader
        self.writer = writer
        self.listener = listener
        peer = writer.get_extra_info("peername") or ("", 0)
        sock = writer.get_extra_info("sockname") or ("", 0)
        self.peer_ip: str = peer[0]
        self.peer_port: int = peer[1]
        self.local_ip: str = sock[0]
        self.local_port: int = sock[1]
        #: The proxy's address when a PROXY protocol header named the client.
        self.proxied_by: str | None = None
        self.on_shutdown: Callable[[], Awaitable[None]] | None = None
        #: time.monotonic() at accept, for session durations in the logs
        self.opened = time.monotonic()

    def use_proxy_header(self, header: ProxyHeader) -> None:
        """The client as the PROXY header names it (LOCAL/UNKNOWN keep the real endpoints)."""
        self.proxied_by = self.peer_ip
        if header.source is not None:
            self.peer_ip, self.peer_port = header.source
        if header.destination is not None:
            self.local_ip, self.local_port = header.destination

    @property
    def tls(self) -> bool:
        return self.writer.get_extra_info("ssl_object") is not None

    def tls_info(self) -> tuple[str, str] | None:
        """(protocol version, cipher name) when TLS is on, e.g. ('TLSv1.3', 'TLS_AES_256_GCM_SHA384')."""
        obj: Any = self.writer.get_extra_info("ssl_object")
        if obj is None:
            return None
        cipher = obj.cipher()
        return (obj.version() or "TLS", cipher[0] if cipher else "")

    @property
    def is_loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.peer_ip.split("%")[0]).is_loopback
        except ValueError:
            return False

    async def start_tls(self, ctx: ssl.SSLContext, timeout: float = 30.0) -> int:
        """Upgrade to TLS (STARTTLS, STLS). Returns how many plaintext bytes the client had
        already sent after the command; they are discarded (RFC 3207 §4.2, no command
        injection across the TLS boundary)."""
        buffer: bytearray = self.reader._buffer  # type: ignore[attr-defined]
        pending = len(buffer)
        buffer.clear()
        # No await may run between the clear and the switch to the TLS protocol (which
        # writer.start_tls does before its first suspension): wait_for would start a task,
        # letting the loop put a fast client's ClientHello into the plaintext buffer first.
        async with asyncio.timeout(timeout):
            await self.writer.start_tls(ctx)
        return pending

    async def close(self) -> None:
        try:
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, TimeoutError, ssl.SSLError, asyncio.CancelledError):
            pass
        if self.writer.transport.get_write_buffer_size():
            # A client that does not read keeps a closing transport (and its socket) open
            # while output is pending: drop it.
            self.writer.transport.abort()


Handler = Callable[[Connection], Awaitable[None]]

#: Called with each admitted connection before its handler runs (courriel.trace installs one).
ACCEPT_HOOKS: list[Callable[[Connection], None]] = []


class Listener:
    def __init__(
        self,
        name: str,
        addresses: list[tuple[str, int]],
        handler: Handler,
        limiter: ConnectionLimiter,
        ssl_context: ssl.SSLContext | None = None,
        refuse: Callable[[Connection, str], Awaitable[None]] | None = None,
        read_limit: int = DEFAULT_READ_LIMIT,
    ) -> None:
        self.name = name
        self.addresses = addresses
        self.handler = handler
        self.limiter = limiter
        self.ssl_context = ssl_context
        self.refuse = refuse
        self.read_limit = read_limit
        self._servers: list[asyncio.Server] = []
        self._acceptors: list[ProxyAcceptor] = []
        self._conns: dict[Connection, asyncio.Task[None]] = {}

    async def start(self) -> list[tuple[str, int]]:
        bound = []
        proxy = self.limiter.proxies.get(self.name)
        if proxy is not None:
            for host, port in self.addresses:
                for sock in take(host, port) or bind(host, port):
                    acceptor = ProxyAcceptor(self.name, sock, proxy, self._accept, self.ssl_context, self.read_limit)
                    acceptor.start()
                    self._acceptors.append(acceptor)
                    addr = sock.getsockname()
                    bound.append((addr[0], addr[1]))
            return bound
        for host, port in self.addresses:
            # Sockets bound before the privileges were dropped (courriel.privileges).
            prebound = take(host, port)
            targets: list[socket.socket | None] = [*prebound] if prebound else [None]
            for target in targets:
                where: dict[str, Any] = {"sock": target} if target is not None else {"host": host, "port": port}
                server = await asyncio.start_server(
                    self._accept,
                    **where,
                    ssl=self.ssl_context,
                    ssl_handshake_timeout=30 if self.ssl_context else None,
                    limit=self.read_limit,
                    reuse_address=True if target is None else None,
                )
                self._servers.append(server)
                for listening in server.sockets:
                    addr = listening.getsockname()
                    bound.append((addr[0], addr[1]))
        return bound

    async def _accept(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, header: ProxyHeader | None = None
    ) -> None:
        conn = Connection(reader, writer, self.name)
        if header is not None:
            conn.use_proxy_header(header)
        reason = self.limiter.acquire(conn.peer_ip)
        if reason is not None:
            metrics.connection_refused(self.name)
            log.warning("%s: refused %s: %s", self.name, conn.peer_ip, reason)
            try:
                if self.refuse is not None:
                    await asyncio.wait_for(self.refuse(conn, reason), 5)
            except (OSError, TimeoutError, ssl.SSLError):
                pass
            await conn.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._conns[conn] = task
        metrics.connection_opened(self.name)
        for hook in ACCEPT_HOOKS:
            hook(conn)  # session tracing (courriel.trace) may wrap the streams
        try:
            await self.handler(conn)
        except (ConnectionError, TimeoutError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.debug("%s: %s: connection ended: %s", self.name, conn.peer_ip, exc)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("%s: session with %s failed", self.name, conn.peer_ip)
        finally:
            metrics.connection_closed(self.name)
            self._conns.pop(conn, None)
            self.limiter.release(conn.peer_ip)
            await conn.close()

    async def stop(self, grace: float = 5.0) -> None:
        for server in self._servers:
            server.close()
        for acceptor in self._acceptors:
            await acceptor.close()
        self._acceptors.clear()
        for conn in list(self._conns):
            if conn.on_shutdown is not None:
                try:
                    await asyncio.wait_for(conn.on_shutdown(), 2)
                except (OSError, TimeoutError, ssl.SSLError, RuntimeError):
                    pass
        tasks = list(self._conns.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=grace)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
