"""The ``http`` service: uvicorn serving :func:`courriel.web.app.build_app` on our own sockets.

uvicorn runs inside the event loop of ``courriel serve``; its own signal handling is turned off
(``serve`` owns SIGTERM/SIGINT) and it is stopped through ``should_exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

from courriel.privileges import take
from courriel.proxy import parse_networks
from courriel.web.app import build_app

if TYPE_CHECKING:
    from courriel.server import Context

log = logging.getLogger("courriel.http")


#: Seconds a stopping server lets running responses finish before cancelling them.
GRACE = 2


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # courriel serve handles the signals

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class HttpService:
    name = "http"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.app = build_app(ctx)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []

    async def start(self) -> list[tuple[str, int]]:
        section = self.ctx.cfg.http
        for host, port in section.addresses():
            # Sockets bound before the privileges were dropped (courriel.privileges).
            self._sockets.extend(take(host, port) or [bind(host, port)])
        tls: dict[str, str] = {}
        if section.tls:
            cfg = self.ctx.cfg
            tls = {"ssl_certfile": str(cfg.path(cfg.tls.cert)), "ssl_keyfile": str(cfg.path(cfg.tls.key))}
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="on",
            server_header=False,
            # Behind an HTTP proxy, the client address comes from X-Forwarded-For, believed
            # only from server.trusted_proxies (the PROXY protocol is for the TCP listeners).
            proxy_headers=bool(self.ctx.cfg.server.trusted_proxies),
            forwarded_allow_ips=[str(n) for n in parse_networks(self.ctx.cfg.server.trusted_proxies)],
            timeout_keep_alive=30,
            # Responses still running at stop (EventSource streams of the webmail and JMAP push
            # never end by themselves) are cancelled after this many seconds.
            timeout_graceful_shutdown=GRACE,
            limit_concurrency=self.ctx.cfg.limits.max_connections,
            ws="none",
            **tls,  # type: ignore[arg-type]
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=self._sockets))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise RuntimeError("http: server stopped during start")
            await asyncio.sleep(0.01)
        if self._server.config.ssl is not None:
            self.ctx.reloadable.append(self._server.config.ssl)  # certificate reload
        return [sock.getsockname()[:2] for sock in self._sockets]

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await asyncio.wait_for(self._task, 10)
            except TimeoutError:
                self._server.force_exit = True
                self._task.cancel()
        for sock in self._sockets:
            sock.close()


def http_service(ctx: Context) -> HttpService:
    return HttpService(ctx)
