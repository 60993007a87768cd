"""``courriel init DIR``: a data directory with its configuration, database and certificate."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path
from typing import Any

from courriel.cli.main import CommandError, run_async
from courriel.config import (
    CONFIG_FILE,
    PRODUCTION_PORTS,
    Config,
    build_config,
    load_config,
    render_config,
)
from courriel.store import open_store
from courriel.store.api import AlreadyExists
from courriel.tls import generate_self_signed


def register(sub: Any) -> None:
    p = sub.add_parser("init", help="create a data directory")
    p.add_argument("dir", metavar="DIR", type=Path)
    p.add_argument("--domain", default="example.test", help="the first local domain (default example.test)")
    p.add_argument("--hostname", help="this server's host name (default: the domain's 'mail.' name)")
    p.add_argument(
        "--production",
        action="store_true",
        help="listen on all addresses with the standard ports (default: 127.0.0.1, development ports)",
    )
    p.add_argument(
        "--store",
        metavar="DSN",
        help="keep the store in PostgreSQL (postgres://user@host/db) instead of SQLite in DIR",
    )
    p.set_defaults(func=cmd_init)


def make_config(domain: str, hostname: str, production: bool) -> Config:
    cfg = build_config({}, env={})
    cfg.server.domain = domain
    cfg.server.hostname = hostname
    if production:
        cfg.http.tls = True
        # HTTP-01 challenges come to port 80; used only once [acme] enabled is set.
        cfg.acme.http_listen = "0.0.0.0:80,[::]:80"
        for name, section in cfg.listeners().items():
            section.listen = f"0.0.0.0:{PRODUCTION_PORTS[name]},[::]:{PRODUCTION_PORTS[name]}"
            if name in ("lmtp", "lookup"):  # for the MTA on this host only: never public
                section.listen = f"127.0.0.1:{PRODUCTION_PORTS[name]}"
    return cfg


def init_dir(
    path: Path, domain: str, hostname: str | None = None, production: bool = False, store: str | None = None
) -> Config:
    if (path / CONFIG_FILE).exists():
        raise CommandError(f"{path} is already initialised")
    hostname = hostname or (f"mail.{domain}" if production else socket.gethostname() or "localhost")
    cfg = make_config(domain, hostname, production)
    if store:
        if not store.startswith(("postgres://", "postgresql://")):
            raise CommandError("--store: a PostgreSQL URL (postgres://...) is required")
        cfg.store.backend, cfg.store.dsn = "postgres", store
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o750)
    tmp = path / (CONFIG_FILE + ".tmp")
    tmp.write_text(render_config(cfg), encoding="utf-8")
    tmp.replace(path / CONFIG_FILE)
    cfg = load_config(path, env={})
    generate_self_signed(cfg.path(cfg.tls.cert), cfg.path(cfg.tls.key), hostname)
    run_async(_create_store, cfg, domain)
    return cfg


async def _create_store(cfg: Config, domain: str) -> int:
    store = await open_store(cfg)
    try:
        try:
            await store.add_domain(domain)
        except AlreadyExists:
            pass
    finally:
        await store.close()
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    cfg = init_dir(args.dir, args.domain, args.hostname, args.production, args.store)
    print(f"initialised {args.dir} for domain {args.domain} (host name {cfg.server.hostname})")
    print(f"next: courriel -d {args.dir} user add alice@{args.domain}")
    return 0
