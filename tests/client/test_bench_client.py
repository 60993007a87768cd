"""bench/client_fetch.py end to end in its --quick form (no timing asserted)."""

from __future__ import annotations

from bench import client_fetch


def test_client_fetch_bench_runs() -> None:
    results = client_fetch.run(quick=True)
    assert "courriel" in results
    assert all(r["fetch_s"] > 0 and r["retr_s"] > 0 for r in results.values())
