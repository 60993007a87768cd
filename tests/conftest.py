"""Shared fixtures: a store in a temporary directory, and a way to drive coroutines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from courriel.store.sqlite.store import SQLiteStore

T = TypeVar("T")


class StoreRunner:
    """A store opened on its own event loop, with a synchronous ``run`` for tests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.store = self.run(SQLiteStore.open(root / "courriel.db", root / "blobs"))

    def run(self, aw: Awaitable[T]) -> T:
        return self.loop.run_until_complete(aw)

    def settle(self) -> None:
        """Let callbacks already scheduled (change feed) run."""
        for _ in range(3):
            self.run(asyncio.sleep(0))

    def reopen(self) -> None:
        self.run(self.store.close())
        self.store = self.run(SQLiteStore.open(self.root / "courriel.db", self.root / "blobs"))

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[StoreRunner]:
    r = StoreRunner(tmp_path)
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

