"""The background renewal of ``courriel serve`` (``[acme] enabled``): looks at the installed
certificate every ``check_interval`` seconds and at start; when :func:`renewal_due` says so,
runs an order and reloads the TLS contexts of the running listeners."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httpx

from courriel.acme.client import AcmeError
from courriel.acme.issue import obtain, renewal_due
from courriel.acme.responder import Responder

if TYPE_CHECKING:
    from courriel.server import Context

log = logging.getLogger("courriel.acme")

#: After a failed order, try again after this many seconds (or check_interval if shorter).
RETRY_AFTER_FAILURE = 3600


class AcmeService:
    name = "acme"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self.responder = Responder(ctx) if ctx.cfg.acme.http_listen else None

    async def start(self) -> list[tuple[str, int]]:
        bound: list[tuple[str, int]] = []
        if self.responder is not None:
            bound = await self.responder.start()
            log.info("acme: HTTP-01 responder on %s", ", ".join(f"{h}:{p}" for h, p in bound))
        self._task = asyncio.create_task(self._run())
        return bound

    async def check(self) -> bool:
        """One look; True when a new certificate was installed."""
        cfg = self.ctx.cfg
        reason = renewal_due(cfg)
        if reason is None:
            return False
        log.info("acme: ordering a certificate: %s", reason)
        await obtain(cfg)
        self.ctx.reload_tls()
        return True

    async def _run(self) -> None:
        interval = self.ctx.cfg.acme.check_interval
        while True:
            delay = interval
            try:
                await self.check()
            except (AcmeError, httpx.HTTPError, OSError, ValueError) as exc:
                log.error("acme: certificate order failed: %s", exc)
                delay = min(interval, RETRY_AFTER_FAILURE)
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.responder is not None:
            await self.responder.stop()


def acme_service(ctx: Context) -> AcmeService:
    return AcmeService(ctx)
