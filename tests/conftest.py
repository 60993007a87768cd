"""Shared fixtures: a store in a temporary directory, and a way to drive coroutines."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from courriel.store.api import Store
from courriel.store.sqlite.store import SQLiteStore

T = TypeVar("T")


#: Store backends the store tests run on (env COURRIEL_TEST_BACKENDS, comma-separated).
BACKENDS = [b.strip() for b in os.environ.get("COURRIEL_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()]


class StoreRunner:
    """A store opened on its own event loop, with a synchronous ``run`` for tests.

    ``backend`` "postgres" opens a PostgresStore on a fresh database of the test process's
    private cluster (tests/pg.py), dropped at close."""

    def __init__(self, root: Path, backend: str = "sqlite", dsn: str | None = None) -> None:
        self.root = root
        self.backend = backend
        self.loop = asyncio.new_event_loop()
        self.own_db = False
        if backend == "postgres" and dsn is None:
            from tests.pg import cluster

            dsn = cluster().fresh_dsn()
            self.own_db = True
        self.dsn = dsn
        try:
            self.store: Store = self.run(self._open())
        except BaseException:
            self.loop.close()
            raise

    async def _open(self) -> Store:
        if self.backend == "postgres":
            from courriel.store.postgres.store import PostgresStore

            assert self.dsn is not None
            return await PostgresStore.open(self.dsn)
        return await SQLiteStore.open(self.root / "courriel.db", self.root / "blobs")

    def run(self, aw: Awaitable[T]) -> T:
        return self.loop.run_until_complete(aw)

    def settle(self) -> None:
        """Let callbacks already scheduled (change feed) run."""
        for _ in range(3):
            self.run(asyncio.sleep(0))

    def reopen(self) -> None:
        self.run(self.store.close())
        self.store = self.run(self._open())

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        if self.own_db and self.dsn is not None:
            from tests.pg import cluster

            cluster().drop(self.dsn)


@pytest.fixture
def backend() -> str:
    """The store backend of ``runner`` (tests/store overrides it with both)."""
    return "sqlite"


@pytest.fixture
def runner(tmp_path: Path, backend: str) -> Iterator[StoreRunner]:
    r = StoreRunner(tmp_path, backend)
    try:
        yield r
    finally:
        r.close()


def message(subject: str = "hello", body: str = "Hello.\r\n", sender: str = "bob@example.test") -> bytes:
    return (
        f"From: Bob <{sender}>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
        f"Date: Sun, 29 Nov 2026 00:00:00 +0000\r\nMessage-ID: <{abs(hash(subject + body))}@example.test>\r\n"
        f"\r\n{body}"
    ).encode()

