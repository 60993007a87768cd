"""``GET /metrics``: the Prometheus text exposition, to the networks in ``[http] metrics_allow``."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from courriel import metrics
from courriel.web.app import WebPart
from courriel.web.auth import client_ip

if TYPE_CHECKING:
    from courriel.server import Context


def networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()]


class Exporter:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.allowed = networks(ctx.cfg.http.metrics_allow)
        self._lock = asyncio.Lock()  # concurrent scrapes share one store read

    def permitted(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.allowed)

    async def refresh(self) -> None:
        if self._lock.locked():
            async with self._lock:
                return  # another scrape just read the store
        async with self._lock:
            await self._read_store()

    async def _read_store(self) -> None:
        store = self.ctx.store
        stats = await store.stats()
        metrics.STORE_USERS.set(stats.users)
        metrics.STORE_MAILBOXES.set(stats.mailboxes)
        metrics.STORE_MESSAGES.set(stats.messages)
        metrics.STORE_BYTES.set(stats.bytes)
        queue = await store.list_queue()
        metrics.QUEUE_MESSAGES.set(len(queue))
        metrics.QUEUE_RECIPIENTS.set(sum(len(m.recipients) for m in queue))
        if queue:
            oldest = min(m.created for m in queue)
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            metrics.QUEUE_OLDEST.set(max(0.0, (datetime.now(UTC) - oldest).total_seconds()))
        else:
            metrics.QUEUE_OLDEST.set(0)

    async def endpoint(self, request: Request) -> Response:
        if not self.permitted(client_ip(request)):
            return PlainTextResponse("metrics are not served to this address\n", status_code=403)
        await self.refresh()
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def part(ctx: Context) -> WebPart:
    exporter = Exporter(ctx)
    return WebPart("metrics", routes=[Route("/metrics", exporter.endpoint, methods=["GET"])])
