"""IMAP: courriel beside Dovecot on the same mailbox, in one run (shared/TARGETS.md rows).

The same messages (2-16 KB, mean ~8.9 KB; 10,000, or 500 with --quick) go into a courriel
INBOX (through the store API) and into the Maildir of a private Dovecot started from
/work/shared/peers/dovecot.conf with its high-performance process model. Each figure is
the median of three rounds after a warm-up round, with Python's imaplib, the rounds
alternating between the two servers (both up):

- LOGIN + SELECT INBOX on a new connection;
- FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE); UID FETCH 1:* (FLAGS);
- FETCH of the last 50 (UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE), median of 5 per run;
- UID SEARCH FROM / SUBJECT / UNSEEN;
- STORE 1:1000 +FLAGS (\\Seen) (undone between runs);
- APPEND of one 5 KB message.

Ratios are Dovecot seconds / courriel seconds (above 1: courriel is faster).
"""

from __future__ import annotations

import asyncio
import imaplib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.pop3 import PASSWORD, PEER_CONF, USER, VMAIL_UID, _fill, dovecot_binary, messages
from tests.harness import CourrielServer, free_port

APPENDED = b"From: a@example.test\r\nTo: u@bench.test\r\nSubject: appended\r\n\r\n" + (b"z" * 78 + b"\r\n") * 64


def _client(port: int) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", port)
    client.login(USER, PASSWORD)
    client.select("INBOX")
    return client


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _round(port: int, count: int) -> dict[str, float]:
    """One round of every operation (LOGIN + SELECT on a new connection, then the rest)."""
    last50 = f"{max(1, count - 49)}:{count}"
    store_set = f"1:{min(1000, count)}"
    t = _timed(lambda: _client(port).logout())
    client = _client(port)
    timings = {"login_select": t, **_one_run(client, last50, store_set)}
    client.store(store_set, "-FLAGS", "(\\Seen)")
    client.logout()
    return timings


def _measure(ports: dict[str, int], count: int) -> dict[str, dict[str, float]]:
    """Rounds alternate between the servers (a change of load on the shared machine weighs
    on both alike); round 0 warms caches up; medians of the 3 others."""
    out: dict[str, dict[str, list[float]]] = {name: {} for name in ports}
    for run in range(4):
        for name, port in ports.items():
            timings = _round(port, count)
            if run:
                for k, v in timings.items():
                    out[name].setdefault(k, []).append(v)
    return {name: {k: sorted(v)[len(v) // 2] for k, v in ops.items()} for name, ops in out.items()}


def _one_run(client: imaplib.IMAP4, last50: str, store_set: str) -> dict[str, float]:
    return {
        "fetch_envelope": _timed(lambda: client.fetch("1:*", "(FLAGS RFC822.SIZE ENVELOPE)")),
        "uid_fetch_flags": _timed(lambda: client.uid("FETCH", "1:*", "(FLAGS)")),
        # well under a millisecond: the median of 5, so that one scheduling delay is not the figure
        "fetch_last50": sorted(
            _timed(lambda: client.fetch(last50, "(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE)")) for _ in range(5)
        )[2],
        "search_from": _timed(lambda: client.uid("SEARCH", "FROM", '"s77@example.test"')),
        "search_subject": _timed(lambda: client.uid("SEARCH", "SUBJECT", '"message 4242"')),
        "search_unseen": _timed(lambda: client.uid("SEARCH", "UNSEEN")),
        "store_1000": _timed(lambda: client.store(store_set, "+FLAGS", "(\\Seen)")),
        "append": _timed(lambda: client.append("INBOX", None, None, APPENDED)),
    }


class DovecotImap:
    """A private Dovecot (IMAP only) per shared/peers/dovecot.conf, on a free port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.conf = root / "dovecot.conf"

    def start(self, msgs: list[bytes], maildir: Path | None = None) -> None:
        """Start on ``msgs`` written into a new Maildir, or on an existing ``maildir``."""
        text = PEER_CONF.read_text().replace("@DIR@", str(self.root))
        text = text.replace("protocols = imap pop3", "protocols = imap")
        text = text.replace("port = 10143", f"port = {self.port}").replace("port = 10110", f"port = {free_port()}")
        text = "\n".join(line[1:] if line.startswith("#service") or line.startswith("#  ") or line == "#}" else line
                         for line in text.splitlines()) + "\n"  # fmt: skip
        text = text.replace("service pop3-login {\n  service_count = 0\n  process_min_avail = 2\n}\n", "")
        text = text.replace("service pop3 {\n  service_count = 100\n}\n", "")
        self.conf.write_text(text)
        (self.root / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        if maildir is not None:
            (self.root / "mail" / USER).mkdir(parents=True)
            (self.root / "mail" / USER / "Maildir").symlink_to(maildir)
            for path in [self.root / "mail", self.root / "mail" / USER]:
                os.chown(path, VMAIL_UID, VMAIL_UID)
        else:
            maildir = self.root / "mail" / USER / "Maildir"
            for sub in ("cur", "new", "tmp"):
                (maildir / sub).mkdir(parents=True)
            now = int(time.time())
            for i, data in enumerate(msgs):
                lf = data.replace(b"\r\n", b"\n")
                (maildir / "cur" / f"{now + i}.M{i}P1.bench,S={len(lf)},W={len(data)}:2,").write_bytes(lf)
            for path in [self.root / "mail", *(self.root / "mail").rglob("*")]:
                os.chown(path, VMAIL_UID, VMAIL_UID)
        subprocess.run([dovecot_binary(), "-c", str(self.conf)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                imaplib.IMAP4("127.0.0.1", self.port, timeout=2).logout()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not start: " + (self.root / "dovecot.log").read_text(errors="replace"))

    def stop(self) -> None:
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(quick: bool = False) -> dict[str, dict[str, float]]:
    count = 500 if quick else 10_000
    msgs = messages(count)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        (Path(tmp) / "courriel").mkdir()
        srv = CourrielServer(Path(tmp) / "courriel", users={USER: PASSWORD}, domain="bench.test", only=("imap",),
                             plaintext_auth=True)  # fmt: skip
        with srv:
            asyncio.run(_fill(srv.data, msgs))
            ports = {"courriel": srv.port("imap")}
            dovecot = None
            if PEER_CONF.exists() and shutil.which("doveadm") and os.geteuid() == 0:
                peer_root = Path(tmp) / "dovecot"
                peer_root.mkdir()
                peer_root.chmod(0o755)
                Path(tmp).chmod(0o755)
                dovecot = DovecotImap(peer_root)
            else:
                print("imap: Dovecot not available (scripts/test-deps installs dovecot-imapd; needs root)")
            try:
                if dovecot is not None:
                    dovecot.start(msgs)
                    ports["dovecot"] = dovecot.port
                results = _measure(ports, count)
            finally:
                if dovecot is not None:
                    dovecot.stop()
    _report(results, count)
    return results


def _report(results: dict[str, dict[str, float]], count: int) -> None:
    print(f"imap: imaplib, {count}-message INBOX, seconds (median of 3 after a warm-up)")
    names = list(results["courriel"])
    print(f"{'':>16}" + "".join(f"{n:>16}" for n in results))
    for key in names:
        row = "".join(f"{results[n][key]:>16.4f}" for n in results)
        ratio = f"{results['dovecot'][key] / results['courriel'][key]:>8.2f}" if "dovecot" in results else ""
        print(f"{key:>16}{row}{ratio}")
    if "dovecot" in results:
        print(f"{'':>16}ratio = Dovecot s / courriel s (>1: courriel faster)")


if __name__ == "__main__":
    run()
