"""The store suite runs on every backend in BACKENDS (SQLite and PostgreSQL by default)."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
