"""The quick run of bench/pop3.py: both servers answer every measured command (no timing asserted)."""

from __future__ import annotations

import os

from bench import pop3
from tests.tools import need


def test_pop3_bench_quick() -> None:
    names = {"courriel"}
    if os.geteuid() == 0 and pop3.PEER_CONF.exists():
        need("doveadm", "dovecot-pop3d")
        names.add("dovecot")
    results = pop3.run(quick=True)
    assert set(results) >= names
    for r in results.values():
        assert r["retr_s"] > 0 and r["login1"] > 0 and r["login10"] > 0
