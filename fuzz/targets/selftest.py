"""A target that fails on purpose, for tests/fuzz: proves that a crash fails the run, that
its input is saved under crashes/, and that the next run replays it."""

from __future__ import annotations


def test_one(data: bytes) -> None:
    if data.startswith(b"CRASH"):
        raise RuntimeError("selftest: crashing input")


def seeds() -> list[bytes]:
    return [b"hello"]
