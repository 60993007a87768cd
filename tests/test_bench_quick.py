"""The short version of `make bench`: every benchmark runs end to end (no timing asserted)."""

from __future__ import annotations

import asyncio

from bench import store_append


def test_store_append_bench_runs() -> None:
    rows = asyncio.run(store_append.run(quick=True))
    assert [r[0] for r in rows] == [1, 10, 50]
    assert all(ours > 0 and ref > 0 for _, ours, ref in rows)
