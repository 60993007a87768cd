"""The short version of bench/lmtp.py (part of make test): Postfix in front of courriel over
LMTP, Postfix to Maildir and LMTP direct all run end to end (no timing asserted)."""

from __future__ import annotations

from bench import lmtp, postfix_peer
from tests.tools import need, unavailable


def test_lmtp_bench_runs() -> None:
    need("smtp-source", "postfix")
    if not postfix_peer.available():
        unavailable("Postfix needs root here")
    rows = lmtp.run(quick=True)
    assert [r[0] for r in rows] == [1, 10, 50]
    assert all(
        via > 0 and maildir > 0 and direct > 0 and cpu > 0 for _, via, maildir, direct, cpu in rows
    )
