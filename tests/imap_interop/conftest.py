"""Fixtures of the IMAP interoperability suite: one real server per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.imap_interop.clients import Clients
from tests.imap_interop.peers import Target, start_target


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from start_target(tmp_path_factory.mktemp("imap-interop"))


@pytest.fixture
def clients(target: Target) -> Iterator[Clients]:
    c = Clients(target)
    try:
        yield c
    finally:
        c.close()
