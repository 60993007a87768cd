"""JMAP at scale: a client's view of a 100,000-message INBOX (the mailbox of
bench/imap_scale.py, cached under /var/tmp/courriel-bench).

courriel: one JMAP request per page (Email/query sorted by receivedAt, then Email/get of
the 50 ids through a result reference: from, subject, receivedAt, keywords, size, preview),
over HTTP to `courriel serve`. ``list_cold`` is the first such request after `courriel
serve` starts (no account view in memory yet: answered from the store while the view is
built in the background); ``list_first`` follows a change of state (a flag set over JMAP),
so it includes patching the account view; ``list_again`` is the same request unchanged.
``read_message`` is Email/get of one message's text body values (messages this server has
not read before, READS a run), ``read_again`` the same request once more (its
bytes then come from :mod:`courriel.jmap.contentcache`); Dovecot's is ``UID FETCH 1
(BODY.PEEK[])`` for both.
``view_bytes`` (printed, not a ratio) is the memory one account view takes per Email. Reference, in the same run: the IMAP work that gives a client the same page
from Dovecot, ``UID SORT (REVERSE DATE)`` and a ``UID FETCH`` of the 50 envelopes (see
bench/webmail.py). Ratio = Dovecot / courriel (>1: courriel faster).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.imap_scale import PASSWORD, USER, cached_dirs, fill_courriel, fill_maildir
from bench.webmail import _dovecot_start, _med, measure_imap

RUNS = 5
#: Messages read per run (each first read, then again): the median is over all of them.
READS = 8
USING = ["urn:ietf:params:jmap:core", "urn:ietf:params:jmap:mail"]
PROPS = ["from", "subject", "receivedAt", "keywords", "size", "preview", "threadId", "mailboxIds"]


def _page(acct: str, flt: dict[str, Any], position: int = 0) -> list[list[Any]]:
    return [
        ["Email/query", {"accountId": acct, "filter": flt, "sort": [{"property": "receivedAt", "isAscending": False}],
                         "position": position, "limit": 50, "calculateTotal": True}, "q"],
        ["Email/get", {"accountId": acct, "#ids": {"resultOf": "q", "name": "Email/query", "path": "/ids"},
                       "properties": PROPS}, "g"],
    ]  # fmt: skip


def measure_courriel(base: str, n: int, runs: int) -> dict[str, float]:
    ops: dict[str, list[float]] = {}
    c = httpx.Client(base_url=base, auth=(USER, PASSWORD), timeout=600)
    session = c.get("/jmap/session").json()
    acct = session["primaryAccounts"]["urn:ietf:params:jmap:mail"]

    def api(name: str | None, calls: list[list[Any]]) -> list[Any]:
        t = time.perf_counter()
        r = c.post("/jmap/api", json={"using": USING, "methodCalls": calls})
        if name:
            ops.setdefault(name, []).append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
        out = r.json()["methodResponses"]
        assert all(o[0] != "error" for o in out), out
        return out  # type: ignore[no-any-return]

    boxes = api(None, [["Mailbox/get", {"accountId": acct, "properties": ["role"]}, "m"]])[0][1]["list"]
    inbox = next(b["id"] for b in boxes if b["role"] == "inbox")
    INBOX_ID[base] = inbox
    deep = max(1, n // 50 // 2)
    for run in range(runs + 1):  # run 0 warms caches up
        first = api(None, _page(acct, {"inMailbox": inbox}))
        eid = first[0][1]["ids"][0]
        api(None, [["Email/set", {"accountId": acct, "update": {eid: {"keywords/$flagged": True}}}, "s"]])
        first = api("list_first", _page(acct, {"inMailbox": inbox}))
        assert first[0][1]["total"] >= n and len(first[1][1]["list"]) == 50
        api("list_again", _page(acct, {"inMailbox": inbox}))
        api("list_deep_page", _page(acct, {"inMailbox": inbox}, (deep - 1) * 50))
        api("search_subject", _page(acct, {"inMailbox": inbox, "subject": f"report {n // 8}"}))
        api("search_body", _page(acct, {"inMailbox": inbox, "body": f"token{n // 2}x"}))
        for k in range(READS):  # messages this server has not read yet
            fresh = first[0][1]["ids"][1 + run * READS + k]
            read = [["Email/get", {"accountId": acct, "ids": [fresh], "properties": ["bodyValues", "textBody"],
                                   "fetchTextBodyValues": True}, "r"]]  # fmt: skip
            api("read_message", read)
            api("read_again", read)
        api(None, [["Email/set", {"accountId": acct, "update": {eid: {"keywords/$flagged": None}}}, "s"]])
        if run == 0:
            ops.clear()
    c.close()
    return {k: _med(v) for k, v in ops.items()}


INBOX_ID: dict[str, str] = {}


def measure_cold(base: str, inbox: str, n: int) -> float:
    """The first page request on a server just started (the session fetch not counted)."""
    with httpx.Client(base_url=base, auth=(USER, PASSWORD), timeout=600) as c:
        acct = c.get("/jmap/session").json()["primaryAccounts"]["urn:ietf:params:jmap:mail"]
        t = time.perf_counter()
        r = c.post("/jmap/api", json={"using": USING, "methodCalls": _page(acct, {"inMailbox": inbox})})
        took = time.perf_counter() - t
        out = r.json()["methodResponses"]
        assert r.status_code == 200 and out[0][1]["total"] >= n and len(out[1][1]["list"]) == 50, str(out[1])[:300]
    return took


def view_bytes(root: Path) -> float:
    """Memory of one account view per Email (tracemalloc over building it in this process)."""
    import tracemalloc

    from courriel.jmap.index import AccountIndex
    from courriel.store.sqlite.store import SQLiteStore

    async def build() -> float:
        data = root / "courriel" / "data"
        store = await SQLiteStore.open(data / "courriel.db", data / "blobs")
        try:
            user = await store.get_user(USER)
            assert user is not None
            tracemalloc.start()
            rows = await store.account_messages(user.id)
            before = tracemalloc.get_traced_memory()[0]
            idx = AccountIndex.build(user.modseq, rows, {})
            del rows
            size = tracemalloc.get_traced_memory()[0] - before + 0.0
            tracemalloc.stop()
            return size / max(1, len(idx.emails))
        finally:
            await store.close()

    return asyncio.run(build())


def run(quick: bool = False) -> dict[str, dict[str, float]]:
    from tests.harness import CourrielServer

    n = 300 if quick else 100_000
    runs = 1 if quick else RUNS
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        if quick:
            root = Path(tmp) / "scale"
            srv = CourrielServer(root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("http",))
            srv.start()
            srv.stop()
            asyncio.run(fill_courriel(srv.data, n))
            fill_maildir(root / "maildir", n)
        else:
            root = cached_dirs(n)
        srv = CourrielServer(root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("http",))
        with srv:
            base = f"http://127.0.0.1:{srv.port('http')}"
            results["courriel"] = measure_courriel(base, n, runs)
            inbox = INBOX_ID[base]
        cold = []
        for _ in range(runs):
            with CourrielServer(root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("http",)) as fresh:
                cold.append(measure_cold(f"http://127.0.0.1:{fresh.port('http')}", inbox, n))
        results["courriel"]["list_cold"] = _med(cold)
        per_email = view_bytes(root)
        peer = _dovecot_start(root, Path(tmp), quick)
        if peer is not None:
            try:
                results["dovecot"] = measure_imap(peer.port, n, runs)
            finally:
                peer.stop()
    _report(results, n)
    print(f"jmap: one account view holds {per_email:.0f} bytes per Email")
    return results


def run_cold(quick: bool = False, runs: int = RUNS) -> dict[str, float]:
    """``list_cold`` alone (``python -m bench.jmap --cold``): the first page after each of
    ``runs`` starts of courriel, against Dovecot's first page on each of ``runs`` new
    connections (LOGIN and SELECT not timed), without the rest of the bench."""
    from bench.imap_scale import RawImap
    from tests.harness import CourrielServer

    n = 300 if quick else 100_000
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        if quick:
            root = Path(tmp) / "scale"
            srv = CourrielServer(root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("http",))
            srv.start()
            srv.stop()
            asyncio.run(fill_courriel(srv.data, n))
            fill_maildir(root / "maildir", n)
        else:
            root = cached_dirs(n)
        with CourrielServer(root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("http",)) as srv:
            # the INBOX's id from a server of its own: Mailbox/get would build the account view
            with httpx.Client(base_url=f"http://127.0.0.1:{srv.port('http')}", auth=(USER, PASSWORD)) as c:
                acct = c.get("/jmap/session").json()["primaryAccounts"]["urn:ietf:params:jmap:mail"]
                boxes = c.post("/jmap/api", json={"using": USING, "methodCalls": [
                    ["Mailbox/get", {"accountId": acct, "properties": ["role"]}, "m"]]}, timeout=600).json()  # fmt: skip
            inbox = next(b["id"] for b in boxes["methodResponses"][0][1]["list"] if b["role"] == "inbox")
        cold = []
        for _ in range(runs):
            with CourrielServer(root / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("http",)) as fresh:
                cold.append(measure_cold(f"http://127.0.0.1:{fresh.port('http')}", inbox, n))
        out["courriel"] = _med(cold)
        peer = _dovecot_start(root, Path(tmp), quick)
        if peer is not None:
            firsts = []
            try:
                for _ in range(runs + 1):  # the first connection warms Dovecot's index up
                    imap = RawImap(peer.port)
                    imap.cmd(f"LOGIN {USER} {PASSWORD}")
                    imap.cmd("SELECT INBOX")
                    t = time.perf_counter()
                    data = imap.cmd("UID SORT (REVERSE DATE) UTF-8 ALL")
                    m = re.search(rb"\* SORT([\d ]*)", data)
                    uids = (m.group(1).split() if m else [])[:50]
                    imap.cmd(b"UID FETCH " + b",".join(uids) + b" (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")
                    firsts.append(time.perf_counter() - t)
                    imap.cmd("LOGOUT")
                    imap.close()
            finally:
                peer.stop()
            out["dovecot"] = _med(firsts[1:])
    ratio = f", ratio {out['dovecot'] / out['courriel']:.2f} (Dovecot / courriel)" if "dovecot" in out else ""
    print(f"jmap: {n}-message INBOX, list_cold median of {runs}: courriel {out['courriel']:.4f} s"
          + (f", Dovecot first page {out['dovecot']:.4f} s" if "dovecot" in out else "") + ratio)  # fmt: skip
    return out


def _report(results: dict[str, dict[str, float]], n: int) -> None:
    print(f"jmap: {n}-message INBOX, seconds (median); courriel = one JMAP query+get request, "
          "dovecot = the IMAP SORT + FETCH for the same page")  # fmt: skip
    print(f"{'':>16}" + "".join(f"{name:>12}" for name in results) + ("   ratio" if "dovecot" in results else ""))
    for key in results["courriel"]:
        # Dovecot's first page opens its index; its reading of a message is the same again.
        ref = {"list_cold": "list_first", "read_again": "read_message"}.get(key, key)
        row = "".join(f"{results[name].get(key if name == 'courriel' else ref, float('nan')):>12.4f}" for name in results)
        ratio = ""
        if "dovecot" in results and results["courriel"][key] > 0:
            ratio = f"{results['dovecot'][ref] / results['courriel'][key]:>8.2f}"
        print(f"{key:>16}{row}{ratio}")
    if "dovecot" in results:
        print(f"{'':>16}ratio = Dovecot / courriel (>1: courriel faster)")


if __name__ == "__main__":
    import sys

    if "--cold" in sys.argv:
        run_cold(quick="--quick" in sys.argv)
    else:
        run(quick="--quick" in sys.argv)
