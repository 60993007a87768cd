"""The short version of bench/smtp.py (part of make test): it runs end to end against
courriel and Postfix and every accepted message is stored (no timing asserted)."""

from __future__ import annotations

from bench import postfix_peer, smtp
from tests.tools import need, unavailable


def test_smtp_bench_runs() -> None:
    need("smtp-source", "postfix")
    if not postfix_peer.available():
        unavailable("Postfix needs root here")
    rows = smtp.run(quick=True)
    assert [r[0] for r in rows] == [1, 10, 50]
    assert all(ours > 0 and pf_acc > 0 and pf_del > 0 and cpu > 0 for _, ours, _, pf_acc, pf_del, cpu in rows)
