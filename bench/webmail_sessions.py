"""Webmail sessions (kept in the store, cached in the process): what a request pays for
being logged in.

courriel, over HTTP against `courriel serve`: ``login`` (password check and the session row
written durably, the redirect) and ``request`` (a logged-in GET of ``/mail/folders``: the
session found in the cache, the store asked again every ``sessions.RECHECK`` seconds, the
folder tree read and rendered). Reference, same run: what an IMAP-backed webmail (Roundcube,
which reconnects on every HTTP request) asks Dovecot for that page: connect, ``LOGIN``,
``LIST "" "*"``, ``LOGOUT``; ratio = Dovecot / courriel (>1: courriel faster). In process, on
a SQLite store: ``SessionTable.get`` from the cache and from the store (a recheck), and the
batched last-seen write of 1,000 sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import httpx

from bench.imap_scale import PASSWORD, USER, RawImap

RUNS = 300


def _med(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _login(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    token = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text)
    assert token
    r = client.post("/login", data={"username": USER, "password": PASSWORD, "login_token": token.group(1)})
    assert r.status_code == 303, r.text
    return client


def measure_courriel(base: str, runs: int) -> dict[str, float]:
    logins = []
    for _ in range(max(3, runs // 20)):
        t = time.perf_counter()
        _login(base).close()
        logins.append(time.perf_counter() - t)
    requests = []
    with contextlib.closing(_login(base)) as client:
        for _ in range(runs):
            t = time.perf_counter()
            r = client.get("/mail/folders")
            requests.append(time.perf_counter() - t)
            assert r.status_code == 200
    return {"login": _med(logins), "request": _med(requests)}


def measure_dovecot(port: int, runs: int) -> dict[str, float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        c = RawImap(port)
        c.cmd(f'LOGIN "{USER}" "{PASSWORD}"')
        c.cmd('LIST "" "*"')
        c.cmd("LOGOUT")
        c.close()
        out.append(time.perf_counter() - t)
    return {"request": _med(out)}


async def measure_table(root: Path, runs: int) -> dict[str, float]:
    from courriel.store.sqlite.store import SQLiteStore
    from courriel.webmail.sessions import RECHECK, SessionTable

    store = await SQLiteStore.open(root / "courriel.db", root / "blobs")
    try:
        await store.add_domain("bench.test")
        user = await store.add_user(USER, PASSWORD)
        now = [time.time()]
        table = SessionTable(store, 8 * 3600, 30 * 86400, lambda: now[0])
        tokens = [(await table.create(user.id, USER))[1] for _ in range(1000)]
        cached, fresh = [], []
        for i in range(runs):
            t = time.perf_counter()
            await table.get(tokens[i % 1000])
            cached.append(time.perf_counter() - t)
        for i in range(runs):
            now[0] += RECHECK  # every cached session is due for a check
            t = time.perf_counter()
            await table.get(tokens[i % 1000])
            fresh.append(time.perf_counter() - t)
        for token in tokens:
            await table.get(token)
        t = time.perf_counter()
        await table.flush()
        flush = time.perf_counter() - t
        return {"get_cached": _med(cached), "get_recheck": _med(fresh), "flush_1000": flush}
    finally:
        await store.close()


def run(quick: bool = False) -> dict[str, dict[str, float]]:
    from bench.pop3 import PEER_CONF
    from tests.harness import CourrielServer

    runs = 30 if quick else RUNS
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        srv = CourrielServer(root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("http",))
        with srv:
            results["courriel"] = measure_courriel(f"http://127.0.0.1:{srv.port('http')}", runs)
        if PEER_CONF.exists() and shutil.which("doveadm") and os.geteuid() == 0:
            from bench.imap import DovecotImap

            peer_root = root / "dovecot"
            peer_root.mkdir()
            peer_root.chmod(0o755)
            root.chmod(0o755)
            peer = DovecotImap(peer_root)
            peer.start([])
            try:
                results["dovecot"] = measure_dovecot(peer.port, runs)
            finally:
                peer.stop()
        else:
            print("webmail sessions: Dovecot not available (scripts/test-deps installs dovecot-imapd; needs root)")
        table_root = root / "table"
        table_root.mkdir()
        results["in-process"] = asyncio.run(measure_table(table_root, runs * 10))
    _report(results)
    return results


def _report(results: dict[str, dict[str, float]]) -> None:
    c = results["courriel"]
    print("webmail sessions, seconds (median):")
    print(f"{'login (password + durable session row)':>44}{c['login']:>12.5f}")
    line = f"{'logged-in request (GET /mail/folders)':>44}{c['request']:>12.5f}"
    if "dovecot" in results:
        d = results["dovecot"]["request"]
        line += f"   Dovecot connect+LOGIN+LIST+LOGOUT {d:.5f}, ratio {d / c['request']:.2f}"
    print(line)
    t = results["in-process"]
    print(f"{'SessionTable.get, cached':>44}{t['get_cached']:>12.6f}")
    print(f"{'SessionTable.get, checked in the store':>44}{t['get_recheck']:>12.6f}")
    print(f"{'last-seen flush of 1,000 sessions':>44}{t['flush_1000']:>12.6f}")
    if "dovecot" in results:
        print(f"{'':>44}ratio = Dovecot / courriel (>1: courriel faster)")


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
