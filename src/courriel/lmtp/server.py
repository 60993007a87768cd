"""The ``lmtp`` service (RFC 2033) registered in :data:`courriel.server.FACTORIES`.

It listens on ``[lmtp] listen`` (TCP; 24 in production, 2424 in development, loopback only)
and/or ``[lmtp] socket`` (a Unix socket in the data directory, mode ``socket_mode``), for the
MTA on the same host. LMTP has no authentication: TCP clients outside ``trusted_networks``
get 421 and the connection closes. The protocol limits are those of ``[smtp]``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import stat
from pathlib import Path

from courriel.lmtp.session import LmtpSession
from courriel.net import Connection, Listener
from courriel.server import Context, Service
from courriel.smtp.session import Policy

log = logging.getLogger("courriel.lmtp")


class UnixListener(Listener):
    """A :class:`Listener` on a Unix socket: same limits, shutdown hooks and error handling."""

    def __init__(self, name: str, path: Path, mode: int, service: LmtpService) -> None:
        super().__init__(name, [], service.handle, service.ctx.connections, refuse=service.refuse)
        self.path = path
        self.mode = mode

    async def start(self) -> list[tuple[str, int]]:
        try:
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()  # left by a previous run; a live server would hold a lock
        except FileNotFoundError:
            pass
        self.path.parent.mkdir(parents=True, exist_ok=True)
        server = await asyncio.start_unix_server(
            self._accept, str(self.path), limit=self.read_limit
        )
        os.chmod(self.path, self.mode)
        self._servers.append(server)
        return [(f"unix:{self.path}", 0)]

    async def stop(self, grace: float = 5.0) -> None:
        await super().stop(grace)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


class LmtpService:
    name = "lmtp"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        cfg = ctx.cfg
        section = cfg.lmtp
        self.trusted = [
            ipaddress.ip_network(n.strip(), strict=False)
            for n in section.trusted_networks.split(",")
            if n.strip()
        ]
        self.policy = Policy(
            name="lmtp",
            hostname=cfg.server.hostname,
            domain=cfg.server.domain,
            auth_required=False,
            plaintext_auth=False,
            max_size=cfg.limits.max_message_size,
            max_line=cfg.limits.max_line_length,
            limits=cfg.smtp,
            ssl_context=None,
        )
        from courriel.mailauth.srs import Srs

        self.policy.srs = Srs.from_config(cfg)  # mail that aliases forward outside
        self.listeners: list[Listener] = []
        if section.addresses():
            self.listeners.append(
                Listener(
                    "lmtp", section.addresses(), self.handle, ctx.connections, refuse=self.refuse
                )
            )
        if section.socket:
            self.listeners.append(
                UnixListener("lmtp", cfg.path(section.socket), int(section.socket_mode, 8), self)
            )

    async def start(self) -> list[tuple[str, int]]:
        bound: list[tuple[str, int]] = []
        for listener in self.listeners:
            bound += await listener.start()
        return bound

    async def stop(self) -> None:
        for listener in self.listeners:
            await listener.stop()

    def allowed(self, conn: Connection) -> bool:
        if not conn.peer_ip:  # Unix socket: the file's permissions decide
            return True
        try:
            ip = ipaddress.ip_address(conn.peer_ip.split("%")[0])
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    async def handle(self, conn: Connection) -> None:
        if not self.allowed(conn):
            log.warning("lmtp: refused %s: not in lmtp.trusted_networks", conn.peer_ip)
            await self.refuse(conn, "not allowed to use LMTP")
            return
        await LmtpSession(conn, self.policy, self.ctx.store, self.ctx.auth_limiter).run()

    async def refuse(self, conn: Connection, reason: str) -> None:
        conn.writer.write(f"421 4.7.0 {self.policy.hostname} {reason}\r\n".encode())
        await conn.writer.drain()


def lmtp_service(ctx: Context) -> Service:
    return LmtpService(ctx)
