"""Playwright driving Debian's Chromium (never a downloaded browser), headless."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, sync_playwright

from tests.harness import CourrielServer
from tests.tools import unavailable
from tests.webmail.helpers import ARTIFACTS, base_url

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def chromium_path() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    unavailable("chromium is not installed (scripts/debian-packages.txt; scripts/test-deps installs it)")


@contextmanager
def browser() -> Iterator[Browser]:
    path = chromium_path()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def shot(page: Page, name: str) -> None:
    """Keep a screenshot as a test artefact (tests/webmail/artifacts/, gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def log_in(page: Page, srv: CourrielServer, user: str = "alice@example.test", password: str = "alice-pw") -> None:
    page.goto(base_url(srv) + "/login")
    page.fill('input[name="username"]', user)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url("**/mail/box/*")
