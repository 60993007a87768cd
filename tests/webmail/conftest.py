"""One `courriel serve` (smtp + http) and one Chromium for the whole webmail test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.harness import CourrielServer
from tests.webmail.browser import browser


@pytest.fixture(scope="package")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CourrielServer]:
    server = CourrielServer(tmp_path_factory.mktemp("webmail"), only=("smtp", "http"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def chrome() -> Iterator[Browser]:
    with browser() as b:
        yield b
