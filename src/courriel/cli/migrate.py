"""``courriel migrate``: apply pending schema migrations of the configured store, and say what
was done. SQLite also migrates when a store opens; PostgreSQL nodes too, under an advisory
lock, but operators of several nodes run this once before upgrading them."""

from __future__ import annotations

import argparse
from typing import Any

from courriel.cli.main import data_dir
from courriel.config import Config, load_config


def register(sub: Any) -> None:
    p = sub.add_parser("migrate", help="apply pending store schema migrations (SQLite or PostgreSQL)")
    p.set_defaults(func=cmd_migrate)


def migrate_store(cfg: Config) -> tuple[list[int], int]:
    """(versions applied, schema version now) for the configured backend."""
    if cfg.store.backend == "postgres":
        from courriel.store.postgres import schema

        applied = schema.migrate_dsn(cfg.store.dsn)
        return applied, schema.version_dsn(cfg.store.dsn)
    from courriel.store.sqlite import db

    cfg.path(cfg.store.path).parent.mkdir(parents=True, exist_ok=True)
    conn = db.connect(cfg.path(cfg.store.path))
    try:
        applied = db.migrate(conn)
        return applied, db.schema_version(conn)
    finally:
        conn.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    cfg = load_config(data_dir(args))
    where = _redact(cfg.store.dsn) if cfg.store.backend == "postgres" else str(cfg.path(cfg.store.path))
    applied, version = migrate_store(cfg)
    if applied:
        print(f"{cfg.store.backend} store {where}: applied migration(s) {', '.join(map(str, applied))};"
              f" schema version {version}")  # fmt: skip
    else:
        print(f"{cfg.store.backend} store {where}: schema version {version} is current, nothing to do")
    return 0


def _redact(dsn: str) -> str:
    """A DSN without its password, for output."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        parts = conninfo_to_dict(dsn)
    except Exception:
        return "(dsn)"
    if "password" in parts:
        parts["password"] = "***"
    return make_conninfo(**{k: str(v) for k, v in parts.items() if v is not None})
