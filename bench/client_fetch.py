"""The mail client: ``courriel mail fetch`` over POP3 into a Maildir, from courriel and from
Dovecot, in one run.

The same messages as bench/pop3.py (1,000, 8.9 MB; 200 with --quick) go into a courriel
INBOX and into a private Dovecot (shared/peers/dovecot.conf, POP3 only). For each server:

- fetch: the client's whole download (UIDL, LIST, RETR each message, write it durably
  into a fresh Maildir, record its UIDL), the median of 3 runs, alternating between the
  two servers so that disk noise (fsync latency varies a lot here) hits both alike;
- RETR: bench/pop3.py's bare poplib loop on the same server (no storage), so
  fetch / RETR is what the client adds (Maildir files fsynced, UIDL log).

Ratios: courriel / Dovecot fetch rates (above 1: faster from courriel), and the client's
overhead over bare RETR per server.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench.pop3 import PASSWORD, PEER_CONF, USER, Dovecot, _fill, messages, retr_all
from courriel.client.accounts import Account, Server
from courriel.client.fetch import Quiet, pop3_fetch
from tests.harness import CourrielServer


def fetch_once(port: int, count: int, target: Path) -> float:
    """One full download into an empty Maildir with no saved UIDLs."""
    account = Account(name="bench", address=USER, pop3=Server("127.0.0.1", port, "none"))
    account._password = PASSWORD
    start = time.perf_counter()
    result = pop3_fetch(account, target / "Maildir", target / "state", False, Quiet())
    elapsed = time.perf_counter() - start
    assert result.fetched == count, result
    shutil.rmtree(target)
    return elapsed


def _measure(ports: dict[str, int], count: int, work: Path) -> dict[str, dict[str, float]]:
    """Runs alternate between the servers, so disk noise (fsync latency) hits both alike."""
    fetches: dict[str, list[float]] = {name: [] for name in ports}
    retrs: dict[str, list[float]] = {name: [] for name in ports}
    for port in ports.values():
        retr_all(port, count)  # warm-up
    for run in range(3):
        for name, port in ports.items():
            retrs[name].append(retr_all(port, count)[0])
            fetches[name].append(fetch_once(port, count, work / f"{name}-{run}"))
    return {name: {"fetch_s": sorted(fetches[name])[1], "retr_s": sorted(retrs[name])[1]} for name in ports}


def run(quick: bool = False) -> dict[str, dict[str, float]]:
    count = 200 if quick else 1000
    msgs = messages(count)
    megabytes = sum(len(m) for m in msgs) / 1e6
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        srv = CourrielServer(Path(tmp) / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("pop3",),
                             plaintext_auth=True)  # fmt: skip
        (Path(tmp) / "courriel").mkdir()
        dovecot: Dovecot | None = None
        with srv:
            asyncio.run(_fill(srv.data, msgs))
            ports = {"courriel": srv.port("pop3")}
            try:
                if PEER_CONF.exists() and shutil.which("doveadm") and os.geteuid() == 0:
                    peer_root = Path(tmp) / "dovecot"
                    peer_root.mkdir()
                    peer_root.chmod(0o755)
                    Path(tmp).chmod(0o755)
                    dovecot = Dovecot(peer_root)
                    dovecot.start(msgs)
                    ports["dovecot"] = dovecot.port
                else:
                    print("client: Dovecot not available (scripts/test-deps installs dovecot-pop3d; needs root)")
                results = _measure(ports, count, Path(tmp) / "work")
            finally:
                if dovecot is not None:
                    dovecot.stop()
    _report(results, count, megabytes)
    return results


def _report(results: dict[str, dict[str, float]], count: int, megabytes: float) -> None:
    print(f"client: courriel mail fetch (POP3 → Maildir, durable), {count} messages ({megabytes:.1f} MB)")
    print(f"{'from':>8} {'fetch s':>8} {'msg/s':>8} {'MB/s':>7} {'bare RETR s':>12} {'fetch/RETR':>11}")
    for name, r in results.items():
        print(f"{name:>8} {r['fetch_s']:>8.3f} {count / r['fetch_s']:>8.0f} {megabytes / r['fetch_s']:>7.1f}"
              f" {r['retr_s']:>12.3f} {r['fetch_s'] / r['retr_s']:>11.2f}")  # fmt: skip
    if "dovecot" in results:
        ratio = results["dovecot"]["fetch_s"] / results["courriel"]["fetch_s"]
        print(f"{'ratio':>8} {ratio:>8.2f}   (fetch rate from courriel / from Dovecot; >1: courriel faster)")


if __name__ == "__main__":
    run()
