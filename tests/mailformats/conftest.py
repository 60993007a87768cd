"""Fixtures for the mailformats tests: one synthetic 10,000-message mbox per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .synth import Synthetic, synthetic_mbox


@pytest.fixture(scope="session")
def big_mbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Synthetic]:
    synthetic = synthetic_mbox(10_000, seed=20261129)
    path = tmp_path_factory.mktemp("big") / "big.mbox"
    path.write_bytes(synthetic.file)
    return path, synthetic
