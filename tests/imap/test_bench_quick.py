"""The short IMAP benchmark runs end to end (no timing asserted)."""

from __future__ import annotations

from bench import imap


def test_imap_bench_runs() -> None:
    results = imap.run(quick=True)
    assert set(results["courriel"]) >= {"login_select", "fetch_envelope", "uid_fetch_flags", "append"}
    assert all(v > 0 for v in results["courriel"].values())
