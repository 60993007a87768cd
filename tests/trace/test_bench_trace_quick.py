"""`python -m bench.trace --quick` runs end to end (no timing asserted)."""

from __future__ import annotations

from bench import trace


def test_trace_bench_runs() -> None:
    result = trace.run(quick=True)
    assert result["retr_per_s_plain"] > 0 and result["retr_per_s_traced"] > 0
    assert result["machine_mb_s"] > 0 and result["transcript_kb"] > 0
