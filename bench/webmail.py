"""Webmail at scale: the message list of a 100,000-message INBOX (the mailbox of
bench/imap_scale.py, cached under /var/tmp/courriel-bench), page by page, searched, read.

courriel: HTTP requests to the webmail of `courriel serve` (a logged-in session, the whole
server-rendered page). Reference, in the same run: the IMAP work any IMAP-backed webmail
(Roundcube, SOGo...) needs from Dovecot for the same page: ``UID SORT (REVERSE DATE)`` and a
``UID FETCH`` of the 50 envelopes shown (no HTML rendering counted on its side). Ratio =
Dovecot / courriel (>1: courriel's whole page is faster than Dovecot's data for it).

The conversation list (``threads_*``: one row per thread, 50 threads a page; the generated
mailbox has 25,000 threads of 4) against what an IMAP-backed webmail asks Dovecot for it:
``UID THREAD REFERENCES`` of the folder, then ``UID FETCH`` of the FLAGS of the page's
threads' messages (their unread and flagged counts) and of the envelopes of their latest
messages.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.imap import DovecotImap
from bench.imap_scale import PASSWORD, USER, RawImap, cached_dirs, fill_courriel, fill_maildir

RUNS = 5


def _med(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _login(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=300)
    page = client.get("/login")
    token = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/login", data={"username": USER, "password": PASSWORD, "login_token": token.group(1)})
    assert r.status_code == 303, r.text
    return client


def measure_courriel(base: str, n: int, runs: int) -> dict[str, float]:
    ops: dict[str, list[float]] = {}

    def timed(name: str, c: httpx.Client, url: str) -> httpx.Response:
        t = time.perf_counter()
        r = c.get(url)
        ops.setdefault(name, []).append(time.perf_counter() - t)
        assert r.status_code == 200, (name, r.status_code)
        return r

    deep = max(1, n // 50 // 2)
    for run in range(runs + 1):  # run 0 warms caches up
        c = _login(base)
        inbox = c.get("/mail/").headers["location"]
        first = timed("list_first", c, inbox)  # a new session: sorts the whole folder
        count = re.search(r"(\d+) messages", first.text)  # bench/imap_scale.py appends a few
        assert count and int(count.group(1)) >= n, first.text[:2000]
        timed("list_again", c, inbox)  # the session's sorted UIDs
        timed("list_deep_page", c, f"{inbox}?page={deep}")
        timed("search_subject", c, f"{inbox}?q=report+{n // 8}&in=subject")
        timed("search_body", c, f"{inbox}?q=token{n // 2}x&in=body")
        uid = re.search(r'data-uid="(\d+)"', first.text)
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', first.text)
        assert uid and csrf
        timed("read_message", c, f"{inbox}/{uid.group(1)}")
        # leave the cached mailbox as it was
        c.post("/mail/action", data={"csrf": csrf.group(1), "mailbox": inbox.rsplit("/", 1)[1],
                                     "uid": uid.group(1), "op": "unread"})  # fmt: skip
        # The conversation list: a new session's first look builds the thread order.
        threads = timed("threads_first", c, f"{inbox}?view=conversations")
        count = re.search(r"(\d+) conversations", threads.text)
        assert count and threads.text.count('class="msg thread-row') == 50, threads.text[:2000]
        timed("threads_again", c, inbox)  # remembered in the session, and its thread order
        timed("threads_deep", c, f"{inbox}?page={max(1, int(count.group(1)) // 50 // 2)}")
        c.close()
        if run == 0:  # warming up; but the first conversation list after a start is kept
            cold = ops["threads_first"]
            ops.clear()
            ops["threads_cold"] = cold
    return {k: _med(v) for k, v in ops.items()}


def measure_imap(port: int, n: int, runs: int) -> dict[str, float]:
    """The IMAP commands an IMAP-backed webmail sends for the same pages."""
    ops: dict[str, list[float]] = {}

    def timed(name: str, fn: Callable[..., object], *args: object) -> None:
        t = time.perf_counter()
        fn(*args)
        ops.setdefault(name, []).append(time.perf_counter() - t)

    def page(c: RawImap, offset: int, search: str = "ALL") -> None:
        data = c.cmd(f"UID SORT (REVERSE DATE) UTF-8 {search}")
        m = re.search(rb"\* SORT([\d ]*)", data)
        uids = m.group(1).split() if m else []
        shown = uids[offset : offset + 50]
        if shown:
            c.cmd(b"UID FETCH " + b",".join(shown) + b" (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")

    deep = max(1, n // 50 // 2)
    for run in range(runs + 1):
        c = RawImap(port)
        c.cmd(f"LOGIN {USER} {PASSWORD}")
        c.cmd("SELECT INBOX")
        timed("list_first", page, c, 0)
        timed("list_again", page, c, 0)
        timed("list_deep_page", page, c, (deep - 1) * 50)
        timed("search_subject", page, c, 0, f'SUBJECT "report {n // 8}"')
        timed("search_body", page, c, 0, f"BODY token{n // 2}x")
        timed("read_message", c.cmd, "UID FETCH 1 (BODY.PEEK[])")
        threads = thread_count(c)
        timed("threads_first", thread_page, c, 0)
        timed("threads_again", thread_page, c, 0)
        timed("threads_deep", thread_page, c, max(0, (threads // 50 // 2 - 1) * 50))
        c.cmd("LOGOUT")
        c.close()
        if run == 0:  # warming up; but the first conversation list after a start is kept
            cold = ops["threads_first"]
            ops.clear()
            ops["threads_cold"] = cold
    return {k: _med(v) for k, v in ops.items()}


def top_threads(data: bytes) -> list[list[bytes]]:
    """The UIDs of each top-level thread of a THREAD response (RFC 5256 §4), in its order."""
    line = data[data.find(b"* THREAD") + 8 :].split(b"\r\n", 1)[0]
    out: list[list[bytes]] = []
    depth = 0
    for token in re.findall(rb"\(|\)|\d+", line):
        if token == b"(":
            if depth == 0:
                out.append([])
            depth += 1
        elif token == b")":
            depth -= 1
        else:
            out[-1].append(token)
    return out


def thread_count(c: RawImap) -> int:
    return len(top_threads(c.cmd("UID THREAD REFERENCES UTF-8 ALL")))


def thread_page(c: RawImap, offset: int) -> None:
    """A conversation page over IMAP: the threads, newest first (RFC 5256 orders them oldest
    first), then the flags of their messages and the envelopes of their latest ones."""
    threads = top_threads(c.cmd("UID THREAD REFERENCES UTF-8 ALL"))
    threads.reverse()
    shown = threads[offset : offset + 50]
    every = [uid for t in shown for uid in t]
    if every:
        c.cmd(b"UID FETCH " + b",".join(every) + b" (UID FLAGS)")
        latest = [max(t, key=int) for t in shown]
        c.cmd(b"UID FETCH " + b",".join(latest) + b" (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")


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
            results["courriel"] = measure_courriel(f"http://127.0.0.1:{srv.port('http')}", n, runs)
        peer = _dovecot_start(root, Path(tmp), quick)
        if peer is not None:
            try:
                results["dovecot"] = measure_imap(peer.port, n, runs)
            finally:
                peer.stop()
    _report(results, n)
    if not quick:
        write_doc(results, n, runs)
    return results


def _dovecot_start(root: Path, tmp: Path, quick: bool) -> DovecotImap | None:
    """A private Dovecot on the same messages (the Maildir of the cache), as bench/imap_scale.py."""
    from bench.pop3 import PEER_CONF, VMAIL_UID

    if not (PEER_CONF.exists() and shutil.which("doveadm") and os.geteuid() == 0):
        print("webmail: Dovecot not available (scripts/test-deps installs dovecot-imapd; needs root)")
        return None
    peer_root = tmp / "dovecot"
    peer_root.mkdir()
    peer_root.chmod(0o755)
    tmp.chmod(0o755)
    maildir = root / "maildir"
    for path in [root, maildir, *maildir.iterdir()]:
        path.chmod(0o755)
    os.chown(maildir, VMAIL_UID, VMAIL_UID)
    for sub in maildir.iterdir():
        os.chown(sub, VMAIL_UID, VMAIL_UID)
    if quick or not (maildir / ".owned").exists():
        for f in (maildir / "cur").iterdir():
            os.chown(f, VMAIL_UID, VMAIL_UID)
        (maildir / ".owned").write_text("")
    dovecot = DovecotImap(peer_root)
    dovecot.start([], maildir=maildir)
    return dovecot


def _report(results: dict[str, dict[str, float]], n: int) -> None:
    print(f"webmail: {n}-message INBOX, seconds (median); courriel = whole HTML page, "
          "dovecot = the IMAP SORT + FETCH behind it")  # fmt: skip
    print(f"{'':>16}" + "".join(f"{name:>12}" for name in results) + ("   ratio" if "dovecot" in results else ""))
    for key in results["courriel"]:
        row = "".join(f"{results[name].get(key, float('nan')):>12.4f}" for name in results)
        ratio = ""
        if "dovecot" in results and results["courriel"][key] > 0:
            ratio = f"{results['dovecot'][key] / results['courriel'][key]:>8.2f}"
        print(f"{key:>16}{row}{ratio}")
    if "dovecot" in results:
        print(f"{'':>16}ratio = Dovecot / courriel (>1: courriel faster)")


DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
MARK_BEGIN = "<!-- bench/webmail.py begin -->"
MARK_END = "<!-- bench/webmail.py end -->"
WHAT = {
    "list_first": "message list, first page (new session: the folder sorted)",
    "list_again": "message list, first page again",
    "list_deep_page": "message list, a page in the middle",
    "search_subject": "search in subjects",
    "search_body": "search in bodies",
    "read_message": "open a message",
    "threads_cold": "conversation list, first page, first time since the start (one run)",
    "threads_first": "conversation list, first page (new session)",
    "threads_again": "conversation list, first page again",
    "threads_deep": "conversation list, a page in the middle",
}


def write_doc(results: dict[str, dict[str, float]], n: int, runs: int) -> None:
    """The table of a full run into docs/benchmarks.md (its own marked section)."""
    peer = "dovecot" in results
    lines = [
        MARK_BEGIN,
        "## Webmail at scale (`bench/webmail.py`)",
        "",
        f"A {n:,}-message INBOX (bench/imap_scale.py's, 25,000 threads of 4), medians of {runs} runs, each a",
        "new logged-in session. courriel: the whole server-rendered page over HTTP. Dovecot, same run:",
        "the IMAP data an IMAP-backed webmail needs for the same page (`UID SORT (REVERSE DATE)` +",
        "`UID FETCH` of 50 envelopes; for conversations `UID THREAD REFERENCES` + the FLAGS of the",
        "page's threads + the envelopes of their latest messages), no HTML rendering on its side.",
        f"{os.cpu_count()} CPUs shared with other work (load average {os.getloadavg()[0]:.1f} at the end of the run).",
        "Ratio: Dovecot / courriel (>1: courriel faster).",
        "",
        "| page | courriel s | Dovecot s | ratio |" if peer else "| page | courriel s |",
        "|---|---:|---:|---:|" if peer else "|---|---:|",
    ]
    for key, value in results["courriel"].items():
        row = f"| {WHAT.get(key, key)} | {value:.3f} |"
        if peer:
            other = results["dovecot"].get(key, float("nan"))
            row += f" {other:.3f} | {other / value:.2f} |" if value > 0 else f" {other:.3f} | |"
        lines.append(row)
    lines.append(MARK_END)
    section = "\n".join(lines) + "\n"
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nWritten by `make bench`; each section by its benchmark.\n\n"
    if MARK_BEGIN in text and MARK_END in text:
        head, _, rest = text.partition(MARK_BEGIN)
        _, _, tail = rest.partition(MARK_END + "\n")
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
