"""bench/outbound.py --quick runs end to end (no timing asserted)."""

from __future__ import annotations

from bench import outbound
from bench.postfix_peer import available
from tests.tools import need, unavailable


def test_outbound_bench_runs() -> None:
    need("postfix")
    if not available():
        unavailable("Postfix needs root here")
    result = outbound.run(quick=True)
    assert result is not None and result[0] > 0 and result[1] > 0
