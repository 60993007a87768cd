"""The ``pop3`` (port 110, STLS) and ``pop3s`` (port 995, implicit TLS) services.

Both read their protocol keys (timeouts, limits, ``allow_plaintext_auth``) from ``[pop3]``;
``[pop3s]`` only says where to listen.
"""

from __future__ import annotations

from courriel.auth import sasl
from courriel.net import Connection, Listener
from courriel.pop3.protocol import Code, err
from courriel.pop3.session import Session
from courriel.server import Context


class Pop3Service:
    def __init__(self, ctx: Context, name: str, implicit_tls: bool) -> None:
        self.ctx = ctx
        self.name = name
        self.implicit_tls = implicit_tls
        section = ctx.cfg.pop3s if implicit_tls else ctx.cfg.pop3
        # The reader's buffer bounds every line: commands and SASL responses fit, more
        # ends the connection (the session answers longer commands itself).
        limit = max(ctx.cfg.pop3.max_command_length, sasl.MAX_RESPONSE + 2) + 2
        self.listener = Listener(
            name,
            section.addresses(),
            self.handle,
            ctx.connections,
            ssl_context=ctx.ssl_context() if implicit_tls else None,
            refuse=self.refuse,
            read_limit=limit,
        )

    async def handle(self, conn: Connection) -> None:
        await Session(self.ctx, conn, stls=not self.implicit_tls).run()

    async def refuse(self, conn: Connection, reason: str) -> None:
        conn.writer.write(err(reason, Code.SYS_TEMP))
        await conn.writer.drain()

    async def start(self) -> list[tuple[str, int]]:
        return await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()


def pop3_service(ctx: Context) -> Pop3Service:
    return Pop3Service(ctx, "pop3", implicit_tls=False)


def pop3s_service(ctx: Context) -> Pop3Service:
    return Pop3Service(ctx, "pop3s", implicit_tls=True)
