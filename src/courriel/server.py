"""The process that runs every service (``courriel serve``) and the registry of services.

A protocol package registers a factory for its configuration section (``smtp``, ``imap``,
...) in :data:`FACTORIES`, as a ``module:function`` string so that ``serve --only`` imports
only what it runs. The factory gets the :class:`Context` and returns a :class:`Service`.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from courriel.auth.limits import AuthLimiter
from courriel.config import Config
from courriel.net import ConnectionLimiter
from courriel.store import open_store
from courriel.store.api import Store
from courriel.tls import server_context

log = logging.getLogger("courriel")

#: configuration section -> "module:factory"; a module not (yet) present is reported as
#: "not available" by serve.
FACTORIES: dict[str, str] = {
    "smtp": "courriel.smtp.server:smtp_service",
    "submission": "courriel.smtp.server:submission_service",
    "submissions": "courriel.smtp.server:submissions_service",
    "imap": "courriel.imap.server:imap_service",
    "imaps": "courriel.imap.server:imaps_service",
    "pop3": "courriel.pop3.server:pop3_service",
    "pop3s": "courriel.pop3.server:pop3s_service",
    "managesieve": "courriel.managesieve.server:managesieve_service",
    "lmtp": "courriel.lmtp.server:lmtp_service",
    "lookup": "courriel.lookup.server:lookup_service",
    "http": "courriel.web.server:http_service",
    # Background services, not bound to a listener section (see BACKGROUND).
    "outbound": "courriel.queue.worker:outbound_service",
    "spam": "courriel.delivery.spam:spam_service",
}


#: Services that listen on nothing; each is started when its section's ``enabled`` is true.
BACKGROUND = ("outbound", "spam")


def available(section: str) -> bool:
    if section not in FACTORIES:
        return False
    module = FACTORIES[section].partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class Service(Protocol):
    name: str

    async def start(self) -> list[tuple[str, int]]:
        """Bind and start serving; returns the addresses listened on."""

    async def stop(self) -> None: ...


@dataclass
class Context:
    """What every service shares: configuration, store, TLS, and the process-wide limits."""

    cfg: Config
    store: Store
    connections: ConnectionLimiter = field(init=False)
    auth_limiter: AuthLimiter = field(init=False)
    _ssl: ssl.SSLContext | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        limits = self.cfg.limits
        self.connections = ConnectionLimiter(limits.max_connections, limits.max_connections_per_ip)
        self.auth_limiter = AuthLimiter(max_failures=limits.max_auth_failures)

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = server_context(self.cfg.path(self.cfg.tls.cert), self.cfg.path(self.cfg.tls.key))
        return self._ssl


def load_factory(section: str) -> Callable[[Context], Service]:
    module, _, func = FACTORIES[section].partition(":")
    factory: Callable[[Context], Service] = getattr(importlib.import_module(module), func)
    return factory


async def serve(cfg: Config, only: set[str] | None = None, ready: Callable[[str], None] = print) -> int:
    """Run the enabled services until SIGTERM or SIGINT."""
    listeners = cfg.listeners()
    if only is not None:
        unknown = only - set(listeners) - set(BACKGROUND)
        if unknown:
            raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}")
    store = await open_store(cfg)
    ctx = Context(cfg, store)
    services: list[Service] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        ready(f"courriel: store {cfg.store.backend} at {cfg.data_dir}")
        for name, section in listeners.items():
            unix_socket: str = getattr(section, "socket", "")  # [lmtp] may listen on a Unix socket only
            if (only is not None and name not in only) or not (section.addresses() or unix_socket):
                continue
            if not available(name):
                ready(f"courriel: {name}: not available in this release")
                continue
            service = load_factory(name)(ctx)
            for host, port in await service.start():
                ready(f"courriel: {name} listening on {host}:{port}" if port else f"courriel: {name} listening on {host}")
            services.append(service)
        for name in BACKGROUND:
            if (only is not None and name not in only) or not getattr(cfg, name).enabled:
                continue
            service = load_factory(name)(ctx)
            await service.start()
            ready(f"courriel: {name} running")
            services.append(service)
        ready("courriel: ready")
        await stop.wait()
        log.info("stopping")
    finally:
        for service in reversed(services):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s", service.name)
        await store.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
