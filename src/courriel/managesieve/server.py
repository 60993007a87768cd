"""The ``managesieve`` service (RFC 5804; port 4190, STARTTLS)."""

from __future__ import annotations

from courriel.managesieve.protocol import MAX_LINE, response
from courriel.managesieve.session import Session
from courriel.net import Connection, Listener
from courriel.server import Context


class ManageSieveService:
    name = "managesieve"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.listener = Listener(
            "managesieve",
            ctx.cfg.managesieve.addresses(),
            self.handle,
            ctx.connections,
            refuse=self.refuse,
            read_limit=MAX_LINE + 2,
        )

    async def handle(self, conn: Connection) -> None:
        await Session(self.ctx, conn).run()

    async def refuse(self, conn: Connection, reason: str) -> None:
        conn.writer.write(response("BYE", reason, "TRYLATER"))
        await conn.writer.drain()

    async def start(self) -> list[tuple[str, int]]:
        return await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()


def managesieve_service(ctx: Context) -> ManageSieveService:
    return ManageSieveService(ctx)
