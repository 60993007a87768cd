"""The short version of bench/sieve.py (part of make test): courriel with and without a Sieve
script, Postfix, and Dovecot + Pigeonhole all deliver every message (no timing asserted)."""

from __future__ import annotations

from bench import postfix_peer, sieve
from tests.tools import need, unavailable


def test_sieve_bench_runs() -> None:
    need("smtp-source", "postfix")
    if not postfix_peer.available():
        unavailable("Postfix needs root here")
    plain, filtered, cpu_plain, cpu_sieve, postfix, dovecot = sieve.run(quick=True)
    assert min(plain, filtered, cpu_plain, cpu_sieve, postfix) > 0
    if sieve.DovecotSieve.available():
        assert dovecot > 0
