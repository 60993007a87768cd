"""bench/imap_append.py runs end to end (no timing asserted): APPENDs measured and removed."""

from __future__ import annotations

from bench import imap_append


def test_imap_append_bench_runs() -> None:
    results = imap_append.run(quick=True)
    courriel = results[300]["courriel"]
    assert courriel["count"] == 20 and courriel["median_ms"] > 0 and courriel["cpu_us"] >= 0
