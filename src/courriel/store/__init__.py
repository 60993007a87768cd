"""The store: one API (:mod:`courriel.store.api`) for every protocol, and its backends."""

from __future__ import annotations

from courriel.config import Config
from courriel.store.api import Store


async def open_store(cfg: Config) -> Store:
    """Open the configured backend (call inside a running event loop)."""
    if cfg.store.backend == "sqlite":
        from courriel.store.sqlite.store import SQLiteStore

        return await SQLiteStore.open(
            cfg.path(cfg.store.path), cfg.path(cfg.store.blobs), cfg.limits.max_mime_depth
        )
    if cfg.store.backend == "postgres":
        from courriel.store.postgres.store import PostgresStore

        blob_dir = cfg.path(cfg.store.blob_dir) if cfg.store.blob_dir else None
        return await PostgresStore.open(cfg.store.dsn, blob_dir, cfg.limits.max_mime_depth, cfg.store.pool_size)
    raise NotImplementedError(f"store backend {cfg.store.backend!r} is not available")
