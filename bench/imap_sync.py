"""Mail synchronisers against courriel and Dovecot, side by side in one run.

mbsync and offlineimap3 (both over IMAPS) copy a generated INBOX of 5,000
messages (300 with --quick; tests/imap_interop/corpus.py) into an empty Maildir, then run
again with nothing to do. The same tools, configurations and messages go against courriel
(loaded with `courriel import`) and a private Dovecot (shared/peers/dovecot.conf, loaded
over IMAP APPEND beforehand). Ratios are Dovecot seconds / courriel seconds (above 1:
courriel is faster). These are what the tools take end to end, their own work included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.imap_interop.corpus import corpus, maildir_files, write_mbox
from tests.imap_interop.peers import DOVECOT_TEMPLATE, Target, start_target

USER = "alice@example.test"


def _mbsync_rc(t: Target, work: Path) -> list[str]:
    rc = work / "mbsyncrc"
    rc.write_text(
        f"IMAPAccount a\nHost {t.host}\nPort {t.imaps_port}\nUser {USER}\nPass {t.users[USER]}\n"
        f"SSLType IMAPS\nCertificateFile {t.cert}\n\nIMAPStore remote\nAccount a\n\n"
        f"MaildirStore local\nPath {work}/mbsync/\nInbox {work}/mbsync/INBOX\n\n"
        "Channel inbox\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nExpunge Both\nSyncState *\n"
    )
    (work / "mbsync").mkdir()
    return ["mbsync", "-q", "-c", str(rc), "-a"]


def _offlineimap_rc(t: Target, work: Path) -> list[str]:
    rc = work / "offlineimaprc"
    rc.write_text(
        f"[general]\naccounts = a\nmetadata = {work}/oi-meta\n\n[Account a]\nlocalrepository = l\n"
        f"remoterepository = r\n\n[Repository l]\ntype = Maildir\nlocalfolders = {work}/oi\n\n"
        f"[Repository r]\ntype = IMAP\nremotehost = localhost\nremoteport = {t.imaps_port}\n"
        f"remoteuser = {USER}\nremotepass = {t.users[USER]}\nssl = yes\n"
        f"sslcacertfile = {t.cert}\nfolderfilter = lambda name: name == 'INBOX'\n"
    )
    (work / "oi").mkdir()
    return ["offlineimap", "-c", str(rc), "-o", "-u", "quiet"]


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    return elapsed


def _measure(t: Target, work: Path, mbox: Path, count: int) -> dict[str, float]:
    t.load_mbox(USER, mbox)
    out: dict[str, float] = {}
    tools: list[tuple[str, Callable[[Target, Path], list[str]], Path]] = [
        ("mbsync", _mbsync_rc, work / "mbsync" / "INBOX"),
        ("offlineimap", _offlineimap_rc, work / "oi" / "INBOX"),
    ]
    for name, rc, local in tools:
        cmd = rc(t, work)
        out[f"{name} first sync"] = _timed(cmd)
        assert len(maildir_files(local)) == count, f"{name}: {len(maildir_files(local))} of {count} messages"
        out[f"{name} nothing to do"] = _timed(cmd)
    return out


def run(quick: bool = False) -> dict[str, dict[str, float]]:
    count = 300 if quick else 5000
    missing = [tool for tool in ("mbsync", "offlineimap") if shutil.which(tool) is None]
    if missing:
        print(f"imap_sync: {', '.join(missing)} not installed (scripts/test-deps installs them)")
        return {}
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        root = Path(tmp)
        mbox = root / "corpus.mbox"
        write_mbox(mbox, corpus(count))
        peers = ["courriel"]
        if DOVECOT_TEMPLATE.exists() and shutil.which("dovecot") and os.geteuid() == 0:
            peers.append("dovecot")
        else:
            print("imap_sync: Dovecot not available (dovecot-imapd, root): courriel figures only")
        for peer in peers:
            work = root / peer
            work.mkdir()
            gen = start_target(work / "server", peer=peer)
            target = next(gen)
            try:
                results[peer] = _measure(target, work, mbox, count)
            finally:
                gen.close()
    _report(results, count)
    return results


def _report(results: dict[str, dict[str, float]], count: int) -> None:
    if not results:
        return
    print(f"imap_sync: {count}-message INBOX into an empty Maildir, then again; seconds")
    print(f"  {'':28} {'courriel':>9} {'dovecot':>9} {'ratio':>7}")
    for name, ours in results["courriel"].items():
        ref = results.get("dovecot", {}).get(name)
        ratio = f"{ref / ours:7.2f}" if ref else "      -"
        print(f"  {name:28} {ours:9.3f} {ref if ref else float('nan'):9.3f} {ratio}")


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
