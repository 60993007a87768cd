"""The short IMAP benchmarks run end to end (no timing asserted)."""

from __future__ import annotations

from bench import imap, imap_load, imap_scale


def test_imap_bench_runs() -> None:
    results = imap.run(quick=True)
    assert set(results["courriel"]) >= {"login_select", "fetch_envelope", "uid_fetch_flags", "append"}
    assert all(v > 0 for v in results["courriel"].values())


def test_imap_scale_bench_runs() -> None:
    results = imap_scale.run(quick=True)
    assert set(results["courriel"]) >= {"select", "uid_fetch_flags", "search_body", "sort_subject", "idle_kb"}


def test_imap_load_bench_runs() -> None:
    results = imap_load.run(quick=True)
    assert all(rate > 0 for rate in results["courriel"].values())
