"""Fixtures for the mail client tests: Dovecot + Postfix on loopback (one set per session,
a fresh pool user per test), and an account file per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.helpers import Mail
from tests.client.peers import Peers, make_root


@pytest.fixture(scope="session")
def peers() -> Iterator[Peers]:
    p = Peers(make_root())
    try:
        p.start()
        yield p
    finally:
        p.stop()
        shutil.rmtree(p.root, ignore_errors=True)


@pytest.fixture
def mail(tmp_path: Path) -> Mail:
    return Mail(tmp_path / "config" / "accounts.toml")
