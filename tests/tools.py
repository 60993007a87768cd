"""External tools the tests drive (swaks, mbsync, fetchmail...): found, or skipped, or failed.

Outside CI a missing tool skips its test with the command that installs it; with CI=true a
missing tool is a failure, never a skip (scripts/test-deps installs them all).
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def need(tool: str, package: str | None = None) -> str:
    """The path of ``tool``; skips (fails under CI) when it is not installed."""
    path = shutil.which(tool) or next(
        (p for d in ("/usr/sbin", "/sbin", "/usr/lib/postfix/sbin") if os.access(p := f"{d}/{tool}", os.X_OK)), None
    )
    if path is not None:
        return path
    unavailable(f"{tool} is not installed (Debian package {package or tool}; see scripts/test-deps)")


def unavailable(msg: str) -> NoReturn:
    """Something a test needs is missing here: skip, but fail under CI=true."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg)
    pytest.skip(msg)
