"""The ``lookup`` service: tells an MTA in front of courriel which domains and recipients are
local, so that it refuses unknown recipients at RCPT instead of accepting and bouncing.

Protocol: socketmap (:mod:`.socketmap`), spoken natively by Postfix (``socketmap:inet:``) and
Sendmail (``K... socket inet:``), and by Exim through ``${readsocket}``. Maps:

- ``domains``: key a domain; ``OK <domain>`` when it is a local domain.
- ``recipients`` (also ``virtuser``, Sendmail's virtusertable): key an address; ``OK <address>``
  when it resolves to a deliverable local user through the MDA's own resolution (users,
  aliases, catch-alls; disabled users are unknown; SRS bounce addresses of ours),
  ``NOTFOUND`` otherwise. The value is the
  address itself, so a map used for rewriting (Sendmail's virtusertable) changes nothing.

A store failure answers ``TEMP`` (the MTA defers with 4xx). The listener is for the MTA on
this host (it reveals which addresses exist): loopback by default and in production.
"""

from __future__ import annotations

import asyncio
import logging

from courriel.delivery.local import ResolveError, Resolver, TargetCache, domain_of
from courriel.lookup import socketmap as sm
from courriel.mailauth.srs import Srs
from courriel.net import Connection, Listener
from courriel.server import Context, Service
from courriel.store.api import StoreError

log = logging.getLogger("courriel.lookup")

DOMAIN_MAPS = frozenset({"domains"})
RECIPIENT_MAPS = frozenset({"recipients", "virtuser"})
READ_SIZE = 4096


async def answer(resolver: Resolver, request: sm.Request, srs: Srs | None = None) -> bytes:
    """The reply to one request (a netstring)."""
    key = request.key.strip().lower()
    if request.map in DOMAIN_MAPS:
        if "@" in key or not key:
            return sm.NOTFOUND
        return sm.ok(key) if await resolver.is_local(key) else sm.NOTFOUND
    if request.map in RECIPIENT_MAPS:
        # "@domain" is what Postfix and Sendmail ask after a full address (catch-all entry):
        # catch-alls are already part of the full address's resolution.
        local_part, at, domain = key.rpartition("@")
        if not at or not local_part or not domain or not await resolver.is_local(domain_of(key)):
            return sm.NOTFOUND
        try:
            resolution = await resolver.resolve(key)
        except ResolveError as exc:
            if (
                exc.kind == "unknown"
                and srs is not None
                and srs.reverse(request.key.strip()) is not None
            ):
                return sm.ok(
                    key
                )  # a bounce to mail an alias forwarded (SRS): courriel routes it back
            return sm.NOTFOUND
        return sm.ok(key) if resolution.local or resolution.external else sm.NOTFOUND
    return sm.perm(f"unknown map {request.map!r}")


class LookupService:
    name = "lookup"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.timeout = ctx.cfg.lookup.idle_timeout
        self.cache = TargetCache()
        self.srs = Srs.from_config(ctx.cfg)
        self.listener = Listener("lookup", ctx.cfg.lookup.addresses(), self.handle, ctx.connections)

    async def start(self) -> list[tuple[str, int]]:
        return await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()

    async def handle(self, conn: Connection) -> None:
        await serve_connection(conn, Resolver(self.ctx.store, self.cache), self.timeout, self.srs)


async def serve_connection(
    conn: Connection, resolver: Resolver, timeout: float, srs: Srs | None = None
) -> None:
    """Answer requests until the client closes (or sends something malformed: PERM, close)."""
    buf = bytearray()
    while True:
        try:
            decoded = sm.decode_netstring(buf)
        except sm.SocketmapError as exc:
            log.warning("lookup: %s: %s", conn.peer_ip, exc)
            conn.writer.write(sm.perm(str(exc)))
            await conn.writer.drain()
            return
        if decoded is None:
            try:
                chunk = await asyncio.wait_for(conn.reader.read(READ_SIZE), timeout)
            except TimeoutError:
                return
            if not chunk:
                return
            buf += chunk
            continue
        payload, used = decoded
        del buf[:used]
        try:
            reply = await answer(resolver, sm.parse_request(payload), srs)
        except sm.SocketmapError as exc:
            reply = sm.perm(str(exc))
        except (StoreError, OSError) as exc:
            log.error("lookup: store failed: %s", exc)
            reply = sm.temp("store unavailable")
        log.debug("lookup: %r -> %r", payload, reply)
        conn.writer.write(reply)
        await conn.writer.drain()


def lookup_service(ctx: Context) -> Service:
    return LookupService(ctx)
