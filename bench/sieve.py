"""Sieve at delivery: what a user's filter script costs per message, beside Postfix.

One run on loopback, 5 KB messages from ``smtp-source`` (one per connection) at 10 concurrent
sessions, interleaved rounds, medians:

- "courriel, no script": the MX storing into INBOX (as bench/smtp.py).
- "courriel, Sieve": the same to a user whose active script (installed over ManageSieve)
  runs a dozen tests of the usual kinds (header, address, envelope, body, size, variables)
  before a fileinto with imap4flags; every message lands in that mailbox.
- "Postfix → Maildir": the reference MTA delivering to Maildir (bench/postfix_peer.py).

Ratios: Sieve / no script (the filter's overhead, 1.0 = free), Sieve / Postfix, and Sieve /
Dovecot + Pigeonhole.
- "Dovecot LMTP + Pigeonhole": the reference Sieve implementation, the same script, fed by
  ``smtp-source -L`` (LMTP, one message per connection) from shared/peers/dovecot.conf with
  the lmtp protocol and the sieve plugin; msg/s until every file is in its Maildir folder.
  (Needs dovecot-lmtpd and dovecot-sieve; skipped with a note when absent.)
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from sievelib.managesieve import Client

from bench.pop3 import PEER_CONF, VMAIL_UID, dovecot_binary
from bench.postfix_peer import PostfixPeer, available
from bench.smtp import SIZE, SMTP_SOURCE, _cpu_seconds, smtp_source
from tests.harness import CourrielServer, free_port

REPEAT = 3
CONCURRENCY = 10
SCRIPT = r"""
require ["fileinto", "envelope", "imap4flags", "variables", "body", "relational", "mailbox"];
if header :contains "list-id" ["announce", "dev", "users"] { fileinto "Lists"; stop; }
if address :domain :is "from" ["spam.example", "ads.example"] { discard; stop; }
if envelope :localpart :is "from" "billing" { fileinto "Billing"; stop; }
if header :matches "subject" "*[urgent]*" { addflag "\\Flagged"; }
if exists "x-mailer-spam" { fileinto "Junk"; stop; }
if header :value "gt" "x-priority" "3" { fileinto "Later"; stop; }
if anyof (header :is "subject" "unsubscribe", header :contains "from" "noreply") { fileinto "Noise"; stop; }
if body :contains "lottery winner" { fileinto "Junk"; stop; }
if header :matches "to" "*@*" { set "domain" "${2}"; }
if size :over 1K { fileinto :create :flags "$bench" "Filtered"; }
"""


class DovecotSieve:
    """A private Dovecot delivering over LMTP with Pigeonhole running ``SCRIPT``."""

    USER = "sieve@bench.test"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.conf = root / "dovecot.conf"

    @staticmethod
    def available() -> bool:
        return shutil.which("doveadm") is not None and Path("/usr/lib/dovecot/lmtp").exists() and Path(
            "/usr/lib/dovecot/modules/lib90_sieve_plugin.so"
        ).exists()

    def start(self) -> DovecotSieve:
        text = PEER_CONF.read_text().replace("@DIR@", str(self.root))
        text = text.replace("protocols = imap pop3", "protocols = lmtp")
        text = text.replace("port = 10110", f"port = {free_port()}").replace("port = 10143", f"port = {free_port()}")
        text += f"""
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
  process_min_avail = 2
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
}}
plugin {{
  sieve = file:~/sieve;active=~/.dovecot.sieve
}}
"""
        self.conf.write_text(text)
        (self.root / "users").write_text(f"{self.USER}:{{PLAIN}}pw\n")
        home = self.root / "mail" / self.USER
        (home / "sieve").mkdir(parents=True)
        (home / ".dovecot.sieve").write_text(SCRIPT)
        for path in [self.root / "mail", *(self.root / "mail").rglob("*")]:
            os.chown(path, VMAIL_UID, VMAIL_UID)
        subprocess.run([dovecot_binary(), "-c", str(self.conf)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 20
        while True:
            try:
                import socket

                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("dovecot lmtp did not start") from None
                time.sleep(0.1)

    def count(self) -> int:
        folder = self.root / "mail" / self.USER / "Maildir" / ".Filtered"
        return sum(len(os.listdir(folder / sub)) for sub in ("new", "cur") if (folder / sub).is_dir())

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        subprocess.run(["doveadm", "-c", str(self.conf), "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _lmtp_source(port: int, n: int, rcpt: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [SMTP_SOURCE, "-L", "-s", str(CONCURRENCY), "-m", str(n), "-l", str(SIZE), "-f", "sender@remote.test",
         "-t", rcpt, "-M", "client.test", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0 or proc.stderr.strip():
        raise RuntimeError(f"smtp-source -L failed: {proc.stdout}{proc.stderr}")  # see dovecot.log
    return time.perf_counter() - start


def _count(data: Path, user: str, mailbox: str) -> int:
    conn = sqlite3.connect(f"file:{data / 'courriel.db'}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT messages FROM mailboxes WHERE name = ? AND user_id = (SELECT id FROM users WHERE address = ?)",
            (mailbox, user),
        ).fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


def _install(srv: CourrielServer) -> None:
    client = Client("127.0.0.1", srv.port("managesieve"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if not client.connect("sieve@bench.test", "pw", authmech="PLAIN"):
            raise RuntimeError("ManageSieve login failed")
    if not (client.putscript("bench", SCRIPT) and client.setactive("bench")):
        raise RuntimeError(f"PUTSCRIPT failed: {client.errmsg!r}")
    client.logout()


def _round(
    srv: CourrielServer, peer: PostfixPeer, dove: DovecotSieve | None, n: int
) -> tuple[float, float, float, float, float, float]:
    """(plain msg/s, Sieve msg/s, plain CPU ms, Sieve CPU ms, Postfix delivered msg/s,
    Dovecot + Pigeonhole msg/s or 0)."""
    assert srv.proc is not None
    pid = srv.proc.pid
    out: list[float] = []
    for user, box in (("plain@bench.test", "INBOX"), ("sieve@bench.test", "Filtered")):
        before = _count(srv.data, user, box)
        cpu0 = _cpu_seconds(pid)
        t = smtp_source(srv.port("smtp"), n, CONCURRENCY, user)
        out += [n / t, (_cpu_seconds(pid) - cpu0) / n * 1000]
        if _count(srv.data, user, box) - before != n:
            raise RuntimeError(f"{user}: not every message reached {box}")
    pf_before = peer.maildir_count()
    start = time.perf_counter()
    smtp_source(peer.port, n, CONCURRENCY, "u@bench.test")
    deadline = time.monotonic() + 300
    while peer.maildir_count() - pf_before < n:
        if time.monotonic() > deadline:
            raise RuntimeError("Postfix did not deliver everything")
        time.sleep(0.005)
    postfix = n / (time.perf_counter() - start)
    dovecot = 0.0
    if dove is not None:
        before = dove.count()
        start = time.perf_counter()
        _lmtp_source(dove.port, n, DovecotSieve.USER)
        deadline = time.monotonic() + 300
        while dove.count() - before < n:
            if time.monotonic() > deadline:
                raise RuntimeError("Dovecot did not file every message:\n" + dove.log()[-2000:])
            time.sleep(0.005)
        dovecot = n / (time.perf_counter() - start)
    return out[0], out[2], out[1], out[3], postfix, dovecot


def run(quick: bool = False) -> tuple[float, float, float, float, float, float]:
    if not os.access(SMTP_SOURCE, os.X_OK) or not available():
        raise RuntimeError("bench/sieve.py needs Debian's postfix (scripts/test-deps) and root")
    n = 100 if quick else 1000
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        users = {"plain@bench.test": "pw", "sieve@bench.test": "pw"}
        srv = CourrielServer(Path(tmp), users=users, domain="bench.test", only=("smtp", "managesieve"))
        srv.env["COURRIEL_SERVER_LOG_LEVEL"] = "warning"
        srv.env["COURRIEL_LIMITS_MAX_CONNECTIONS_PER_IP"] = "1000"
        srv.env["COURRIEL_MANAGESIEVE_ALLOW_PLAINTEXT_AUTH"] = "true"
        srv.start()
        peer = PostfixPeer(free_port()).start()
        dove: DovecotSieve | None = None
        try:
            if DovecotSieve.available():
                os.chmod(tmp, 0o755)  # Dovecot delivers as the unprivileged mail uid
                (Path(tmp) / "dovecot").mkdir()
                dove = DovecotSieve(Path(tmp) / "dovecot").start()
            _install(srv)
            samples = [_round(srv, peer, dove, n) for _ in range(1 if quick else REPEAT)]
        finally:
            if dove is not None:
                dove.stop()
            peer.stop()
            srv.stop()
    cols = [statistics.median(col) for col in zip(*samples, strict=True)]
    plain, sieve, cpu_plain, cpu_sieve, postfix, dovecot = cols
    print(f"Sieve at delivery, smtp-source, {SIZE // 1024} KB, {CONCURRENCY} sessions, {n} per run")
    print(f"{'no script msg/s':>16} {'Sieve msg/s':>12} {'CPU ms/msg':>11} {'Postfix del/s':>14} {'Dovecot+Sieve/s':>16}"
          f" {'Sieve/plain':>12} {'Sieve/Postfix':>14} {'Sieve/Dovecot':>14}")  # fmt: skip
    dove_ratio = f"{sieve / dovecot:>14.2f}" if dovecot else f"{'n/a':>14}"
    print(f"{plain:>16.0f} {sieve:>12.0f} {cpu_plain:>5.2f}/{cpu_sieve:<5.2f} {postfix:>14.0f} {dovecot:>16.0f}"
          f" {sieve / plain:>12.2f} {sieve / postfix:>14.2f} {dove_ratio}")  # fmt: skip
    if not dovecot:
        print("(Dovecot + Pigeonhole not run: install dovecot-lmtpd and dovecot-sieve)")
    return plain, sieve, cpu_plain, cpu_sieve, postfix, dovecot


if __name__ == "__main__":
    import sys

    run(quick="--quick" in sys.argv)
