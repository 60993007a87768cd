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

from courriel import privileges
from courriel.auth.limits import AuthLimiter
from courriel.config import Config
from courriel.net import ConnectionLimiter
from courriel.proxy import policies as proxy_policies
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
    "acme": "courriel.acme.service:acme_service",
    "trace": "courriel.trace.service:trace_service",
}


#: Services that listen on nothing; each is started when its section's ``enabled`` is true.
BACKGROUND = ("outbound", "spam", "acme", "trace")


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
    #: Server SSL contexts in use (ours and the http listener's): a certificate reload loads
    #: the new chain into each, so running listeners hand it to new handshakes.
    reloadable: list[ssl.SSLContext] = field(default_factory=list, repr=False)
    _tls_stamp: tuple[int, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        limits = self.cfg.limits
        self.connections = ConnectionLimiter(
            limits.max_connections, limits.max_connections_per_ip, proxy_policies(self.cfg)
        )
        self.auth_limiter = AuthLimiter(max_failures=limits.max_auth_failures)

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._tls_stamp = self._tls_files_stamp()
            self._ssl = server_context(self.cfg.path(self.cfg.tls.cert), self.cfg.path(self.cfg.tls.key))
            self.reloadable.append(self._ssl)
        return self._ssl

    def _tls_files_stamp(self) -> tuple[int, ...]:
        out: list[int] = []
        for rel in (self.cfg.tls.cert, self.cfg.tls.key):
            try:
                st = self.cfg.path(rel).stat()
            except OSError:
                return ()
            out += [st.st_mtime_ns, st.st_size, st.st_ino]
        return tuple(out)

    def tls_changed(self) -> bool:
        """Whether the certificate or key file changed since it was last loaded."""
        stamp = self._tls_files_stamp()
        return bool(stamp) and stamp != self._tls_stamp

    def reload_tls(self) -> bool:
        """Load the certificate and key files again into every context in use (new
        handshakes get them; no restart). A broken pair is logged and the old one kept."""
        cert, key = self.cfg.path(self.cfg.tls.cert), self.cfg.path(self.cfg.tls.key)
        stamp = self._tls_files_stamp()
        try:
            server_context(cert, key)  # the pair must load before any live context gets it
            for context in self.reloadable:
                context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS certificate not reloaded from %s: %s", cert, exc)
            return False
        self._tls_stamp = stamp
        log.info("TLS certificate reloaded from %s", cert)
        return True


async def watch_tls(ctx: Context) -> None:
    """Reload the certificate when its files change ([tls] reload_interval)."""
    while True:
        await asyncio.sleep(ctx.cfg.tls.reload_interval)
        if ctx.reloadable and ctx.tls_changed():
            ctx.reload_tls()


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
    # As root: bind the ports below 1024, then become [server] user, before the store opens.
    try:
        privileges.setup(cfg)
    except BaseException:
        privileges.release()
        raise
    store = await open_store(cfg)
    ctx = Context(cfg, store)
    from courriel.trace import events

    events.RECORD = cfg.trace.message_events
    services: list[Service] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, ctx.reload_tls)
    watcher = asyncio.create_task(watch_tls(ctx))
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
        privileges.release()
        ready("courriel: ready")
        await stop.wait()
        log.info("stopping")
    finally:
        watcher.cancel()
        privileges.release()
        for service in reversed(services):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s", service.name)
        await events.drain()  # the message events of the sessions just closed
        await store.close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return 0
